#!/usr/bin/env bash
# Player reports over HTTP on loopback, in one run: CMCD lines per second at POST /v1/cmcd
# beside /v1/qos JSON reports per second, both in bodies of 1000.
#
#   bash bench/cmcd.sh            # 10 s per step
#   DURATION=30 bash bench/cmcd.sh
#
# - JSON: 1000 `/v1/qos` reports (30 s played each, on the stream's first provider).
# - CMCD: 1000 hls.js-shaped `rr` lines (100 sessions of 10 segments, the `url` on one of the
#   stream's providers), `application/cmcd`: every line is parsed, attributed by its host and
#   applied to its session. The same body is sent again and again, so after the first time the
#   lines are older than their sessions' accounting: parsing and attribution are measured, the
#   stretches' signals are not repeated.
#
# wrk drives each with the same threads and connections; the ratio is CMCD's rate over JSON's.
# The server and wrk share this machine's cores: the figures are a floor. Prints a Markdown
# table, and the delivery signals dropped (a full bus) during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-8}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/livesteer
fi
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$port" --providers providers \
  --policy "${POLICY:-policies/default.yaml}" \
  --database-url "sqlite://$work/cmcd.db" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
base="http://127.0.0.1:$port"
id=$(curl -sf -X POST "$base/v1/streams" -H 'content-type: application/json' \
  -d '{"anchor_id":"bench-anchor","region":"tw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_id"])')
curl -sf "$base/v1/streams/$id/play?protocol=hls&region=tw" >"$work/play.json"

python3 - "$work" "$id" <<'PY'
import json, sys
work, sid = sys.argv[1], sys.argv[2]
play = json.load(open(f"{work}/play.json"))
first = play["candidates"][0]
reports = [{"stream_id": sid, "provider": first["provider"], "region": "tw", "protocol": "hls",
            "played_ms": 30000, "rebuffer_ms": 0, "startup_ms": 900} for _ in range(1000)]
open(f"{work}/qos.json", "w").write(json.dumps({"reports": reports}))
lines = []
for s in range(100):
    c = play["candidates"][s % len(play["candidates"])]
    path, _, query = c["url"].partition("?")
    for n in range(10):
        url = f"{path.removesuffix('.m3u8')}-{n}.ts?{query}"
        lines.append(f'br=(2000),e=rr,mtp=(9000),rc=200,sf=h,sid="bench-{s:04d}",sn={n},st=l,'
                     f'ts={1796154934042 + 2000 * n},ttfb=30,ttlb=90,url="{url}",v=2')
open(f"{work}/cmcd.txt", "w").write("\n".join(lines) + "\n")
PY
for kind in qos cmcd; do
  case $kind in
    qos) file=qos.json ct=application/json ;;
    cmcd) file=cmcd.txt ct=application/cmcd ;;
  esac
  cat >"$work/$kind.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "$ct"
local f = io.open("$work/$file", "rb")
wrk.body = f:read("*a")
f:close()
LUA
done
status() { curl -s -o /dev/null -w '%{http_code}' -X POST -H "content-type: $2" --data-binary "@$work/$3" "$base$1"; }
[ "$(status /v1/qos application/json qos.json)" = 200 ] || { echo "/v1/qos refused the body" >&2; exit 1; }
[ "$(status '/v1/cmcd?region=tw' application/cmcd cmcd.txt)" = 204 ] || { echo "/v1/cmcd refused the body" >&2; exit 1; }
dropped() { curl -sf "$base/metrics" | awk '/^livesteer_signals_dropped_total\{kind="delivery"\}/ {print $2}'; }
rate() { # path kind -> bodies/s
  wrk -t2 -c"$CONNS" -d"${DURATION}s" -s "$work/$2.lua" "$base$1" >"$work/wrk-$2.txt"
  if grep -q "Non-2xx" "$work/wrk-$2.txt"; then
    echo "$2: some answers were not 2xx:" >&2
    cat "$work/wrk-$2.txt" >&2
  fi
  awk '/Requests\/sec/ {print $2}' "$work/wrk-$2.txt"
}
d0=$(dropped)
qos=$(rate /v1/qos qos)
cmcd=$(rate '/v1/cmcd?region=tw' cmcd)
d1=$(dropped)
accepted=$(curl -sf "$base/metrics" | awk '/^livesteer_cmcd_lines_total\{outcome="accepted"\}/ {print $2}')
echo "| path | bodies/s | reports or lines/s | vs JSON |"
echo "|---|---:|---:|---:|"
awk -v q="$qos" -v c="$cmcd" 'BEGIN {
  printf "| POST /v1/qos, 1000 JSON reports | %.1f | %.0f | 1.00 |\n", q, q * 1000
  printf "| POST /v1/cmcd, 1000 CMCD lines | %.1f | %.0f | %.2f |\n", c, c * 1000, c / q
}'
echo
echo "delivery signals dropped during the run: $((${d1%.*} - ${d0%.*})); CMCD lines accepted: ${accepted%.*}"
