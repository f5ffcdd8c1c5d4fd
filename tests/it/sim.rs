//! `livesteer simulate`: deterministic for a seed, and bad scenarios are refused with their line.

use std::process::Command;

use crate::support::root;

const SHORT: &str = "\
description: a short incident, for tests
seed: 5
duration_seconds: 300
regions:
  tw: { sessions_per_second: 20 }
providers:
  tencent: { stall: 0.02, startup_ms: 800 }
  alibaba: { stall: 0.05, startup_ms: 1000 }
  local-srs: { stall: 0.06, startup_ms: 1100 }
incidents:
  - { provider: tencent, region: tw, start_seconds: 100, end_seconds: 250, quality: { stall: 0.5, startup_ms: 2000, error: 0.05 } }
anchors:
  per_region: { tw: 10 }
";

fn simulate(scenario: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.yaml");
    std::fs::write(&file, scenario).unwrap();
    Command::new(env!("CARGO_BIN_EXE_livesteer"))
        .arg("simulate")
        .arg("--scenario")
        .arg(&file)
        .args(extra)
        .current_dir(root())
        .output()
        .unwrap()
}

/// The JSON report on `scenario`, which must simulate.
fn report(scenario: &str) -> serde_json::Value {
    let out = simulate(scenario, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One strategy's outcome in a JSON report.
fn outcome(report: &serde_json::Value, strategy: &str) -> serde_json::Value {
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["strategy"] == strategy)
        .unwrap()
        .clone()
}

#[test]
fn a_seed_replays_exactly_and_the_engine_avoids_the_incident() {
    let a = simulate(SHORT, &["--json"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = simulate(SHORT, &["--json"]);
    assert_eq!(a.stdout, b.stdout, "same seed, same report");
    let report: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let outcomes = report["outcomes"].as_array().unwrap();
    let names: Vec<&str> = outcomes
        .iter()
        .map(|o| o["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["engine", "static", "random", "best_historical", "oracle"]
    );
    let sessions = outcomes[0]["sessions"].as_u64().unwrap();
    assert!(
        (5_000..7_000).contains(&sessions),
        "{sessions} sessions for 20/s over 300 s"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| o["sessions"] == outcomes[0]["sessions"]),
        "same arrivals for all"
    );
    let bad = |name: &str| outcome(&report, name)["bad_session_rate"].as_f64().unwrap();
    assert!(
        bad("engine") < bad("static"),
        "engine {} vs static {}",
        bad("engine"),
        bad("static")
    );
    assert!(bad("oracle") <= bad("engine"));
    let avoid = outcomes[0]["time_to_avoid_seconds"][0]
        .as_f64()
        .expect("the engine avoided the incident");
    assert!(avoid <= 60.0, "{avoid}");
    // Another seed is another world.
    let c = simulate(&SHORT.replace("seed: 5", "seed: 6"), &["--json"]);
    assert_ne!(a.stdout, c.stdout);
}

/// Players reload steering every TTL and follow it: players that never leave a pathway on
/// their own are still moved off the incident by the engine's steering, while static steering
/// leaves them where they are.
#[test]
fn players_follow_the_steering_ttl() {
    let report = report(&format!("{SHORT}sessions: {{ switch_on_stall: 0 }}\n"));
    let outcome = |name: &str| outcome(&report, name);
    let switches = |name: &str| outcome(name)["switches_per_session"].as_f64().unwrap();
    assert_eq!(switches("static"), 0.0);
    assert!(switches("engine") > 0.05, "{}", switches("engine"));
    assert!(switches("oracle") > 0.05, "{}", switches("oracle"));
    let bad = |name: &str| outcome(name)["bad_session_rate"].as_f64().unwrap();
    assert!(
        bad("engine") < bad("static"),
        "{} vs {}",
        bad("engine"),
        bad("static")
    );
}

/// An outage (every session on the provider fails) is an incident like any other: the engine
/// avoids it within seconds, and players that fail there move to their next candidate.
#[test]
fn an_outage_is_avoided() {
    let outage = SHORT.replace(
        "quality: { stall: 0.5, startup_ms: 2000, error: 0.05 }",
        "quality: { stall: 1, startup_ms: 2000, error: 1 }",
    );
    assert_ne!(outage, SHORT);
    let report = report(&outage);
    let outcome = |name: &str| outcome(&report, name);
    let avoid = outcome("engine")["time_to_avoid_seconds"][0]
        .as_f64()
        .expect("the engine avoided the outage");
    assert!(avoid <= 30.0, "{avoid}");
    assert_eq!(
        outcome("static")["time_to_avoid_seconds"][0],
        serde_json::Value::Null
    );
    let bad = |name: &str| outcome(name)["bad_session_rate"].as_f64().unwrap();
    assert!(
        bad("engine") < 0.5 * bad("static"),
        "{} vs {}",
        bad("engine"),
        bad("static")
    );
}

#[test]
fn several_seeds_pool_their_worlds() {
    let one = |seed: &str| report(&SHORT.replace("seed: 5", seed));
    let (five, six) = (one("seed: 5"), one("seed: 6"));
    let out = simulate(SHORT, &["--json", "--seeds", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(both["seeds"], serde_json::json!([5, 6]));
    assert_eq!(both["per_seed"][0]["outcomes"], five["outcomes"]);
    assert_eq!(both["per_seed"][1]["outcomes"], six["outcomes"]);
    for k in 0..5 {
        let n = |r: &serde_json::Value| r["outcomes"][k]["sessions"].as_u64().unwrap();
        let bad = |r: &serde_json::Value| {
            r["outcomes"][k]["bad_session_rate"].as_f64().unwrap() * n(r) as f64
        };
        assert_eq!(n(&both), n(&five) + n(&six));
        assert!((bad(&both) - bad(&five) - bad(&six)).abs() < 1e-6);
    }
    let out = simulate(SHORT, &["--seeds", "0"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses --seeds 0");
}

#[test]
fn bad_scenarios_are_refused_with_their_line() {
    for (from, to, message) in [
        (
            "  alibaba: { stall: 0.05",
            "  alibaba: { stall: 1.5",
            "alibaba.stall is 1.5",
        ),
        (
            "  local-srs:",
            "  nobody:",
            "provider \"nobody\" is not a provider of the policy",
        ),
        (
            "  tw: { sessions",
            "  mars: { sessions",
            "region \"mars\" is not a region of the policy",
        ),
        ("seed: 5", "sed: 5", "unknown field `sed`"),
        (
            "startup_ms: 800 }",
            "startup_ms: 800, capacity_sessions: 0 }",
            "tencent.capacity_sessions must be at least 1",
        ),
        (
            "startup_ms: 800 }",
            "startup_ms: 800, throughput_bps: -1 }",
            "tencent.throughput_bps must be",
        ),
    ] {
        let out = simulate(&SHORT.replacen(from, to, 1), &[]);
        assert_eq!(out.status.code(), Some(1), "{to}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("short.yaml:") && stderr.contains(message),
            "{to}: {stderr}"
        );
    }
}

#[test]
fn shipped_scenarios_load() {
    let (catalog, _) = livesteer::sim::catalog(
        &root().join("policies/default.yaml"),
        &root().join("scenarios/steady-regions.yaml"),
    )
    .unwrap();
    assert!(catalog.registry.len() >= 2);
    for entry in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let policy = if path.ends_with("capped-provider.yaml") {
                "scenarios/policies/capped.yaml"
            } else {
                "policies/default.yaml"
            };
            livesteer::sim::catalog(&root().join(policy), &path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// A provider's capacity: past it, the excess share of sessions stalls and startup slows; an
/// incident that names no capacity keeps the provider's.
#[test]
fn capacity_degrades_quality_under_load() {
    let q = livesteer::sim::Quality {
        stall: 0.03,
        stall_ratio: 0.05,
        startup_ms: 900.0,
        error: 0.0,
        throughput_bps: 6_000_000.0,
        capacity_sessions: Some(30_000.0),
    };
    let same = q.under_load(29_000.0);
    assert_eq!(
        (same.stall, same.startup_ms, same.throughput_bps),
        (0.03, 900.0, 6e6)
    );
    let twice = q.under_load(60_000.0);
    assert!(
        (twice.stall - (1.0 - 0.97 / 2.0)).abs() < 1e-12,
        "{}",
        twice.stall
    );
    assert!((twice.startup_ms - 1800.0).abs() < 1e-9);
    assert!((twice.throughput_bps - 3e6).abs() < 1e-6);
    let unlimited = livesteer::sim::Quality {
        capacity_sessions: None,
        ..q
    };
    assert_eq!(unlimited.under_load(1e9).stall, 0.03);
}

/// In a world where the best CDN cannot carry a surge alone, sending everyone to it (best
/// historical) is far worse than spreading the load; the engine spreads it.
#[test]
fn a_surge_past_capacity_is_spread() {
    let world = "\
description: a surge past one CDN's capacity
seed: 3
duration_seconds: 900
warmup_seconds: 300
regions:
  tw:
    sessions_per_second: 20
    surges:
      - { start_seconds: 450, end_seconds: 750, extra_per_second: 60 }
providers:
  tencent: { stall: 0.07, startup_ms: 1200, capacity_sessions: 9000 }
  alibaba: { stall: 0.03, startup_ms: 900, capacity_sessions: 8000 }
  local-srs: { stall: 0.05, startup_ms: 1000, capacity_sessions: 8000 }
anchors:
  per_region: { tw: 20 }
sessions: { mean_seconds: 300 }
";
    let report = report(world);
    let bad = |name: &str| outcome(&report, name)["bad_session_rate"].as_f64().unwrap();
    assert!(
        bad("engine") < 0.8 * bad("best_historical"),
        "engine {} vs best historical {}",
        bad("engine"),
        bad("best_historical")
    );
    assert!(bad("oracle") < bad("best_historical"));
}
