#!/usr/bin/env bash
# Wall and CPU time of `livesteer simulate` for this build against another (BIN=), in the
# same run: both play the same scenario and seeds, alternately, ROUNDS times each; prints a
# Markdown table of each run, the medians and their ratios, and whether the two reports agree.
# On a shared machine CPU time (user + system over both worker threads) is the steadier
# figure.
#
#   BIN=path/to/old/livesteer bash bench/simulate.sh
#   BIN=... SCENARIO=scenarios/steady-regions.yaml SEEDS=2 ROUNDS=3 bash bench/simulate.sh
#
# The reports are compared as JSON without the fields the other build may lack
# (`cost_per_1000_sessions`, `drift_time_to_avoid_seconds`): equal means every decision and
# every session came out the same.
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

run() { # binary, output file: prints "wall cpu" seconds (cpu: user + system, both threads)
  python3 - "$1" "$2" "$SCENARIO" "$POLICY" "$SEEDS" <<'PY'
import resource, subprocess, sys, time
binary, out, scenario, policy, seeds = sys.argv[1:]
start = time.monotonic()
with open(out, "w") as f:
    subprocess.run([binary, "simulate", "--scenario", scenario, "--policy", policy,
                    "--seeds", seeds, "--json"], stdout=f, stderr=subprocess.DEVNULL, check=True)
wall = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.1f} {ru.ru_utime + ru.ru_stime:.1f}")
PY
}

echo "scenario $SCENARIO, $SEEDS seed(s), $ROUNDS rounds, $(nproc) cores"
echo
echo "| round | other build: wall (s) | CPU (s) | this build: wall (s) | CPU (s) |"
echo "|---|---|---|---|---|"
old_times=()
new_times=()
old_cpu=()
new_cpu=()
for r in $(seq 1 "$ROUNDS"); do
  read -r o oc < <(run "$BIN" "$work/old.json")
  read -r n nc < <(run "$NEW" "$work/new.json")
  old_times+=("$o")
  new_times+=("$n")
  old_cpu+=("$oc")
  new_cpu+=("$nc")
  echo "| $r | $o | $oc | $n | $nc |"
done
python3 - "$work/old.json" "$work/new.json" "${old_times[*]}" "${new_times[*]}" "${old_cpu[*]}" "${new_cpu[*]}" <<'PY'
import json, statistics, sys
def strip(v):
    if isinstance(v, dict):
        skip = ("cost_per_1000_sessions", "drift_time_to_avoid_seconds")
        return {k: strip(x) for k, x in v.items() if k not in skip}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
old = strip(json.load(open(sys.argv[1])))
new = strip(json.load(open(sys.argv[2])))
o = statistics.median(map(float, sys.argv[3].split()))
n = statistics.median(map(float, sys.argv[4].split()))
oc = statistics.median(map(float, sys.argv[5].split()))
nc = statistics.median(map(float, sys.argv[6].split()))
sessions = sum(x["simulated_sessions"] for x in new["outcomes"]) // len(new["outcomes"])
print()
print(f"median wall: other {o:.1f} s, this {n:.1f} s: {o / n:.2f}x as fast; "
      f"median CPU: other {oc:.1f} s, this {nc:.1f} s: {oc / nc:.2f}x "
      f"({sessions} sessions per strategy, five strategies)")
print("reports:", "identical" if old == new else "DIFFERENT")
PY
