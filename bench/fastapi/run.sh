#!/usr/bin/env bash
# Load-tests the FastAPI baseline (server.py) with wrk and bench/wrk/multipart.lua, and optionally perceptron's Go
# server in the same run, so the ratio comes from one machine state.
#
#   bash bench/fastapi/run.sh                                   # FastAPI, 1 and 2 uvicorn workers
#   GO_SERVER=/tmp/perceptron bash bench/fastapi/run.sh         # + the Go server (binary of ./cmd/server)
#
# Environment (defaults):
#   WORKERS="1 2"      uvicorn worker counts
#   LOOPS="asyncio uvloop"  uvicorn --loop for each (--http h11 always). asyncio is what Debian's python3-uvicorn
#                      alone gives; uvloop (apt python3-uvloop) is what `pip install "uvicorn[standard]"` gives, and
#                      avoids uvicorn's lost TCP_NODELAY with --workers > 1 (see README)
#   IMAGES="1"         images per request, e.g. IMAGES="1 16"
#   ENDPOINTS=predict  also "floor": FastAPI /floor and the Go server's /bench/floor (started with BENCH_FLOOR=true)
#   RUNS=3 DURATION=10s THREADS=2 CONNS=16
#   GO_SERVER=         path of a built Go server binary (go build -o /tmp/perceptron ./cmd/server); empty: skipped
#   PYTHON=/usr/bin/python3   Debian's python3 with python3-torch (not a pyenv shim)
#   OUT=bench/fastapi/results/<UTC timestamp>   raw wrk output and one JSON line per run (runs.jsonl)
#   MAX_LOAD=1.0 WAIT_MAX=600   before starting, wait (at most WAIT_MAX s) until the 1-min load average is below MAX_LOAD
# Each run also records "other_cpu_cores": CPU used during the run by processes that are not this script, its
# servers or wrk (from /proc/stat minus this process tree), i.e. how much other work on the machine interfered.
# Every server listens on 127.0.0.1 on a free port and is stopped on exit; nothing else is touched.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LUA=$HERE/../wrk/multipart.lua
PYTHON=${PYTHON:-/usr/bin/python3}
WORKERS=${WORKERS:-1 2}
LOOPS=${LOOPS:-asyncio uvloop}
IMAGES=${IMAGES:-1}
ENDPOINTS=${ENDPOINTS:-predict}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-16}
GO_SERVER=${GO_SERVER:-}
MAX_LOAD=${MAX_LOAD:-1.0}
WAIT_MAX=${WAIT_MAX:-600}
for _ in $(seq $((WAIT_MAX / 10))); do
	awk -v m="$MAX_LOAD" '{exit !($1 < m)}' /proc/loadavg && break
	echo "waiting for the 1-min load average ($(cut -d' ' -f1 /proc/loadavg)) to drop below $MAX_LOAD" >&2
	sleep 10
done

OUT=${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
RUNS_JSONL=$OUT/runs.jsonl
: > "$RUNS_JSONL"

SERVER_PID=
SCRATCH=$(mktemp -d)
cleanup() {
	stop_server
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# snap: "<monotonic s> <busy jiffies of the whole machine> <jiffies of this script's process tree>"
snap() {
	"$PYTHON" - "$$" <<'PY'
import os, sys, time
root = int(sys.argv[1])
with open("/proc/stat") as f:
    v = [int(x) for x in f.readline().split()[1:]]
busy = sum(v) - v[3] - v[4]  # all but idle and iowait
procs = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(d)] = (int(st[1]), sum(int(x) for x in st[11:15]))  # ppid, utime+stime+cutime+cstime
kids = {}
for pid, (ppid, _) in procs.items():
    kids.setdefault(ppid, []).append(pid)
ours, todo = 0, [root]
while todo:
    p = todo.pop()
    ours += procs.get(p, (0, 0))[1]
    todo += kids.get(p, [])
print(f"{time.monotonic():.3f} {busy} {ours}")
PY
}

free_port() {
	"$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_server() {
	if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=
}

# wait_ready URL: until a multipart POST of digit.png to URL answers 200 (at most 60 s).
wait_ready() {
	for _ in $(seq 600); do
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server exited; log:" >&2; cat "$OUT/server.log" >&2; exit 1; fi
		if [[ $(curl -s -o /dev/null -w '%{http_code}' -F "image=@$HERE/../wrk/digit.png" "$1" || true) == 200 ]]; then return 0; fi
		sleep 0.1
	done
	echo "server at $1 not ready after 60 s" >&2
	exit 1
}

# bench NAME BASE_URL PREDICT_PATH FLOOR_PATH
bench() {
	local name=$1 base=$2 path
	for ep in $ENDPOINTS; do
		case $ep in predict) path=$3 ;; floor) path=$4 ;; *) echo "unknown endpoint $ep" >&2; exit 2 ;; esac
		wait_ready "$base$path"
		# warm-up, not recorded
		wrk -t"$THREADS" -c"$CONNS" -d2s -s "$LUA" "$base$path" -- 1 >/dev/null
		for n in $IMAGES; do
			for r in $(seq "$RUNS"); do
				local load raw s0 s1
				load=$(cut -d' ' -f1 /proc/loadavg)
				raw=$OUT/${name}_${ep}_n${n}_r${r}.txt
				s0=$(snap)
				wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$LUA" "$base$path" -- "$n" >"$raw"
				s1=$(snap)
				tail -n1 "$raw" | "$PYTHON" -c '
import json, os, sys
d = json.loads(sys.stdin.read())
t0, b0, o0 = map(float, sys.argv[5].split()); t1, b1, o1 = map(float, sys.argv[6].split())
other = ((b1 - b0) - (o1 - o0)) / os.sysconf("SC_CLK_TCK") / (t1 - t0)
d.update(server=sys.argv[1], endpoint=sys.argv[2], run=int(sys.argv[3]), loadavg1_before=float(sys.argv[4]),
         other_cpu_cores=round(max(other, 0.0), 3))
print(json.dumps(d))' "$name" "$ep" "$r" "$load" "$s0" "$s1" | tee -a "$RUNS_JSONL"
			done
		done
	done
}

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "uptime: $(uptime)"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
	echo "wrk: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); -t$THREADS -c$CONNS -d$DURATION --latency, runs=$RUNS, images=$IMAGES, endpoints=$ENDPOINTS, loops=$LOOPS, workers=$WORKERS"
	echo "python: $("$PYTHON" -c 'import sys, torch, fastapi, uvicorn, PIL; print(sys.version.split()[0], "torch", torch.__version__, "fastapi", fastapi.__version__, "uvicorn", uvicorn.__version__, "PIL", PIL.__version__, end=" "); import importlib.util as u; print("uvloop", __import__("uvloop").__version__ if u.find_spec("uvloop") else "not installed")')"
} | tee "$OUT/env.txt"

for loop in $LOOPS; do
	for w in $WORKERS; do
		port=$(free_port)
		echo "== FastAPI, --loop $loop, $w uvicorn worker(s), 127.0.0.1:$port" >&2
		(cd "$HERE" && OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 exec "$PYTHON" -m uvicorn server:app \
			--host 127.0.0.1 --port "$port" --workers "$w" --loop "$loop" --http h11 \
			--no-access-log --log-level warning) >"$OUT/server.log" 2>&1 &
		SERVER_PID=$!
		bench "fastapi-$loop-w$w" "http://127.0.0.1:$port" /predict /floor
		stop_server
	done
done

if [[ -n "$GO_SERVER" ]]; then
	port=$(free_port)
	echo "== Go server $GO_SERVER, 127.0.0.1:$port" >&2
	(cd "$SCRATCH" && ADDR=127.0.0.1:$port GRPC_ADDR=127.0.0.1:0 LOG_LEVEL=warn BENCH_FLOOR=true ADMIN_TOKEN=bench-$$ \
		MODEL_DIR=$SCRATCH/models DATA_DIR=$SCRATCH/data exec "$GO_SERVER") >"$OUT/server.log" 2>&1 &
	SERVER_PID=$!
	bench go "http://127.0.0.1:$port" /predict /bench/floor
	stop_server
fi

echo "uptime after: $(uptime)" | tee -a "$OUT/env.txt"

# Medians over the runs of each configuration.
"$PYTHON" - "$RUNS_JSONL" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["server"], r["endpoint"], r["images_per_request"]), []).append(r)
med = lambda rs, f: statistics.median(f(r) for r in rs)
print("| server | endpoint | images/req | runs | requests/s | images/s | p50 ms | p90 ms | p99 ms | non-2xx | socket errors | other CPU, cores (max) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (s, e, n), rs in groups.items():
    print(f"| {s} | {e} | {n} | {len(rs)} | {med(rs, lambda r: r['requests_per_s']):.0f} | "
          f"{med(rs, lambda r: r['images_per_s']):.0f} | {med(rs, lambda r: r['latency_ms']['p50']):.2f} | "
          f"{med(rs, lambda r: r['latency_ms']['p90']):.2f} | {med(rs, lambda r: r['latency_ms']['p99']):.2f} | "
          f"{sum(r['non2xx'] for r in rs)} | "
          f"{sum(r['errors'][k] for r in rs for k in ('connect', 'read', 'write', 'timeout'))} | "
          f"{med(rs, lambda r: r['other_cpu_cores']):.2f} ({max(r['other_cpu_cores'] for r in rs):.2f}) |")
go = {(e, n): med(rs, lambda r: r["images_per_s"]) for (s, e, n), rs in groups.items() if s == "go"}
if go:
    print()
    for (s, e, n), rs in groups.items():
        if s != "go" and (e, n) in go:
            print(f"- go / {s}, {e}, {n} image(s)/request: {go[(e, n)] / med(rs, lambda r: r['images_per_s']):.1f}x images/s")
PY
echo "results in $OUT" >&2
