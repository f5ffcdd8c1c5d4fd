//! Selection and health rules, on a real (temporary SQLite) database for the writer.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::policy::services::ServicesSpec;
use crate::store::testing::TestDb;
use crate::vocab::diag::parse_yaml;

const SERVICES: &str = r#"
heartbeat_timeout_seconds: 30
max_nodes: 3
fallback:
  tw: [hk, cn]
nodes:
  - {id: api-tw, kind: api, region: tw, endpoints: [https://api-tw.example.com], health_url: http://127.0.0.1:9/healthz}
  - {id: api-hk, kind: api, region: hk, endpoints: [https://api-hk.example.com]}
  - {id: up-cn, kind: upload, region: cn, endpoints: [https://up-cn.example.cn]}
  - {id: up-hk, kind: upload, region: hk, endpoints: [https://up-hk.example.com]}
areas:
  - {id: mainland, regions: [cn], static_domain: static.example.cn, upload_nodes: [up-cn]}
"#;

fn services() -> ServicesPolicy {
    let spec: ServicesSpec = parse_yaml(Path::new("s.yaml"), SERVICES).unwrap();
    let regions: BTreeSet<String> = ["tw", "hk", "cn"].iter().map(|s| s.to_string()).collect();
    let mut errs = Vec::new();
    let s = ServicesPolicy::from_spec(Path::new("s.yaml"), &spec, &regions, &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    s
}

fn directory(db: &TestDb) -> Directory {
    Directory::new(NodeWriter::spawn(db.db().clone(), Duration::from_millis(10)).0)
}

fn beat(id: &str, kind: ServiceKind, region: &str, load: u64) -> Heartbeat {
    Heartbeat {
        id: id.into(),
        kind,
        region: region.into(),
        endpoints: vec![format!("wss://{id}.example.com/ws")],
        ips: vec![],
        capacity: 100,
        load,
        version: "1.0".into(),
        draining: false,
    }
}

/// A fixed sequence in [0, 1), so orders replay.
fn seq() -> impl FnMut() -> f64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ids(r: &Resolution) -> Vec<&str> {
    r.nodes.iter().map(|n| n.id.as_str()).collect()
}

const T0: i64 = 1_795_000_000_000;

#[tokio::test]
async fn silent_nodes_drop_out_after_the_timeout() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    d.heartbeat(&s, beat("chat-tw-1", ServiceKind::Chat, "tw", 5), T0, T0)
        .unwrap();
    let r = d.resolve(&s, ServiceKind::Chat, "tw", T0 + 30_000, &mut seq());
    assert_eq!((ids(&r), r.outcome), (vec!["chat-tw-1"], Outcome::Local));
    let r = d.resolve(&s, ServiceKind::Chat, "tw", T0 + 30_001, &mut seq());
    assert_eq!((ids(&r), r.outcome), (vec![], Outcome::None));
}

#[tokio::test]
async fn least_loaded_first_then_fallback_regions_in_order() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    for (id, region, load) in [
        ("chat-tw-busy", "tw", 90),
        ("chat-tw-idle", "tw", 10),
        ("chat-cn", "cn", 0),
        ("chat-hk", "hk", 50),
    ] {
        d.heartbeat(&s, beat(id, ServiceKind::Chat, region, load), T0, T0)
            .unwrap();
    }
    let r = d.resolve(&s, ServiceKind::Chat, "tw", T0, &mut seq());
    assert_eq!(ids(&r), ["chat-tw-idle", "chat-tw-busy", "chat-hk"]);
    assert_eq!(r.outcome, Outcome::Local);
    // hk has no fallback list: only its own node.
    let r = d.resolve(&s, ServiceKind::Chat, "hk", T0, &mut seq());
    assert_eq!(ids(&r), ["chat-hk"]);
}

#[tokio::test]
async fn a_region_without_a_healthy_node_falls_back() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    let mut draining = beat("chat-tw", ServiceKind::Chat, "tw", 0);
    draining.draining = true;
    d.heartbeat(&s, draining, T0, T0).unwrap();
    d.heartbeat(&s, beat("chat-cn", ServiceKind::Chat, "cn", 0), T0, T0)
        .unwrap();
    let r = d.resolve(&s, ServiceKind::Chat, "tw", T0, &mut seq());
    assert_eq!((ids(&r), r.outcome), (vec!["chat-cn"], Outcome::Fallback));
}

#[tokio::test]
async fn equals_are_ordered_at_random_weighted_by_capacity() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    let mut big = beat("big", ServiceKind::Im, "hk", 0);
    big.capacity = 900;
    let mut small = beat("small", ServiceKind::Im, "hk", 0);
    small.capacity = 100;
    d.heartbeat(&s, big, T0, T0).unwrap();
    d.heartbeat(&s, small, T0, T0).unwrap();
    let mut rng = seq();
    let mut big_first = 0;
    for _ in 0..2000 {
        if d.resolve(&s, ServiceKind::Im, "hk", T0, &mut rng).nodes[0].id == "big" {
            big_first += 1;
        }
    }
    // P(big first) = 900 / 1000 for this weighted order.
    assert!((1700..1900).contains(&big_first), "{big_first}");
}

#[tokio::test]
async fn stale_and_replayed_heartbeats_change_nothing() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    let Applied::Applied(first) = d
        .heartbeat(&s, beat("im-1", ServiceKind::Im, "tw", 1), T0, T0)
        .unwrap()
    else {
        panic!("first heartbeat applied")
    };
    // The same signed time again (a replay), then an older one.
    for at in [T0, T0 - 5_000] {
        assert_eq!(
            d.heartbeat(&s, beat("im-1", ServiceKind::Im, "tw", 99), at, T0 + 1_000),
            Ok(Applied::Stale(first.clone()))
        );
    }
    // A signed time ahead of livesteer's clock counts as now.
    let Applied::Applied(n) = d
        .heartbeat(
            &s,
            beat("im-1", ServiceKind::Im, "tw", 2),
            T0 + 60_000,
            T0 + 2_000,
        )
        .unwrap()
    else {
        panic!("newer heartbeat applied")
    };
    assert_eq!(n.last_seen_ms, T0 + 2_000);
    // Its replays, before the time it was signed at, are no newer: nothing changes.
    for now in [T0 + 4_000, T0 + 5_000] {
        assert_eq!(
            d.heartbeat(&s, beat("im-1", ServiceKind::Im, "tw", 3), T0 + 60_000, now),
            Ok(Applied::Stale(n.clone()))
        );
    }
    assert!(matches!(
        d.heartbeat(
            &s,
            beat("im-1", ServiceKind::Chat, "tw", 2),
            T0 + 3_000,
            T0 + 3_000
        ),
        Err(HeartbeatError::KindChanged { .. })
    ));
    assert!(matches!(
        d.heartbeat(&s, beat("api-tw", ServiceKind::Api, "tw", 2), T0, T0),
        Err(HeartbeatError::StaticNode(_))
    ));
}

#[tokio::test]
async fn static_nodes_follow_their_checks_and_areas_confine_uploads() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    let r = d.resolve(&s, ServiceKind::Api, "tw", T0, &mut seq());
    assert_eq!(ids(&r), ["api-tw", "api-hk"], "unchecked counts as healthy");
    d.set_check(
        "api-tw",
        Check {
            healthy: false,
            checked_ms: T0,
            error: Some("refused".into()),
        },
    );
    let r = d.resolve(&s, ServiceKind::Api, "tw", T0, &mut seq());
    assert_eq!((ids(&r), r.outcome), (vec!["api-hk"], Outcome::Fallback));

    // cn is in the mainland area: only its upload nodes; tw has no area: nearest first.
    let r = d.resolve(&s, ServiceKind::Upload, "cn", T0, &mut seq());
    assert_eq!(ids(&r), ["up-cn"]);
    let r = d.resolve(&s, ServiceKind::Upload, "tw", T0, &mut seq());
    assert_eq!(ids(&r), ["up-hk", "up-cn"]);
}

#[tokio::test]
async fn heartbeats_are_written_behind_and_reload() {
    let db = TestDb::sqlite();
    let d = directory(&db);
    let s = services();
    let mut b = beat("pay-1", ServiceKind::Pay, "hk", 7);
    b.ips = vec!["203.0.113.9".parse().unwrap()];
    d.heartbeat(&s, b, T0, T0).unwrap();
    d.writer().flush().await.unwrap();
    let again = directory(&db);
    assert_eq!(again.merge_rows(&db.all_nodes().unwrap()), 1);
    assert_eq!(again.node("pay-1"), d.node("pay-1"));
    // An older row never replaces a newer memory.
    assert_eq!(again.merge_rows(&db.all_nodes().unwrap()), 0);
}
