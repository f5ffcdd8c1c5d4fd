use std::collections::BTreeSet;
use std::path::Path;

use super::*;

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const GOOD: &str = "\
regions:
  - id: tw
    countries: [TW]
    cidrs: [203.69.0.0/16]
    providers: [a, b]
  - id: global
    providers: [b]
default_region: global
";

fn errors(text: &str) -> Vec<String> {
    Policy::parse(Path::new("policies/x.yaml"), text, &ids(&["a", "b"]))
        .unwrap_err()
        .0
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn a_good_policy_loads_with_defaults() {
    let p = Policy::parse(Path::new("p.yaml"), GOOD, &ids(&["a", "b"])).unwrap();
    assert_eq!(p.regions.len(), 2);
    assert_eq!(p.region("tw").unwrap().providers, ["a", "b"]);
    assert_eq!(p.delivery.default_protocol, Protocol::Flv);
    assert_eq!(p.ingest.backups, 1);
    assert_eq!(p.version.len(), 16);
    assert_eq!(p.region_for_country("tw").unwrap().id, "tw");
    assert_eq!(
        p.region_for_ip("203.69.3.4".parse().unwrap()).unwrap().id,
        "tw"
    );
    assert!(p.region_for_ip("8.8.8.8".parse().unwrap()).is_none());
}

#[test]
fn misspelt_key_names_file_and_line() {
    let text = GOOD.replace("    countries: [TW]", "    countrys: [TW]");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("policies/x.yaml:3: "), "{errs:?}");
    assert!(errs[0].contains("countrys"), "{errs:?}");
}

#[test]
fn bad_cidr_names_file_and_line() {
    let text = GOOD.replace("203.69.0.0/16", "203.69.0.0/33");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("policies/x.yaml:4: bad CIDR \"203.69.0.0/33\""),
        "{errs:?}"
    );
}

#[test]
fn unknown_provider_names_file_and_line() {
    let text = GOOD.replace("providers: [b]", "providers: [b, tencnet]");
    let errs = errors(&text);
    assert_eq!(
        errs,
        ["policies/x.yaml:7: unknown provider id \"tencnet\" (known: a, b)"]
    );
}

#[test]
fn every_problem_is_reported_at_its_line() {
    let text = "\
regions:
  - id: TW
    countries: [TWN, tw]
  - id: hk
    countries: [TW]
    cidrs: [10.0.0.0/8, 10.0.0.1/8]
default_region: mars
delivery:
  protocols: [hls]
  default_protocol: flv
  max_candidates: 0
";
    let errs = errors(text);
    let lines: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(
        lines,
        [
            "policies/x.yaml:2",  // region id upper case
            "policies/x.yaml:3",  // TWN
            "policies/x.yaml:5",  // TW twice
            "policies/x.yaml:6",  // same network twice
            "policies/x.yaml:7",  // default region
            "policies/x.yaml:10", // default protocol not offered
            "policies/x.yaml:11", // max_candidates
        ],
        "{errs:#?}"
    );
}

#[test]
fn unknown_protocol_and_bad_shapes_are_line_errors() {
    let text = format!("{GOOD}delivery:\n  protocols: [flv, webrtc]\n");
    let errs = errors(&text);
    assert!(errs[0].starts_with("policies/x.yaml:10:"), "{errs:?}");
    let errs = errors("regions: 5\ndefault_region: x\n");
    assert!(errs[0].starts_with("policies/x.yaml:1:"), "{errs:?}");
}

#[test]
fn job_schedules_parse_blank_disables_and_bad_is_a_line_error() {
    let p = Policy::parse(Path::new("p.yaml"), GOOD, &ids(&["a", "b"])).unwrap();
    assert!(p.jobs.contains_key("sweep_streams"), "on by default");
    let text = format!("{GOOD}jobs:\n  sweep_streams: \"\"\n");
    let p = Policy::parse(Path::new("p.yaml"), &text, &ids(&["a", "b"])).unwrap();
    assert!(!p.jobs.contains_key("sweep_streams"));
    let errs = errors(&format!("{GOOD}jobs:\n  sweep_streams: every minute\n"));
    assert!(
        errs[0].starts_with("policies/x.yaml:10: jobs.sweep_streams: bad cron schedule"),
        "{errs:?}"
    );
}

#[test]
fn origin_fetch_settings_have_defaults_and_bounds() {
    let p = Policy::parse(Path::new("p.yaml"), GOOD, &ids(&["a", "b"])).unwrap();
    assert_eq!(
        (
            p.delivery.origin_refresh_seconds,
            p.delivery.origin_timeout_ms,
            p.delivery.origin_retry_seconds
        ),
        (30, 2_000, 5)
    );
    let text = format!(
        "{GOOD}delivery:\n  origin_refresh_seconds: 0\n  origin_timeout_ms: 60000\n  origin_retry_seconds: 9\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("policies/x.yaml:10: delivery.origin_refresh_seconds is 0"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("policies/x.yaml:11: delivery.origin_timeout_ms is 60000"),
        "{errs:?}"
    );
    // A failure is remembered at most as long as a success.
    let text = format!("{GOOD}delivery:\n  origin_refresh_seconds: 4\n  origin_retry_seconds: 9\n");
    let errs = errors(&text);
    assert_eq!(
        errs,
        ["policies/x.yaml:11: delivery.origin_retry_seconds is 9, must be from 1 to 4"]
    );
}

#[test]
fn segment_realtime_factor_defaults_to_one_and_a_half_and_is_bounded() {
    let p = Policy::parse(Path::new("p.yaml"), GOOD, &ids(&["a", "b"])).unwrap();
    assert_eq!(p.probes.segment_realtime_factor, 1.5);
    let off = format!("{GOOD}probes:\n  segment_realtime_factor: 0\n");
    let p = Policy::parse(Path::new("p.yaml"), &off, &ids(&["a", "b"])).unwrap();
    assert_eq!(p.probes.segment_realtime_factor, 0.0);
    let errs = errors(&format!("{GOOD}probes:\n  segment_realtime_factor: 0.5\n"));
    assert_eq!(
        errs,
        [
            "policies/x.yaml:10: probes.segment_realtime_factor is 0.5, must be 0 (off) or from 1 to 100"
        ]
    );
}

#[test]
fn overflow_seconds_is_bounded() {
    let on = format!("{GOOD}scoring:\n  overflow_seconds: 60\n");
    let p = Policy::parse(Path::new("p.yaml"), &on, &ids(&["a", "b"])).unwrap();
    assert_eq!(p.scoring.overflow_seconds, 60.0);
    let errs = errors(&format!("{GOOD}scoring:\n  overflow_seconds: -1\n"));
    assert_eq!(
        errs,
        ["policies/x.yaml:10: scoring.overflow_seconds is -1, must be from 0 to 3600"]
    );
}

#[test]
fn ask_again_seconds_is_never_or_bounded() {
    let p = Policy::parse(Path::new("p.yaml"), GOOD, &ids(&["a", "b"])).unwrap();
    assert_eq!(
        p.ingest.ask_again_seconds, 0,
        "never, unless the policy says"
    );
    let on = format!("{GOOD}ingest:\n  ask_again_seconds: 120\n");
    let p = Policy::parse(Path::new("p.yaml"), &on, &ids(&["a", "b"])).unwrap();
    assert_eq!(p.ingest.ask_again_seconds, 120);
    let errs = errors(&format!("{GOOD}ingest:\n  ask_again_seconds: 5\n"));
    assert_eq!(
        errs,
        [
            "policies/x.yaml:10: ingest.ask_again_seconds is 5, must be 0 (never) or from 10 to 86400"
        ]
    );
}

#[test]
fn price_tolerance_is_bounded() {
    let on = format!("{GOOD}scoring:\n  price_tolerance: 0.1\n");
    let p = Policy::parse(Path::new("p.yaml"), &on, &ids(&["a", "b"])).unwrap();
    assert_eq!(p.scoring.price_tolerance, 0.1);
    let errs = errors(&format!("{GOOD}scoring:\n  price_tolerance: 2\n"));
    assert_eq!(
        errs,
        ["policies/x.yaml:10: scoring.price_tolerance is 2, must be from 0 to 1"]
    );
}
