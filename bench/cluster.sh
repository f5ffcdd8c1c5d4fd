#!/usr/bin/env bash
# Creates per second and plays per second through nginx, for 1 and for 3 replicas of
# `livesteer serve` on one PostgreSQL database, in the same run.
#
#   bash bench/cluster.sh                  # this checkout's release build, 10 s per step
#   DURATION=20 bash bench/cluster.sh
#   BIN=path/to/livesteer bash bench/cluster.sh
#   REPLICAS="1 3 2" bash bench/cluster.sh # other cluster sizes, in that order
#
# For each cluster size, on a fresh database: the replicas start on loopback ports, Debian's
# nginx balances over them (round robin, upstream keep-alive, one worker), and wrk drives
# 1. creates: POST /v1/streams with a new anchor id each request (bench/creates.lua), CONNS
#    connections (32): creates/s (each answered after its commit), p50, p99, answers not 201;
# 2. plays: GET /v1/streams/{id}/play?protocol=hls&region=tw over 100 live streams created
#    before (bench/plays.lua), CONNS connections: plays/s, p50, p99, answers not 200.
#
# Everything (the replicas, nginx, PostgreSQL, wrk) shares this machine's cores: with 2 cores,
# 3 replicas get no more CPU than 1, so the figures show what the cluster costs, not what it
# scales to (docs/SCALING.md). Needs psql and a PostgreSQL server at PG_ADMIN (default
# postgres://postgres@127.0.0.1:5432/postgres) and nginx; installs wrk when missing. Prints a
# Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
REPLICAS=${REPLICAS:-1 3}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx missing (apt-get install nginx)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
psql -q "$PG_ADMIN" -c 'SELECT 1' >/dev/null 2>&1 || { echo "PostgreSQL not reachable at $PG_ADMIN" >&2; exit 1; }

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/livesteer
fi
work=$(mktemp -d)
servers=()
nginx_pid=
pgdb=
stop_all() {
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${servers[@]}"; do wait "$p" 2>/dev/null || true; done
  servers=()
  [ -n "$nginx_pid" ] && { kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; }
  nginx_pid=
  [ -n "$pgdb" ] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1
  pgdb=
}
trap 'stop_all; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
to_ms() { # wrk's latency (812.00us, 1.23ms, 1.02s) in ms
  python3 -c '
import re, sys
v, u = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", sys.argv[1]).groups()
scale = {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]
print("%.1f" % (float(v) * scale))' "$1"
}
wrk_row() { # file → "rps | p50 | p99"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$1")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$1")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$1")")
  echo "$rps | $p50 | $p99"
}

measure() { # replicas
  local n=$1 url lb upstream="" i port
  pgdb="livesteer_cluster_bench_$(date +%s)_$RANDOM"
  psql -q "$PG_ADMIN" -c "CREATE DATABASE $pgdb" >/dev/null
  url="${PG_ADMIN%/*}/$pgdb"
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --database-url "$url" \
      >"$work/server-$n-$i.log" 2>&1 &
    servers+=($!)
    upstream+="    server 127.0.0.1:$port;"$'\n'
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "replica $i did not start:" >&2; cat "$work/server-$n-$i.log" >&2; exit 1; }
  done
  lb=$(free_port)
  mkdir -p "$work/nginx-$n/tmp"
  local user=""
  [ "$(id -u)" = 0 ] && user="user root;"
  cat >"$work/nginx-$n/nginx.conf" <<EOF
$user
worker_processes 1;
error_log $work/nginx-$n/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-$n/tmp/body;
  proxy_temp_path $work/nginx-$n/tmp/proxy;
  fastcgi_temp_path $work/nginx-$n/tmp/fastcgi;
  uwsgi_temp_path $work/nginx-$n/tmp/uwsgi;
  scgi_temp_path $work/nginx-$n/tmp/scgi;
  upstream livesteer {
$upstream    keepalive 64;
  }
  server {
    listen 127.0.0.1:$lb;
    location / {
      proxy_pass http://livesteer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  "$NGINX" -p "$work/nginx-$n" -c "$work/nginx-$n/nginx.conf" -g "daemon off; pid $work/nginx-$n/nginx.pid;" \
    2>"$work/nginx-$n/stderr" &
  nginx_pid=$!
  local base="http://127.0.0.1:$lb"
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

  # 100 live streams for the plays, created first.
  : >"$work/ids"
  for i in $(seq 1 100); do
    curl -sf -X POST -H 'content-type: application/json' \
      -d "{\"anchor_id\":\"bench-play-$i\",\"region\":\"tw\"}" "$base/v1/streams" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_id"])' >>"$work/ids"
  done
  # Warm-up, not counted.
  wrk -t2 -c"$CONNS" -d2s -s bench/creates.lua "$base" >/dev/null
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/creates.lua "$base" >"$work/creates.txt"
  IDS="$work/ids" wrk -t2 -c"$CONNS" -d2s -s bench/plays.lua "$base" >/dev/null
  IDS="$work/ids" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/plays.lua "$base" >"$work/plays.txt"
  local cnot pnot
  cnot=$(awk '/^not_created/ {print $2}' "$work/creates.txt")
  pnot=$(awk '/^not_ok/ {print $2}' "$work/plays.txt")
  echo "| $n | $(wrk_row "$work/creates.txt") | $cnot | $(wrk_row "$work/plays.txt") | $pnot |"
  stop_all
}

echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)"
echo
echo "| replicas | creates/s | p50 ms | p99 ms | not 201 | plays/s | p50 ms | p99 ms | not 200 |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $REPLICAS; do
  measure "$n"
done
