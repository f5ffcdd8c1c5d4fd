#!/usr/bin/env python3
"""The engine against the decision-quality targets, over several worlds per scenario.

Runs `livesteer simulate --json --seeds N` for each scenario (its policy: the capped one for
capped-provider, else the shipped one) into a directory of JSON reports, then prints one
Markdown row per scenario: engine/oracle, engine/static, engine/best historical (pooled, and
the range over single worlds), switches per session (engine, oracle), cost per 1,000
sessions and per hour watched (engine, best historical) and each incident's time to avoid in
the worst world (engine, oracle).

A strategy's figures do not depend on which strategies ran beside it, so an engine change
needs only the engine re-run: `--strategies engine` into a new directory, and `--baseline`
naming the directory that holds the other strategies' reports.

  python3 bench/targets.py --run --out runs/base            # every strategy, 8 worlds each
  python3 bench/targets.py --run --strategies engine --out runs/try1 --baseline runs/base
  python3 bench/targets.py --out runs/try1 --baseline runs/base   # the table again

`--loss` prints instead, per scenario, where in simulated time the engine lost against the
oracle: per bucket of the timeline (by when sessions started), the engine's and the oracle's
bad sessions over the engine's worlds, and their difference, also summed.
"""
import argparse
import json
import os
import subprocess
import sys

SCENARIOS = [
    "steady-regions", "regional-incident", "poor-uplink", "flash-crowd", "capped-provider",
    "cold-start", "evening-peak", "slow-drift", "eight-regions", "ingest-outage",
]
POLICY = {"capped-provider": "scenarios/policies/capped.yaml"}


def load(dirs, name):
    """Outcomes by strategy, pooled and per seed: the first directory holding each wins."""
    pooled, per_seed = {}, {}
    for d in dirs:
        path = os.path.join(d, name + ".json")
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                rep = json.load(f)
        except ValueError:  # still being written
            continue
        new = {o["strategy"] for o in rep["outcomes"]} - set(pooled)
        for o in rep["outcomes"]:
            if o["strategy"] in new:
                pooled[o["strategy"]] = o
        for run in rep.get("per_seed", []):
            for o in run["outcomes"]:
                if o["strategy"] in new:
                    per_seed[(run["seed"], o["strategy"])] = o
    return pooled, per_seed


def worst(a, b):
    return None if a is None or b is None else max(a, b)


def pool(outcomes):
    """Outcomes of several worlds pooled as `simulate --seeds` pools them."""
    n = sum(o["sessions"] for o in outcomes)
    out = {"sessions": n}
    for k in ["bad_session_rate", "switches_per_session", "cost_per_1000_sessions",
              "mean_watch_seconds"]:
        if all(k in o for o in outcomes):
            out[k] = sum(o[k] * o["sessions"] for o in outcomes) / max(n, 1)
    if out.get("mean_watch_seconds"):
        out["cost_per_watch_hour"] = (
            out["cost_per_1000_sessions"] / 1000 / (out["mean_watch_seconds"] / 3600))
    out["time_to_avoid_seconds"] = outcomes[0]["time_to_avoid_seconds"]
    out["drift_time_to_avoid_seconds"] = dict(outcomes[0].get("drift_time_to_avoid_seconds", {}))
    for o in outcomes[1:]:
        out["time_to_avoid_seconds"] = [
            worst(a, b) for a, b in zip(out["time_to_avoid_seconds"], o["time_to_avoid_seconds"])]
        for i, t in o.get("drift_time_to_avoid_seconds", {}).items():
            out["drift_time_to_avoid_seconds"][i] = worst(out["drift_time_to_avoid_seconds"][i], t)
    return out


def fmt_tta(ts):
    if not ts:
        return "-"
    return ", ".join("never" if t is None else f"{t:.0f} s" for t in ts)


def row(dirs, name):
    if "engine" not in load(dirs[:1], name)[0]:
        return None
    pooled, per_seed = load(dirs, name)
    # Every strategy over the worlds the engine ran in (a baseline may hold more).
    seeds = sorted({s for (s, k) in per_seed if k == "engine"})
    if seeds:
        for k in {k for (_, k) in per_seed}:
            runs = [per_seed[(s, k)] for s in seeds if (s, k) in per_seed]
            if len(runs) == len(seeds):
                pooled[k] = pool(runs)
            else:
                pooled.pop(k, None)
    e = pooled["engine"]
    cells = [name]
    for other in ["oracle", "static", "best_historical"]:
        o = pooled.get(other)
        if not o or o["bad_session_rate"] == 0:
            cells.append("?")
            continue
        r = e["bad_session_rate"] / o["bad_session_rate"]
        singles = [
            per_seed[(s, "engine")]["bad_session_rate"] / per_seed[(s, other)]["bad_session_rate"]
            for s in seeds
            if (s, other) in per_seed and per_seed[(s, other)]["bad_session_rate"] > 0
        ]
        span = f" ({min(singles):.2f}-{max(singles):.2f})" if singles else ""
        cells.append(f"{r:.2f}{span}")
    oracle = pooled.get("oracle", {})
    bh = pooled.get("best_historical", {})
    cells.append(f"{e['switches_per_session']:.3f} ({oracle.get('switches_per_session', float('nan')):.3f})")
    cells.append(
        f"{e['cost_per_1000_sessions']:.2f} ({bh.get('cost_per_1000_sessions', float('nan')):.2f})")
    cells.append(f"{e.get('cost_per_watch_hour', float('nan')):.4f} "
                 f"({bh.get('cost_per_watch_hour', float('nan')):.4f})")
    tta = fmt_tta(e["time_to_avoid_seconds"])
    otta = fmt_tta(oracle.get("time_to_avoid_seconds", []))
    cells.append(f"{tta} ({otta})")
    drift = e.get("drift_time_to_avoid_seconds") or {}
    if drift:
        od = oracle.get("drift_time_to_avoid_seconds") or {}
        cells.append(f"{fmt_tta(list(drift.values()))} ({fmt_tta(list(od.values()))})")
    else:
        cells.append("-")
    cells.append(f"{e['bad_session_rate'] * 100:.2f}%")
    return "| " + " | ".join(cells) + " |"


def loss(dirs, name):
    """Per timeline bucket, the engine's bad sessions against the oracle's, over the engine's
    worlds."""
    _, per_seed = load(dirs, name)
    seeds = sorted(s for (s, k) in per_seed if k == "engine")
    if not seeds or any((s, "oracle") not in per_seed for s in seeds):
        print(f"{name}: no engine, or no oracle in every world the engine ran in", file=sys.stderr)
        return
    if any("timeline" not in per_seed[(seeds[0], k)] for k in ["engine", "oracle"]):
        print(f"{name}: the engine's or the oracle's reports hold no timeline (made by an older "
              "build)", file=sys.stderr)
        return
    width = per_seed[(seeds[0], "engine")]["timeline"]["bucket_seconds"]

    def summed(strategy):
        out = []
        for s in seeds:
            for i, (n, bad) in enumerate(per_seed[(s, strategy)]["timeline"]["sessions"]):
                if i == len(out):
                    out.append([0, 0])
                out[i][0] += n
                out[i][1] += bad
        return out

    e, o = summed("engine"), summed("oracle")
    print(f"{name} ({len(seeds)} worlds, buckets of {width:.0f} s)")
    print("| from | sessions | engine bad | oracle bad | engine - oracle | summed |")
    print("|---|---|---|---|---|---|")
    total = 0
    for i, ((n, eb), (_, ob)) in enumerate(zip(e, o)):
        total += eb - ob
        print(f"| {i * width:.0f} s | {n} | {eb} | {ob} | {eb - ob} | {total} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="simulate before printing")
    ap.add_argument("--bin", default="target/release/livesteer")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--strategies", default="", help="comma-separated (default: all)")
    ap.add_argument("--out", required=True, help="directory of this run's JSON reports")
    ap.add_argument("--baseline", action="append", default=[],
                    help="directories holding the strategies this run did not simulate")
    ap.add_argument("--policies", help="a directory holding the policies to use instead "
                    "(default.yaml, capped.yaml), e.g. variants of the shipped ones")
    ap.add_argument("--scenario-dir", default="scenarios",
                    help="a directory holding the scenarios instead, e.g. the shipped ones with "
                    "other seeds")
    ap.add_argument("--loss", action="store_true",
                    help="print where in simulated time the engine lost against the oracle")
    ap.add_argument("scenarios", nargs="*", default=SCENARIOS)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.run:
        for name in a.scenarios:
            policy = POLICY.get(name, "policies/default.yaml")
            if a.policies:
                policy = os.path.join(a.policies, os.path.basename(policy))
            scenario = os.path.join(a.scenario_dir, name + ".yaml")
            cmd = [a.bin, "simulate", "--scenario", scenario, "--policy", policy,
                   "--seeds", str(a.seeds), "--json"]
            if a.strategies:
                cmd += ["--strategies", a.strategies]
            print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
            with open(os.path.join(a.out, name + ".json"), "w") as f:
                subprocess.run(cmd, stdout=f, check=True)
    if a.loss:
        for name in a.scenarios:
            loss([a.out] + a.baseline, name)
        return
    print("| scenario | engine / oracle | engine / static | engine / best historical "
          "| switches/session, engine (oracle) | cost per 1000 sessions, engine (best historical) "
          "| cost per watch hour, engine (best historical) "
          "| time to avoid, worst world: engine (oracle) "
          "| drift: from twice the best's rate, engine (oracle) | engine bad sessions |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in a.scenarios:
        r = row([a.out] + a.baseline, name)
        if r:
            print(r)


if __name__ == "__main__":
    main()
