#!/usr/bin/env bash
# Stream creates per second, each answered only after its row is committed (group commit),
# on SQLite and on PostgreSQL, against another build in the same run.
#
#   bash bench/creates.sh                 # this checkout's release build, 10 s per step
#   DURATION=30 bash bench/creates.sh
#   BASE_BIN=path/to/livesteer bash bench/creates.sh
#                                         # also measure another build (an older commit's,
#                                         # e.g. one that wrote streams behind the answer)
#   BIN=path/to/livesteer bash bench/creates.sh   # measure that build instead of this one
#   BACKENDS=sqlite bash bench/creates.sh # one backend only
#   BASE_FIRST=1 BASE_BIN=… bash bench/creates.sh   # the other build first on each backend
#
# For each build and backend, on a fresh database:
# 1. Throughput: wrk at full speed, POST /v1/streams with a new anchor id each request
#    (bench/creates.lua), CONNS connections (32): creates/s, p50 and p99 (wrk's), and how many
#    answers were not 201.
# 2. Latency at a fixed rate: hey at RATE_CONNS x RATE_PER_CONN requests/s (50 x 20 = 1,000/s):
#    each of 50 clients sends one create every 50 ms, so a slow answer delays only its own
#    client's next request; p50, p99, the slowest, and the rate achieved (hey's resolution is
#    0.1 ms).
#
# PostgreSQL: a database created for the run on PG_ADMIN's server (default
# postgres://postgres@127.0.0.1:5432/postgres, needs psql) and dropped after; skipped with a
# note when the server is not reachable. The server and the load generators share this
# machine's cores: the figures are a floor. Installs wrk and hey from Debian's packages when
# missing. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
RATE_CONNS=${RATE_CONNS:-50}
RATE_PER_CONN=${RATE_PER_CONN:-20}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need hey hey

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/livesteer
fi
work=$(mktemp -d)
server=
pgdb=
cleanup() {
  [ -n "$server" ] && { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; }
  [ -n "$pgdb" ] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
to_ms() { # wrk's latency (812.00us, 1.23ms, 1.02s) in ms
  python3 -c '
import re, sys
v, u = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", sys.argv[1]).groups()
scale = {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
print("%.1f" % (float(v) * scale))' "$1"
}

# One build on one backend: prints a table row.
measure() { # label bin backend
  local label=$1 bin=$2 backend=$3 url port base
  case "$backend" in
    sqlite) url="sqlite://$work/$label-creates.db" ;;
    postgres)
      pgdb="livesteer_bench_$(date +%s)_$RANDOM"
      psql -q "$PG_ADMIN" -c "CREATE DATABASE $pgdb" >/dev/null
      url="${PG_ADMIN%/*}/$pgdb" ;;
  esac
  port=$(free_port)
  base="http://127.0.0.1:$port"
  RUST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --database-url "$url" \
    >"$work/server-$label-$backend.log" 2>&1 &
  server=$!
  for _ in $(seq 1 200); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "$base/readyz" >/dev/null || { echo "$label on $backend did not start:" >&2; cat "$work/server-$label-$backend.log" >&2; exit 1; }
  # Warm-up (connections, caches), not counted.
  wrk -t2 -c"$CONNS" -d2s -s bench/creates.lua "$base" >/dev/null

  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/creates.lua "$base" >"$work/wrk.txt"
  local rps p50 p99 refused
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk.txt")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")")
  refused=$(awk '/^not_created/ {print $2}' "$work/wrk.txt")

  hey -z "${DURATION}s" -c "$RATE_CONNS" -q "$RATE_PER_CONN" -m POST -T application/json \
    -d '{"anchor_id":"bench-rate","region":"tw"}' "$base/v1/streams" >"$work/hey.txt"
  if grep -q "Error distribution" "$work/hey.txt"; then
    echo "hey saw errors:" >&2
    sed -n '/Error distribution/,$p' "$work/hey.txt" >&2
  fi
  local r50 r99 rmax rrate rnot
  r50=$(awk 'index($0, "  50% in") == 1 {printf "%.1f", $3 * 1000}' "$work/hey.txt")
  r99=$(awk 'index($0, "  99% in") == 1 {printf "%.1f", $3 * 1000}' "$work/hey.txt")
  rmax=$(awk '/Slowest:/ {printf "%.1f", $2 * 1000}' "$work/hey.txt")
  rrate=$(awk '/Requests\/sec:/ {printf "%.0f", $2}' "$work/hey.txt")
  rnot=$(awk '/^  \[[0-9]+\]/ && $1 != "[201]" {n += $2} END {print n + 0}' "$work/hey.txt")

  kill "$server"; wait "$server" 2>/dev/null || true; server=
  if [ "$backend" = postgres ]; then
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null; pgdb=
  fi
  echo "| $label | $backend | $rps | $p50 | $p99 | $refused | $rrate | $r50 | $r99 | $rmax | $rnot |"
}

backends=()
for b in $BACKENDS; do
  if [ "$b" = postgres ] && ! psql -q "$PG_ADMIN" -c 'SELECT 1' >/dev/null 2>&1; then
    echo "skipping PostgreSQL: not reachable at $PG_ADMIN" >&2
    continue
  fi
  backends+=("$b")
done

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), commit $(git rev-parse --short HEAD)"
echo
echo "| build | backend | creates/s, wrk $CONNS conns | p50 ms | p99 ms | not 201 | at $((RATE_CONNS * RATE_PER_CONN))/s: achieved | p50 ms | p99 ms | slowest ms | not 201 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for b in "${backends[@]}"; do
  if [ -n "${BASE_FIRST:-}" ] && [ -n "${BASE_BIN:-}" ]; then
    measure base "$BASE_BIN" "$b"
  fi
  measure this "$BIN" "$b"
  if [ -z "${BASE_FIRST:-}" ] && [ -n "${BASE_BIN:-}" ]; then
    measure base "$BASE_BIN" "$b"
  fi
done
