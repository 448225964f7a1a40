#!/usr/bin/env bash
# Soak and overload, with the repository's load generator against a server on 127.0.0.1; everything stops by itself.
#
#   bash bench/soak.sh                      # 5-minute soak at 64 connections, then the overload test
#   SOAK=30s bash bench/soak.sh             # shorter
#
# Soak: /predict with real PNG digits at high concurrency; reports errors and the server's resident memory at the
# start and the end. Overload: 1000 connections against a server with a small queue (QUEUE_SIZE=128), far past its
# capacity: it must shed load with 503 and Retry-After quickly (the refusals' latency shows it), then serve a normal
# load again at once, with no errors, when the flood stops.
set -euo pipefail
cd "$(dirname "$0")/.."
soak=${SOAK:-5m}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/server" ./cmd/server
go build -o "$work/loadgen" ./cmd/loadgen
start_server() {
  port=$((20000 + RANDOM % 20000))
  env ADDR=127.0.0.1:$port GRPC_ADDR=127.0.0.1:0 LOG_LEVEL=warn MODEL_DIR="$work/models" DATA_DIR="$work/data" "$@" "$work/server" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  base=http://127.0.0.1:$port
}
rss() { echo $(($(awk '/VmRSS/{print $2}' "/proc/$pid/status") / 1024)); }

echo "## Soak: $soak at 64 connections, 1 and 16 images per request alternating every 30 s"
start_server
"$work/loadgen" -url "$base/predict" -c 64 -duration 10s -warmup 0 >/dev/null
echo "RSS after warm-up: $(rss) MB"
seconds() { case $1 in *m) echo $(( ${1%m} * 60 ));; *s) echo "${1%s}";; *) echo "$1";; esac; }
end=$(( $(date +%s) + $(seconds "$soak") ))
errors=0; requests=0; i=0
while (( $(date +%s) < end )); do
  n=$(( i % 2 == 0 ? 1 : 16 )); i=$((i + 1))
  line=$("$work/loadgen" -url "$base/predict" -c 64 -images "$n" -duration 30s -warmup 0)
  echo "  $line"
  errors=$((errors + $(echo "$line" | sed -n 's/.*errors \([0-9]*\).*/\1/p')))
  requests=$((requests + $(echo "$line" | sed -n 's/.*: \([0-9]*\) requests in.*/\1/p')))
  echo "  RSS $(rss) MB"
done
echo "Soak: $requests requests, $errors errors; RSS at the end $(rss) MB"
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "## Overload: 1000 connections against QUEUE_SIZE=128, then 4 connections"
start_server QUEUE_SIZE=128
"$work/loadgen" -url "$base/predict" -c 1000 -duration 20s -warmup 0 -label flood
"$work/loadgen" -url "$base/predict" -c 4 -duration 10s -warmup 0 -label "after the flood"
echo "RSS after the flood: $(rss) MB"
