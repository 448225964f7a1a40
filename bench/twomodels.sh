#!/usr/bin/env bash
# Two models on one server: does a flood of requests for one model hurt the other's latency, and do batches still
# form per model? Model A is the embedded digit model (mnist-mlp); model B (mnist-b) is trained first by
# `server train` with the same 784-128-64-10 architecture, so both cost the same per image. Every round measures,
# with wrk and the same digit PNG (bench/wrk/digit.png):
#   A alone          MEASURE_C connections, one image per request, to /predict?model=mnist-mlp
#   B alone          the same to /predict?model=mnist-b
#   A, B flooded     A measured as above while FLOOD_C connections send FLOOD_IMAGES images per request for B
#   B, A flooded     the other way round
#   A, A flooded     control: A measured while the same flood goes to A itself (and B, B flooded), so the cost of
#                    sharing the CPU with a flood shows apart from the cost of the flood being another model's
# Phases alternate, ROUNDS rounds (3); the table gives medians. Batch sizes per model are the images per forward
# pass that the server's own histogram perceptron_inference_batch_size{model} recorded during each phase (/metrics
# before and after; mean = sum / count). Every load goes to 127.0.0.1 and stops by itself. Needs wrk.
#
#   bash bench/twomodels.sh
#   SERVER=/path/to/server bash bench/twomodels.sh    # a binary built elsewhere (say, before a change)
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-5s}
rounds=${ROUNDS:-3}
measure_c=${MEASURE_C:-4}
flood_c=${FLOOD_C:-32}
flood_images=${FLOOD_IMAGES:-8}
command -v wrk >/dev/null || { echo "bench/twomodels.sh: wrk is not installed" >&2; exit 1; }
load=$(cut -d" " -f1-3 /proc/loadavg)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [[ -n ${SERVER:-} ]]; then cp "$SERVER" "$work/server"; else go build -o "$work/server" ./cmd/server; fi
"$work/server" train -model mnist-b -hidden 128,64 -epochs 1 -limit 10000 -activate always -quiet \
  -model-dir "$work/models" -data-dir "$work/data" >"$work/train.log" 2>&1
port=$((20000 + RANDOM % 20000))
ADDR=127.0.0.1:$port GRPC_ADDR=127.0.0.1:0 LOG_LEVEL=warn MODEL_DIR="$work/models" DATA_DIR="$work/data" \
  ADMIN_TOKEN=bench "$work/server" >"$work/server.log" 2>&1 &
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
base=http://127.0.0.1:$port
for m in mnist-mlp mnist-b; do # load both before measuring
  curl -fsS -H 'Content-Type: image/png' --data-binary @bench/wrk/digit.png "$base/predict?model=$m" >/dev/null
done

measure() { # model -> one JSON line from multipart.lua
  wrk -t1 -c"$measure_c" -d"$dur" --latency -s bench/wrk/multipart.lua "$base/predict?model=$1" -- 1 | tail -n 1
}
flood() { # model: runs in the background for longer than a measurement
  wrk -t1 -c"$flood_c" -d"$(( ${dur%s} + 2 ))s" -s bench/wrk/multipart.lua "$base/predict?model=$1" -- "$flood_images" \
    | tail -n 1 >"$work/flood.json" &
  flood_pid=$!
  sleep 1
}
metrics() { curl -fsS "$base/metrics" | grep '^perceptron_inference_batch_size_\(sum\|count\)' || true; }

for round in $(seq "$rounds"); do
  for phase in alone:mnist-mlp alone:mnist-b flooded:mnist-mlp flooded:mnist-b self:mnist-mlp self:mnist-b; do
    kind=${phase%%:*} m=${phase#*:}
    other=mnist-b
    [[ $m == mnist-b ]] && other=mnist-mlp
    [[ $kind == self ]] && other=$m
    [[ $kind != alone ]] && flood "$other"
    metrics >"$work/before"
    line=$(measure "$m")
    metrics >"$work/after"
    flood_line='null'
    if [[ $kind != alone ]]; then
      wait "$flood_pid"
      flood_line=$(cat "$work/flood.json")
    fi
    python3 - "$work" "$round" "$kind" "$m" "$line" "$flood_line" <<'PY' >>"$work/results.jsonl"
import json, re, sys
work, rnd, kind, model, line, flood = sys.argv[1:]
def read(path):
    out = {}
    for l in open(path):
        m = re.match(r'perceptron_inference_batch_size_(sum|count)\{model="([^"]+)"\} (\S+)', l)
        if m:
            out[(m.group(2), m.group(1))] = float(m.group(3))
    return out
b, a = read(f"{work}/before"), read(f"{work}/after")
batch = {}
for name in ("mnist-mlp", "mnist-b"):
    n = a.get((name, "count"), 0) - b.get((name, "count"), 0)
    s = a.get((name, "sum"), 0) - b.get((name, "sum"), 0)
    batch[name] = {"batches": n, "mean_images": s / n if n else 0}
print(json.dumps({"round": int(rnd), "kind": kind, "model": model, "wrk": json.loads(line),
                  "flood": json.loads(flood), "batch": batch}))
PY
  done
done

python3 - "$work/results.jsonl" "$load" "$measure_c" "$flood_c" "$flood_images" "$dur" "$rounds" <<'PY'
import json, statistics, sys
path, load, mc, fc, fi, dur, rounds = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
med = statistics.median
def pick(kind, model):
    return [r for r in rows if r["kind"] == kind and r["model"] == model]
bad = sum(r["wrk"]["non2xx"] + sum(r["wrk"]["errors"].values()) for r in rows)
bad += sum(r["flood"]["non2xx"] + sum(r["flood"]["errors"].values()) for r in rows if r["flood"])
print(f"Two models on one server: {mc} connections measure one model (1 image per request) alone, then while {fc}")
print(f"connections flood the other with {fi} images per request; wrk -t1 each, {dur} per phase, medians of {rounds}")
print(f"alternating rounds; load average before: {load}; failed or non-2xx requests in all phases: {bad}.")
print()
print("| model | p99 alone ms | p99 under the other's flood ms | ratio | p99 under a flood of itself ms | req/s alone | req/s flooded | images/batch alone | images/batch flooded (own) | images/batch of the flood |")
print("|---|---|---|---|---|---|---|---|---|---|")
for model, other in (("mnist-mlp", "mnist-b"), ("mnist-b", "mnist-mlp")):
    alone, flooded, self = pick("alone", model), pick("flooded", model), pick("self", model)
    pa = med(r["wrk"]["latency_ms"]["p99"] for r in alone)
    pf = med(float(r["wrk"]["latency_ms"]["p99"]) for r in flooded)
    pa = float(pa)
    ps = med(float(r["wrk"]["latency_ms"]["p99"]) for r in self)
    print(f"| {model} | {pa:.2f} | {pf:.2f} | {pf / pa:.2f} | {ps:.2f} | {med(r['wrk']['requests_per_s'] for r in alone):.0f} | "
          f"{med(r['wrk']['requests_per_s'] for r in flooded):.0f} | "
          f"{med(r['batch'][model]['mean_images'] for r in alone):.2f} | "
          f"{med(r['batch'][model]['mean_images'] for r in flooded):.2f} | "
          f"{med(r['batch'][other]['mean_images'] for r in flooded):.2f} |")
PY
