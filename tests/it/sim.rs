//! `livesteer simulate`: deterministic for a seed, and bad scenarios are refused with their line.

use std::process::Command;

use serde_json::json;

use crate::support::{YamlDoc, root};

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

/// [`SHORT`], to be changed field by field.
fn short() -> YamlDoc {
    YamlDoc::parse(SHORT)
}

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
    let c = simulate(&short().set("seed", 6).to_yaml(), &["--json"]);
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
    let outage = short()
        .set("incidents[0].quality.stall", 1)
        .set("incidents[0].quality.error", 1);
    let report = report(&outage.to_yaml());
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
    let one = |seed: u64| report(&short().set("seed", seed).to_yaml());
    let (five, six) = (one(5), one(6));
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
        (
            "quality: { stall: 0.5",
            "ramp_seconds: 900, quality: { stall: 0.5",
            "short.yaml:11: incident ramp_seconds must be from 0 to end_seconds - start_seconds",
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
        Some(&root().join("providers")),
    )
    .unwrap();
    assert!(catalog.registry.len() >= 2);
    // Prices come from the provider files.
    let tencent = catalog.registry.get("tencent").unwrap();
    assert_eq!(tencent.info().cost_per_gb, Some(0.034));
    for entry in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let policy = if path.ends_with("capped-provider.yaml") {
                "scenarios/policies/capped.yaml"
            } else {
                "policies/default.yaml"
            };
            livesteer::sim::catalog(&root().join(policy), &path, Some(&root().join("providers")))
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

/// What the report test needs to open the page: Debian's Chromium, node and playwright-core
/// (`npm ci --prefix tests/players`). Skips without them, fails in CI.
fn chromium_present() -> bool {
    let mut missing = Vec::new();
    if !std::path::Path::new("/usr/bin/chromium").is_file() {
        missing.push(("/usr/bin/chromium".to_string(), "apt-get install chromium"));
    }
    if !crate::media::runs("node", &["--version"]) {
        missing.push(("node".to_string(), "apt-get install nodejs npm"));
    }
    if !root()
        .join("tests/players/node_modules/playwright-core")
        .is_dir()
    {
        missing.push((
            "tests/players/node_modules".to_string(),
            "npm ci --prefix tests/players",
        ));
    }
    crate::media::require("the HTML report test", &missing)
}

/// `--report FILE.html`: one page with nothing from elsewhere, whose charts Chromium draws
/// (every strategy's line, the incident, each provider share band, the cost bars), with a
/// screenshot in the test's directory.
#[test]
fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = simulate(SHORT, &["--report", page.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in ["<script", "<link", "@import", "url(", "https://", "src="] {
        assert!(!html.contains(outside), "the page has {outside:?}");
    }
    assert!(
        html.replace("http://www.w3.org/2000/svg", "")
            .find("http://")
            .is_none(),
        "the page names an outside URL"
    );
    assert!(html.contains("<table id=\"summary\">") && html.contains("cost per 1000 sessions"));
    if !chromium_present() {
        return;
    }
    let shot = dir.path().join("report.png");
    let run = Command::new("node")
        .arg(root().join("tests/players/report.mjs"))
        .arg("--page")
        .arg(&page)
        .arg("--screenshot")
        .arg(&shot)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "report.mjs: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(seen["requests"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["tables"], 6, "a header and five strategies: {seen}");
    let charts = seen["charts"].as_array().unwrap();
    let chart = |id: &str| {
        charts
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no chart {id}: {seen}"))
            .clone()
    };
    for c in charts {
        assert!(
            c["width"].as_f64().unwrap() > 100.0 && c["height"].as_f64().unwrap() > 50.0,
            "{c}"
        );
    }
    let bad = chart("bad-rate");
    // Five strategies' lines and the incident.
    assert_eq!(bad["drawn"], bad["shapes"], "{bad}");
    assert_eq!(bad["drawn"], 6, "{bad}");
    let cost = chart("cost");
    assert_eq!(cost["drawn"], 5, "{cost}");
    // One region (tw): the engine's and the oracle's provider shares, each with bands.
    let shares: Vec<&serde_json::Value> = charts
        .iter()
        .filter(|c| c["class"] == "chart share")
        .collect();
    assert_eq!(shares.len(), 2, "{seen}");
    for s in shares {
        assert!(
            s["kinds"].as_array().unwrap().iter().any(|k| k == "band"),
            "{s}"
        );
    }
    let png = std::fs::metadata(&shot).unwrap();
    assert!(png.len() > 10_000, "screenshot of {} bytes", png.len());
    eprintln!("report screenshot: {}", shot.display());
}

/// A world with a drift that repeats, a traffic ramp, locality, a shared capacity, an ingest
/// incident and anchors arriving simulates; cost per 1,000 sessions is the provider files'
/// prices unless the scenario's own override them.
#[test]
fn the_richer_world_simulates_and_prices_its_sessions() {
    let world = short()
        .insert("regions.tw.locality", 0.8)
        .insert(
            "regions.tw.ramps",
            json!([{"start_seconds": 0, "end_seconds": 200, "factor": 1.5}]),
        )
        .insert("regions.hk", json!({"sessions_per_second": 5}))
        .insert("incidents[0].ramp_seconds", 60)
        .insert(
            "incidents[0].repeat",
            json!({"every_seconds": 160, "times": 2}),
        )
        .set("incidents[0].start_seconds", 20)
        .set("incidents[0].end_seconds", 150)
        .insert("anchors.per_region.hk", 2)
        .insert(
            "anchors.arrivals",
            json!([{"region": "hk", "count": 3, "from_seconds": 60, "until_seconds": 240}]),
        )
        .insert(
            "shared_capacity",
            json!([{"provider": "alibaba", "regions": ["tw", "hk"], "sessions": 500}]),
        )
        .insert(
            "ingest_incidents",
            json!([{"provider": "alibaba", "region": "tw", "start_seconds": 100,
                    "end_seconds": 200, "stall": 0.5}]),
        );
    let r = report(&world.to_yaml());
    let engine = outcome(&r, "engine");
    assert!(engine["sessions"].as_u64().unwrap() > 5_000, "{engine}");
    assert_eq!(engine["time_to_avoid_seconds"].as_array().unwrap().len(), 1);
    assert!(engine["regions"]["hk"]["sessions"].as_u64().unwrap() > 500);
    // Tencent 0.034, Alibaba 0.03 and local-srs 0 per GB: some cost, under the dearest.
    let gb_per_session = 300.0 * 2_500_000.0 / 8e9;
    for s in ["engine", "static", "random", "best_historical", "oracle"] {
        let cost = outcome(&r, s)["cost_per_1000_sessions"].as_f64().unwrap();
        assert!(
            cost > 0.0 && cost < 1000.0 * gb_per_session * 0.034 * 2.0,
            "{s}: {cost}"
        );
    }
    let free = report(
        &world
            .clone()
            .insert("prices", json!({"tencent": 0, "alibaba": 0}))
            .to_yaml(),
    );
    for s in ["engine", "static", "oracle"] {
        assert_eq!(outcome(&free, s)["cost_per_1000_sessions"], 0.0, "{s}");
    }
    // One price everywhere: an hour watched costs that price for an hour at the bitrate,
    // whoever delivers it and however long the sessions last.
    let flat = report(
        &world
            .insert(
                "prices",
                json!({"tencent": 0.05, "alibaba": 0.05, "local-srs": 0.05}),
            )
            .to_yaml(),
    );
    let gb_per_hour = 3600.0 * 2_500_000.0 / 8e9;
    for s in ["engine", "static", "random", "best_historical", "oracle"] {
        let o = outcome(&flat, s);
        let per_hour = o["cost_per_watch_hour"].as_f64().unwrap();
        assert!(
            (per_hour - 0.05 * gb_per_hour).abs() < 1e-9,
            "{s}: {per_hour}"
        );
        let watch = o["mean_watch_seconds"].as_f64().unwrap();
        let per_session = o["cost_per_1000_sessions"].as_f64().unwrap() / 1000.0;
        assert!(
            watch > 0.0 && (per_session - 0.05 * gb_per_hour * watch / 3600.0).abs() < 1e-9,
            "{s}: {watch} s, {per_session}"
        );
    }
}

/// `--strategies` simulates only those named, each exactly as in a run of all; an unknown name
/// is refused.
#[test]
fn a_run_of_some_strategies_gives_their_figures_of_a_run_of_all() {
    let all = report(SHORT);
    let out = simulate(SHORT, &["--json", "--strategies", "oracle,engine"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let some: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = some["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["engine", "oracle"], "report order, once each");
    for s in ["engine", "oracle"] {
        assert_eq!(outcome(&some, s), outcome(&all, s), "{s}");
    }
    // The engine alone has nothing to be compared with: no ratio line, not an empty one.
    let out = simulate(SHORT, &["--strategies", "engine"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| engine |"), "{text}");
    assert!(!text.contains("bad-session rate"), "{text}");
    let out = simulate(SHORT, &["--strategies", "engine,psychic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown strategy \"psychic\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A drift's time to avoid is also timed from the moment its provider got twice as bad as the
/// best other one, which the oracle (knowing the truth) meets at once; a step incident has no
/// such figure.
#[test]
fn a_drift_is_also_timed_from_twice_the_best_providers_rate() {
    let drift = short().insert("incidents[0].ramp_seconds", 120);
    let r = report(&drift.to_yaml());
    // Alibaba is the best other (5% stall): Tencent, ramping from 2% stall to 50% stall and 5%
    // errors, is 10% bad 18 s into its ramp.
    let oracle = outcome(&r, "oracle");
    assert_eq!(oracle["drift_time_to_avoid_seconds"]["0"], 0.0, "{oracle}");
    let engine = outcome(&r, "engine");
    let from_twice = engine["drift_time_to_avoid_seconds"]["0"].as_f64().unwrap();
    let from_start = engine["time_to_avoid_seconds"][0].as_f64().unwrap();
    assert!(from_twice < from_start, "{engine}");
    let step = report(SHORT);
    assert_eq!(
        outcome(&step, "engine")["drift_time_to_avoid_seconds"],
        serde_json::json!({})
    );
}
