#!/usr/bin/env bash
# Two models on one server: does a flood of requests for one model hurt the other's latency, and do batches still
# form per model? Model A is the embedded digit model (mnist-mlp); model B (mnist-b) is trained first by
# `server train` with the same 784-128-64-10 architecture, so both cost the same per image. Every round measures,
# with the same digit PNG (bench/wrk/digit.png), one image per request:
#   A alone          cmd/loadgen sends MEASURE_RATE requests a second (an open loop: on a fixed schedule, whatever
#                    the answers do, each latency counted from when its request was due if it had to wait for a
#                    free connection) to /predict?model=mnist-mlp
#   B alone          the same to /predict?model=mnist-b
#   A, B flooded     A measured as above while wrk floods B: FLOOD_C connections, FLOOD_IMAGES images per request,
#                    each sent as soon as the last was answered (more than the server can answer: the CPU is full)
#   B, A flooded     the other way round
#   A, A flooded     control: A measured while the same flood goes to A itself (and B, B flooded)
#   floor            the same rate to /bench/floor (reads the upload, answers a constant, no model), alone and under
#                    B's flood: what any request waits for before the server knows which model it is for
# An open loop is what "p99 under a neighbour's flood" needs: a closed loop that keeps the CPU busy by itself
# cannot keep its p99 when a flood takes half the CPU, however fair the server (half the throughput through the
# same connections is twice the latency). Phases alternate, ROUNDS rounds (3); the table gives medians. Batch sizes
# per model are the images per forward pass that the server's own histogram perceptron_inference_batch_size{model}
# recorded during each phase (/metrics before and after; mean = sum / count). Every load goes to 127.0.0.1 and stops
# by itself. Needs wrk.
#
#   bash bench/twomodels.sh
#   SERVER=/path/to/server bash bench/twomodels.sh    # a binary built elsewhere (say, before a change)
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${DURATION:-5s}
rounds=${ROUNDS:-3}
measure_rate=${MEASURE_RATE:-500}
measure_c=${MEASURE_C:-16}
flood_c=${FLOOD_C:-32}
flood_images=${FLOOD_IMAGES:-8}
command -v wrk >/dev/null || { echo "bench/twomodels.sh: wrk is not installed" >&2; exit 1; }
load=$(cut -d" " -f1-3 /proc/loadavg)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
if [[ -n ${SERVER:-} ]]; then cp "$SERVER" "$work/server"; else go build -o "$work/server" ./cmd/server; fi
go build -o "$work/loadgen" ./cmd/loadgen
"$work/server" train -model mnist-b -hidden 128,64 -epochs 1 -limit 10000 -activate always -quiet \
  -model-dir "$work/models" -data-dir "$work/data" >"$work/train.log" 2>&1
port=$((20000 + RANDOM % 20000))
ADDR=127.0.0.1:$port GRPC_ADDR=127.0.0.1:0 LOG_LEVEL=warn MODEL_DIR="$work/models" DATA_DIR="$work/data" \
  ADMIN_TOKEN=bench BENCH_FLOOR=1 "$work/server" >"$work/server.log" 2>&1 &
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
base=http://127.0.0.1:$port
for m in mnist-mlp mnist-b; do # load both before measuring
  curl -fsS -H 'Content-Type: image/png' --data-binary @bench/wrk/digit.png "$base/predict?model=$m" >/dev/null
done

measure() { # path -> the loadgen report as one JSON line
  "$work/loadgen" -url "$base$1" -image bench/wrk/digit.png -rate "$measure_rate" -c "$measure_c" -duration "$dur" \
    -warmup 500ms -json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'
}
flood() { # model: runs in the background for longer than a measurement
  wrk -t1 -c"$flood_c" -d"$(( ${dur%s} + 2 ))s" -s bench/wrk/multipart.lua "$base/predict?model=$1" -- "$flood_images" \
    | tail -n 1 >"$work/flood.json" &
  flood_pid=$!
  sleep 1
}
metrics() { curl -fsS "$base/metrics" | grep '^perceptron_inference_batch_size_\(sum\|count\)' || true; }

for round in $(seq "$rounds"); do
  for phase in alone:mnist-mlp alone:mnist-b flooded:mnist-mlp flooded:mnist-b self:mnist-mlp self:mnist-b \
    alone:floor flooded:floor; do
    kind=${phase%%:*} m=${phase#*:}
    other=mnist-b
    [[ $m == mnist-b ]] && other=mnist-mlp
    [[ $kind == self ]] && other=$m
    path="/predict?model=$m"
    [[ $m == floor ]] && path=/bench/floor
    [[ $kind != alone ]] && flood "$other"
    metrics >"$work/before"
    line=$(measure "$path")
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
print(json.dumps({"round": int(rnd), "kind": kind, "model": model, "measure": json.loads(line),
                  "flood": json.loads(flood), "batch": batch}))
PY
  done
done

python3 - "$work/results.jsonl" "$load" "$measure_rate" "$measure_c" "$flood_c" "$flood_images" "$dur" "$rounds" <<'PY'
import json, statistics, sys
path, load, rate, mc, fc, fi, dur, rounds = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
med = statistics.median
def pick(kind, model):
    return [r for r in rows if r["kind"] == kind and r["model"] == model]
def p99(kind, model):
    return med(r["measure"]["p99_ms"] for r in pick(kind, model))
bad = sum(r["measure"]["errors"] for r in rows)
statuses = {}
for r in rows:
    for k, v in r["measure"]["statuses"].items():
        statuses[k] = statuses.get(k, 0) + v
bad += sum(r["flood"]["non2xx"] + sum(r["flood"]["errors"].values()) for r in rows if r["flood"])
flood_rps = med(r["flood"]["requests_per_s"] * int(fi) for r in rows if r["flood"])
print(f"Two models on one server: {rate} requests/s (open loop, at most {mc} in flight, one image each) measure one")
print(f"model alone, then while wrk -t1 floods the other with {fc} connections of {fi} images per request (median")
print(f"{flood_rps:.0f} images/s); {dur} per phase, medians of {rounds} alternating rounds; load average before: {load};")
flood_errors = {}
for r in rows:
    if r["flood"]:
        for k, v in list(r["flood"]["errors"].items()) + [("non2xx", r["flood"]["non2xx"])]:
            flood_errors[k] = flood_errors.get(k, 0) + v
print(f"failed or non-2xx requests in all phases: {bad} (measured requests by status: {statuses}; the floods' wrk")
print(f"errors: {flood_errors}).")
print()
print("| measured | p99 alone ms | p99 under the other's flood ms | ratio | p99 under a flood of itself ms | images/batch flooded (own) | images/batch of the flood |")
print("|---|---|---|---|---|---|---|")
for model, other in (("mnist-mlp", "mnist-b"), ("mnist-b", "mnist-mlp")):
    pa, pf, ps = p99("alone", model), p99("flooded", model), p99("self", model)
    print(f"| {model} | {pa:.2f} | {pf:.2f} | {pf / pa:.2f} | {ps:.2f} | "
          f"{med(r['batch'][model]['mean_images'] for r in pick('flooded', model)):.2f} | "
          f"{med(r['batch'][other]['mean_images'] for r in pick('flooded', model)):.2f} |")
pa, pf = p99("alone", "floor"), p99("flooded", "floor")
print(f"| /bench/floor (no model) | {pa:.2f} | {pf:.2f} (mnist-b flooded) | {pf / pa:.2f} | | | |")
PY
