#!/usr/bin/env bash
# Load test of the play decision over HTTP on loopback, against /healthz in the same run.
#
#   bash bench/load.sh            # 10 s per step
#   DURATION=30 bash bench/load.sh
#
# 1. Throughput: wrk at full speed on GET /healthz, then on GET /v1/streams/{id}/play
#    (same connections and threads); the ratio is play's share of healthz's throughput.
# 2. Latency at a fixed rate: hey at 10,000 requests/s (50 connections x 200/s) on each,
#    reporting p50, p90, p99 and the slowest (hey's resolution is 0.1 ms).
#
# The server and the load generators share this machine's cores: the figures are a floor.
# Installs wrk and hey from Debian's packages when missing. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
RATE_CONNS=${RATE_CONNS:-50}
RATE_PER_CONN=${RATE_PER_CONN:-200}

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need hey hey

cargo build --release --quiet
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUST_LOG=warn ./target/release/livesteer serve --listen "127.0.0.1:$port" \
  --database-url "sqlite://$work/load.db" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

base="http://127.0.0.1:$port"
id=$(curl -sf -X POST "$base/v1/streams" -H 'content-type: application/json' \
  -d '{"anchor_id":"load-anchor","region":"tw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_id"])')
play="$base/v1/streams/$id/play?protocol=hls&region=tw"
curl -sf "$play" >/dev/null

rps() { wrk -t2 -c64 -d"${DURATION}s" --latency "$1" | awk '/Requests\/sec/ {print $2}'; }
pct() { # from hey's summary, in ms: p50 p90 p99 slowest, then the rate achieved (req/s)
  hey -z "${DURATION}s" -c "$RATE_CONNS" -q "$RATE_PER_CONN" "$1" >"$work/hey.txt"
  if grep -q "Error distribution" "$work/hey.txt"; then
    echo "hey saw errors:" >&2
    sed -n '/Error distribution/,$p' "$work/hey.txt" >&2
  fi
  for p in 50 90 99; do
    awk -v p="  $p% in" 'index($0, p) == 1 {printf "%.1f ", $3 * 1000}' "$work/hey.txt"
  done
  awk '/Slowest:/ {printf "%.1f ", $2 * 1000} /Requests\/sec:/ {printf "%.0f", $2}' "$work/hey.txt"
  echo
}

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), commit $(git rev-parse --short HEAD)"
h=$(rps "$base/healthz"); p=$(rps "$play")
read -r h50 h90 h99 hmax hrate <<<"$(pct "$base/healthz")"
read -r p50 p90 p99 pmax prate <<<"$(pct "$play")"
echo
echo "| endpoint | wrk req/s, full speed | share of /healthz | hey req/s achieved | p50 ms | p90 ms | p99 ms | slowest ms |"
echo "|---|---|---|---|---|---|---|---|"
echo "| GET /healthz | $h | 100% | $hrate | $h50 | $h90 | $h99 | $hmax |"
echo "| GET /v1/streams/{id}/play | $p | $(python3 -c "print(f'{100*$p/$h:.0f}%')") | $prate | $p50 | $p90 | $p99 | $pmax |"
