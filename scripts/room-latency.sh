#!/usr/bin/env bash
# Detection latency of room state against a real nginx-rtmp origin: runs the real-origin test
# (tests/it/origin.rs) N times and summarises the figures it prints:
#   publish start → live      ffmpeg started → the room is in GET /v1/rooms?state=live
#   publish stop → stalled    ffmpeg killed  → the room left the live list (stalled)
#   publish stop → offline    ffmpeg killed  → the room is offline
# The test's policy: confirm_ms 3000, stall_grace_ms 500, offline_grace_ms 1500; nginx
# notify_update_timeout 1s; rooms swept every 50 ms; the API polled every 50 ms.
# Usage: scripts/room-latency.sh [runs]   (needs nginx, libnginx-mod-rtmp, ffmpeg)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo test --test it --no-run -q 2>/dev/null
out=$(mktemp)
for i in $(seq 1 "$runs"); do
  cargo test -q --test it origin:: -- --nocapture 2>&1 | grep -E '^publish (start|stop)' >>"$out"
done
to_ms() { awk '{ v=$1; if (v ~ /ms$/) { sub(/ms$/,"",v); print v } else if (v ~ /µs$/) { sub(/µs$/,"",v); print v/1000 } else { sub(/s$/,"",v); print v*1000 } }'; }
summary() { sort -n | awk -v name="$1" '{ a[NR]=$1; s+=$1 } END { printf "%-26s n=%d  min %.0f ms  median %.0f ms  max %.0f ms  mean %.0f ms\n", name, NR, a[1], a[int((NR+1)/2)], a[NR], s/NR }'; }
grep 'publish start' "$out" | sed -E 's/.*: //' | to_ms | summary "publish start → live"
grep 'publish stop' "$out" | sed -E 's/.*stalled: ([^,]*),.*/\1/' | to_ms | summary "publish stop → stalled"
grep 'publish stop' "$out" | sed -E 's/.*offline: //' | to_ms | summary "publish stop → offline"
rm -f "$out"
