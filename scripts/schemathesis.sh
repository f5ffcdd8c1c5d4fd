#!/usr/bin/env bash
# The schema check: schemathesis (pinned in tests/schema/requirements.txt) against a live
# `livesteer serve` on a loopback port with a fresh SQLite file, driven by the server's own
# GET /openapi.json. Checks: no 5xx (`not_a_server_error`) and every answer matches the
# document (`response_schema_conformance`). Reproducible (fixed seed, one worker) and bounded
# (a few dozen cases per operation, a hard time limit).
#
# Uses the debug binary `cargo test` built (target/debug/livesteer, or $CARGO_TARGET_DIR's);
# builds nothing. Installs schemathesis into a venv under the target directory.
#
# The shipped local origins (local-srs, local-nginx) are pointed at a stand-in origin
# (tests/schema/origin.py) on another loopback port, so `master.m3u8` and `manifest.mpd` of the
# streams the check creates read a real playlist and MPD, as they would in production.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 30), SCHEMATHESIS_SEED (default 17),
# SCHEMATHESIS_MAX_TIME (seconds before the run is stopped, default 170).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/debug/livesteer
if [ ! -x "$bin" ]; then
  echo "no $bin: run cargo test (or cargo build) first" >&2
  exit 1
fi

work=$target/schemathesis
venv=$work/venv
rm -rf "$work/run"
mkdir -p "$work/run"
run=$work/run

# schemathesis, pinned; reinstalled only when the pin changes.
req=$root/tests/schema/requirements.txt
if [ ! -x "$venv/bin/schemathesis" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

origin_port=$(free_port)
python3 "$root/tests/schema/origin.py" "$origin_port" &
pids+=($!)

# The shipped providers, with the local origins' HTTP endpoints on the stand-in.
cp -r "$root/providers" "$run/providers"
sed -i -E "s#http://127\.0\.0\.1:(18080|8088)/#http://127.0.0.1:${origin_port}/#" \
  "$run/providers/local-srs.yaml" "$run/providers/local-nginx.yaml"

port=$(free_port)
base=http://127.0.0.1:$port
token=schema-check-admin-token
LIVESTEER_ADMIN_TOKEN=$token RUST_LOG=${RUST_LOG:-warn} "$bin" serve \
  --listen "127.0.0.1:$port" \
  --database-url "sqlite://$run/livesteer.db" \
  --providers "$run/providers" \
  --policies "$root/policies" >"$run/serve.log" 2>&1 &
pids+=($!)

ready() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$base/readyz" 2>/dev/null
}
for _ in $(seq 1 100); do
  ready && break
  sleep 0.1
done
if ! ready; then
  echo "livesteer did not become ready; its log:" >&2
  cat "$run/serve.log" >&2
  exit 1
fi

# In the run directory, where schemathesis keeps its own state (.schemathesis/).
cd "$run"
set +e
timeout --kill-after=10 "${SCHEMATHESIS_MAX_TIME:-170}" \
  "$venv/bin/schemathesis" run "$base/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --seed "${SCHEMATHESIS_SEED:-17}" \
  --workers 1 \
  --header "Authorization: Bearer $token" \
  --request-timeout 10 \
  --no-color
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); livesteer's log: $run/serve.log" >&2
fi
exit "$status"
