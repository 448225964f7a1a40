#!/usr/bin/env bash
# One digit per request through each protocol, in the same run: gRPC ModelInfer with FP32 [1,784] as raw contents
# and as typed contents (ghz), REST /v2 infer with the same row as JSON (wrk), and /predict with the PNG it came
# from (wrk). Rounds alternate between the four and the figures are medians of ROUNDS rounds (3) of DURATION (4s)
# each, at 16 concurrent calls; the load generators get one thread/CPU each, the server GOMAXPROCS of the machine.
# The load generators share the machine's cores with the server, so the table also gives the server's own CPU time
# per call (from /proc), which does not depend on how much CPU the load generator takes. Prints a Markdown table.
# Needs ghz and wrk (see README); every load goes to 127.0.0.1 and stops by itself.
#
#   bash bench/oip.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"
dur=${DURATION:-4s}
load=$(cut -d" " -f1-3 /proc/loadavg)
rounds=${ROUNDS:-3}
for tool in ghz wrk; do
  command -v $tool >/dev/null || { echo "bench/oip.sh: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/server" ./cmd/server
port=$((20000 + RANDOM % 20000))
gport=$((port + 1))
ADDR=127.0.0.1:$port GRPC_ADDR=127.0.0.1:$gport LOG_LEVEL=warn MODEL_DIR="$work/models" DATA_DIR="$work/data" \
  ADMIN_TOKEN=bench "$work/server" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
base=http://127.0.0.1:$port
name=$(curl -fsS "$base/readyz" | python3 -c 'import json, sys; print(json.load(sys.stdin)["model"])')

# The row the model sees for bench/wrk/digit.png, as /predict?debug=true reports it, in every request form.
curl -fsS -H 'Content-Type: image/png' --data-binary @bench/wrk/digit.png "$base/predict?debug=true" >"$work/debug.json"
python3 - "$work" "$name" <<'PY'
import base64, json, struct, sys
work, name = sys.argv[1:]
row = json.load(open(f"{work}/debug.json"))["predictions"][0]["input"]
assert len(row) == 784
tensor = {"name": "input", "datatype": "FP32", "shape": [1, 784]}
json.dump({"model_name": name, "inputs": [dict(tensor, contents={"fp32_contents": row})]}, open(f"{work}/typed.json", "w"))
raw = base64.b64encode(struct.pack("<784f", *row)).decode()
json.dump({"model_name": name, "inputs": [tensor], "raw_input_contents": [raw]}, open(f"{work}/raw.json", "w"))
json.dump({"inputs": [dict(tensor, data=row)]}, open(f"{work}/rest.json", "w"))
PY

proto=internal/oip/oippb/inference.proto
ghz_run() { # label request-file
  ghz --insecure --proto "$proto" --call inference.GRPCInferenceService/ModelInfer -D "$2" -c 16 -z "$dur" \
    --cpus 1 --format json "127.0.0.1:$gport" >"$work/ghz.json"
  python3 - "$1" "$work/ghz.json" <<'PY'
import json, sys
label, path = sys.argv[1:]
d = json.load(open(path))
p99 = next(p["latency"] for p in d["latencyDistribution"] if p["percentage"] == 99) / 1e6
bad = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if k != "OK")
# Calls in flight when ghz stops at the end of -z are cut by ghz itself ("the client connection is closing",
# "transport is closing"); they say nothing about the server.
cut = sum(v for k, v in d.get("errorDistribution", {}).items() if "is closing" in k)
print(json.dumps({"label": label, "rps": d["rps"], "p99_ms": p99, "errors": bad - cut, "calls": d["count"] - cut}))
PY
}
wrk_run() { # label path lua-script script-args...
  local label=$1 path=$2 script=$3; shift 3
  wrk -t1 -c16 -d"$dur" --latency -s "$script" "$base$path" -- "$@" | tail -n 1 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
print(json.dumps({"label": sys.argv[1], "rps": d["requests_per_s"], "p99_ms": d["latency_ms"]["p99"], "calls": d["requests"],
  "errors": d["non2xx"] + d["errors"]["connect"] + d["errors"]["read"] + d["errors"]["timeout"]}))' "$label"
}
# cpu_ms is the server's user+system CPU time so far, in milliseconds.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$server_pid/stat"; }
measured() { # runs a *_run command and adds the server's CPU time it took
  local before line; before=$(cpu_ms)
  line=$("$@")
  python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d["server_cpu_ms"] = float(sys.argv[2]); print(json.dumps(d))' \
    "$line" "$(echo "$(cpu_ms) - $before" | bc)"
}
for _ in $(seq "$rounds"); do
  measured ghz_run "gRPC ModelInfer, raw_input_contents" "$work/raw.json"
  measured ghz_run "gRPC ModelInfer, fp32_contents" "$work/typed.json"
  measured wrk_run "REST /v2 infer, JSON FP32" "/v2/models/$name/infer" bench/wrk/body.lua "$work/rest.json" application/json
  measured wrk_run "REST /predict, PNG" /predict bench/wrk/multipart.lua 1
done >"$work/runs.jsonl"
echo "Load average at the start: $load on $(nproc) cores; medians of $rounds rounds of $dur."
echo
echo "| protocol and input (one digit per call, 16 concurrent) | requests/s | p99 ms | server CPU us/call | errors |"
echo "|---|---|---|---|---|"
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    runs.setdefault(d["label"], []).append(d)
for label, rs in runs.items():
    cpu = statistics.median(1000 * r["server_cpu_ms"] / max(r["calls"], 1) for r in rs)
    print(f"| {label} | {statistics.median(r['rps'] for r in rs):,.0f} | {statistics.median(r['p99_ms'] for r in rs):.2f} | {cpu:.0f} | {sum(r['errors'] for r in rs)} |")
PY
