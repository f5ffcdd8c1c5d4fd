#!/usr/bin/env bash
# Load test of the viewer hot path over HTTP on loopback, against /healthz in the same run:
# the play decision, a steering reload, master.m3u8 and manifest.mpd.
#
#   bash bench/load.sh            # 10 s per step
#   DURATION=30 bash bench/load.sh
#   BIN=path/to/livesteer POLICY=its/policies/default.yaml bash bench/load.sh
#                                 # another build (an older commit's, with its own policy file)
#
# 1. Throughput: wrk at full speed on GET /healthz, then on GET /v1/streams/{id}/play, on a
#    steering reload (GET /v1/steering/hls/{id}?session=…&_HLS_pathway=…&_HLS_throughput=…, a
#    player settled on its pathway: every request is attributed and emits its evidence) and on
#    GET /v1/streams/{id}/master.m3u8 (the origin's three-rendition ladder, from a local static
#    origin, replicated per pathway and signed; the origin is asked once per refresh interval),
#    and on GET /v1/streams/{id}/manifest.mpd (an nginx-rtmp-shaped live MPD from the same
#    origin, with a signed BaseURL per carrier and Content Steering; the origin is asked once per
#    minimumUpdatePeriod), with the same connections and threads; the ratio is each one's share
#    of healthz's. Beside
#    it, the server's CPU time per request over the same step (from /proc): the steadier
#    figure when other work shares the cores.
# 2. Latency at a fixed rate: hey at 10,000 requests/s (50 connections x 200/s) on each,
#    reporting p50, p90, p99 and the slowest (hey's resolution is 0.1 ms).
#
# The server and the load generators share this machine's cores: the figures are a floor.
# Installs wrk and hey from Debian's packages when missing. Prints a Markdown table.
#
#   INSTRUCTIONS=1 bash bench/load.sh
#                                 # instead: the server under callgrind (valgrind), and the
#                                 # user-space instructions it executes per request on each route
#                                 # (the least of three batches of REQUESTS, 2000, from hey); unlike
#                                 # throughput, the same build gives about the same count (within
#                                 # 1 to 2%) whatever else the machine runs
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
RATE_CONNS=${RATE_CONNS:-50}
RATE_PER_CONN=${RATE_PER_CONN:-200}

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need hey hey
if [ -n "${INSTRUCTIONS:-}" ]; then need valgrind valgrind; fi

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=./target/release/livesteer
fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The shipped providers, their local origins' HLS on a static origin of this run's own.
origin_port=$(free_port)
mkdir -p "$work/origin/hls" "$work/origin/dash" "$work/origin/live"
python3 -m http.server "$origin_port" --bind 127.0.0.1 --directory "$work/origin" >/dev/null 2>&1 &
origin=$!
cp -r providers "$work/providers"
sed -i -e "s#http://127.0.0.1:8088/hls#http://127.0.0.1:$origin_port/hls#" \
  -e "s#http://127.0.0.1:8088/dash#http://127.0.0.1:$origin_port/dash#" \
  -e "s#http://127.0.0.1:18080/live#http://127.0.0.1:$origin_port/live#" "$work"/providers/*.yaml
# Under callgrind, the server's own pid is valgrind's (it runs the program in its process).
run=()
if [ -n "${INSTRUCTIONS:-}" ]; then
  run=(valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out")
fi
RUST_LOG=warn "${run[@]}" "$BIN" serve --listen "127.0.0.1:$port" --providers "$work/providers" \
  --policy "${POLICY:-policies/default.yaml}" \
  --database-url "sqlite://$work/load.db" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server $origin 2>/dev/null; wait $server $origin 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# The origin answers before the first master.m3u8 asks it (a refused fetch is remembered for the
# policy's origin_retry_seconds).
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$origin_port/" && break; sleep 0.1; done

base="http://127.0.0.1:$port"
id=$(curl -sf -X POST "$base/v1/streams" -H 'content-type: application/json' \
  -d '{"anchor_id":"load-anchor","region":"tw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_id"])')
play="$base/v1/streams/$id/play?protocol=hls&region=tw"
curl -sf "$play" >/dev/null
for dir in hls live; do
  cat >"$work/origin/$dir/$id.m3u8" <<EOF
#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=25
${id}_hi/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1200000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=854x480,FRAME-RATE=25
${id}_mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS="avc1.42c01e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25
${id}_lo/index.m3u8
EOF
done
master="$base/v1/streams/$id/master.m3u8?region=tw"
curl -sf "$master" >/dev/null || { echo "master.m3u8 failed:" >&2; curl -s "$master" >&2; exit 1; }
for dir in dash live; do
  cat >"$work/origin/$dir/$id.mpd" <<EOF
<?xml version="1.0"?>
<MPD type="dynamic" xmlns="urn:mpeg:dash:schema:mpd:2011" availabilityStartTime="2026-12-02T04:00:00Z"
    publishTime="2026-12-02T04:00:10Z" minimumUpdatePeriod="PT2S" minBufferTime="PT2S"
    timeShiftBufferDepth="PT10S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period start="PT0S" id="dash">
    <AdaptationSet id="1" segmentAlignment="true" maxWidth="1280" maxHeight="720" maxFrameRate="25">
      <Representation id="${id}_H264" mimeType="video/mp4" codecs="avc1.4d401f" width="1280"
          height="720" frameRate="25" startWithSAP="1" bandwidth="2500000">
        <SegmentTemplate timescale="1000" media="${id}-\$Time\$.m4v" initialization="${id}-init.m4v">
          <SegmentTimeline><S t="0" d="2000"/><S t="2000" d="2000"/><S t="4000" d="2000"/><S t="6000" d="2000"/><S t="8000" d="2000"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="2" segmentAlignment="true">
      <Representation id="${id}_AAC" mimeType="audio/mp4" codecs="mp4a.40.2" audioSamplingRate="44100"
          startWithSAP="1" bandwidth="64000">
        <SegmentTemplate timescale="1000" media="${id}-\$Time\$.m4a" initialization="${id}-init.m4a">
          <SegmentTimeline><S t="0" d="2000"/><S t="2000" d="2000"/><S t="4000" d="2000"/><S t="6000" d="2000"/><S t="8000" d="2000"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
EOF
done
mpd="$base/v1/streams/$id/manifest.mpd?region=tw"
curl -sf "$mpd" | grep -q '<ContentSteering' || { echo "manifest.mpd failed:" >&2; curl -s "$mpd" >&2; exit 1; }
# A steering reload as a player on the first pathway sends it: its second reload, whose session
# says where it is and since when (from the healthz and play steps on, it has been there longer
# than the policy's settle_seconds, so each request is attributed).
reload_of() { # URL -> the RELOAD-URI (absolute) and the first pathway of its answer
  curl -sf "$1" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(m["RELOAD-URI"], m["PATHWAY-PRIORITY"][0])'
}
read -r reload first <<<"$(reload_of "$base/v1/steering/hls/$id?region=tw")"
case "$reload" in /*) reload="$base$reload" ;; esac
read -r reload first <<<"$(reload_of "$reload&_HLS_pathway=$first&_HLS_throughput=6000000")"
case "$reload" in /*) reload="$base$reload" ;; esac
steer="$reload&_HLS_pathway=$first&_HLS_throughput=6000000"
curl -sf "$steer" >/dev/null

# The server's CPU time so far, in clock ticks (utime + stime).
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# wrk at full speed: "req/s cpu_us_per_request", the second from the server's CPU time over the
# requests wrk completed. CPU per request moves far less than throughput when other work shares
# the machine's cores.
rps() {
  local t0 t1
  t0=$(ticks)
  wrk -t2 -c64 -d"${DURATION}s" --latency "$1" >"$work/wrk.txt"
  t1=$(ticks)
  awk -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1}
    /Requests\/sec/ {r = $2}
    END {printf "%s %.1f\n", r, ticks * 1e6 / hz / n}' "$work/wrk.txt"
}
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

if [ -n "${INSTRUCTIONS:-}" ]; then
  # Per route: 200 requests to warm it, then three times: the counters zeroed, REQUESTS
  # requests, a dump. A dump counts every thread of the server, so a batch that a periodic job
  # (a probe run, a scoring refresh) falls into counts it too: the least of the three is the
  # route's.
  requests=${REQUESTS:-2000}
  instructions() { # URL -> instructions per request
    hey -n 200 -c 2 "$1" >/dev/null
    local dump least=""
    for _ in 1 2 3; do
      callgrind_control -z "$server" >/dev/null 2>&1
      hey -n "$requests" -c 2 "$1" >"$work/hey.txt"
      callgrind_control -d "$server" >/dev/null 2>&1
      dump=$(ls -t "$work"/callgrind.out.* | head -1)
      least=$(awk -v n="$requests" -v least="$least" '/^summary:/ {
        x = $2 / n; if (least == "" || x < least) least = x } END {printf "%.0f", least}' "$dump")
    done
    echo "$least"
  }
  # The first pass runs beside the server's start-up work (its first probe and scoring runs,
  # slower under callgrind): measured and dropped.
  instructions "$base/healthz" >/dev/null
  h=$(instructions "$base/healthz")
  echo
  echo "| endpoint | instructions per request | multiple of /healthz |"
  echo "|---|---|---|"
  echo "| GET /healthz | $h | 1.00 |"
  for route in "GET /v1/streams/{id}/play|$play" "GET /v1/steering/hls/{id} (reload)|$steer" \
    "GET /v1/streams/{id}/master.m3u8|$master" "GET /v1/streams/{id}/manifest.mpd|$mpd"; do
    n=$(instructions "${route#*|}")
    echo "| ${route%%|*} | $n | $(python3 -c "print(f'{$n/$h:.2f}')") |"
  done
  exit 0
fi
read -r h hc <<<"$(rps "$base/healthz")"
read -r p pc <<<"$(rps "$play")"
read -r s sc <<<"$(rps "$steer")"
read -r m mc <<<"$(rps "$master")"
read -r d dc <<<"$(rps "$mpd")"
read -r h50 h90 h99 hmax hrate <<<"$(pct "$base/healthz")"
read -r p50 p90 p99 pmax prate <<<"$(pct "$play")"
read -r s50 s90 s99 smax srate <<<"$(pct "$steer")"
read -r m50 m90 m99 mmax mrate <<<"$(pct "$master")"
read -r d50 d90 d99 dmax drate <<<"$(pct "$mpd")"
echo
echo "| endpoint | wrk req/s, full speed | share of /healthz | server CPU µs/request | hey req/s achieved | p50 ms | p90 ms | p99 ms | slowest ms |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| GET /healthz | $h | 100% | $hc | $hrate | $h50 | $h90 | $h99 | $hmax |"
echo "| GET /v1/streams/{id}/play | $p | $(python3 -c "print(f'{100*$p/$h:.0f}%')") | $pc | $prate | $p50 | $p90 | $p99 | $pmax |"
echo "| GET /v1/steering/hls/{id} (reload) | $s | $(python3 -c "print(f'{100*$s/$h:.0f}%')") | $sc | $srate | $s50 | $s90 | $s99 | $smax |"
echo "| GET /v1/streams/{id}/master.m3u8 | $m | $(python3 -c "print(f'{100*$m/$h:.0f}%')") | $mc | $mrate | $m50 | $m90 | $m99 | $mmax |"
echo "| GET /v1/streams/{id}/manifest.mpd | $d | $(python3 -c "print(f'{100*$d/$h:.0f}%')") | $dc | $drate | $d50 | $d90 | $d99 | $dmax |"
