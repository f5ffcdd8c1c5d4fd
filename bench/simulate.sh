#!/usr/bin/env bash
# Wall time of `livesteer simulate` for this build against another (BIN=), in the same run:
# both play the same scenario and seeds, alternately, ROUNDS times each; prints a Markdown
# table of each run, the medians and their ratio, and whether the two reports agree.
#
#   BIN=path/to/old/livesteer bash bench/simulate.sh
#   BIN=... SCENARIO=scenarios/steady-regions.yaml SEEDS=2 ROUNDS=3 bash bench/simulate.sh
#
# The reports are compared as JSON without the fields the other build may lack
# (`cost_per_1000_sessions`): equal means every decision and every session came out the same.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BIN:?BIN=the other build, a livesteer binary}"
SCENARIO=${SCENARIO:-scenarios/flash-crowd.yaml}
SEEDS=${SEEDS:-1}
ROUNDS=${ROUNDS:-3}
POLICY=${POLICY:-policies/default.yaml}
NEW=${NEW:-}
if [ -z "$NEW" ]; then
  cargo build --release --quiet
  NEW=./target/release/livesteer
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # binary, output file: prints seconds
  local start end
  start=$(date +%s.%N)
  "$1" simulate --scenario "$SCENARIO" --policy "$POLICY" --seeds "$SEEDS" --json >"$2" 2>/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}

echo "scenario $SCENARIO, $SEEDS seed(s), $ROUNDS rounds, $(nproc) cores"
echo
echo "| round | other build (s) | this build (s) |"
echo "|---|---|---|"
old_times=()
new_times=()
for r in $(seq 1 "$ROUNDS"); do
  o=$(run "$BIN" "$work/old.json")
  n=$(run "$NEW" "$work/new.json")
  old_times+=("$o")
  new_times+=("$n")
  echo "| $r | $o | $n |"
done
python3 - "$work/old.json" "$work/new.json" "${old_times[*]}" "${new_times[*]}" <<'PY'
import json, statistics, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k != "cost_per_1000_sessions"}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
old = strip(json.load(open(sys.argv[1])))
new = strip(json.load(open(sys.argv[2])))
o = statistics.median(map(float, sys.argv[3].split()))
n = statistics.median(map(float, sys.argv[4].split()))
sessions = sum(x["simulated_sessions"] for x in new["outcomes"]) // len(new["outcomes"])
print()
print(f"median: other {o:.1f} s, this {n:.1f} s: {o / n:.2f}x as fast "
      f"({sessions} sessions per strategy, five strategies)")
print("reports:", "identical" if old == new else "DIFFERENT")
PY
