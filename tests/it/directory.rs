//! The service directory through the HTTP API: signed heartbeats, health, nearest-healthy
//! resolve with fallback, static nodes' checks, and the two HTTPDNS-shaped answers.

use std::collections::HashMap;
use std::sync::Arc;

use livesteer::auth::signed;
use livesteer::clock::{Clock, ManualClock};
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::backends::on_both_backends;
use crate::support::TestApp;

/// 2026-11-18T…, a fixed instant for the manual clock.
const T0: i64 = 1_795_000_000_000;
pub const CHAT_SECRET: &str = "test-chat-heartbeat-secret";
pub const IM_SECRET: &str = "test-im-heartbeat-secret";

fn secrets() -> HashMap<String, String> {
    [
        ("LIVESTEER_CHAT_HEARTBEAT_SECRET", CHAT_SECRET),
        ("LIVESTEER_IM_HEARTBEAT_SECRET", IM_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn app(db: &TestDb, clock: Arc<ManualClock>) -> TestApp {
    TestApp::builder(db)
        .secrets(secrets())
        .clock(clock)
        .start()
        .await
}

/// POSTs `body` signed with `secret` at `ts` (unix seconds); returns status and JSON.
pub async fn signed_post(
    app: &TestApp,
    path: &str,
    body: &str,
    secret: &str,
    ts: i64,
) -> (u16, Value) {
    let t = ts.to_string();
    let sig = signed::sign(secret.as_bytes(), &t, body.as_bytes());
    let res = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header(signed::TIMESTAMP_HEADER, t)
        .header(signed::SIGNATURE_HEADER, sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn hb(id: &str, kind: &str, region: &str, load: u64, ips: &[&str]) -> String {
    json!({
        "id": id, "kind": kind, "region": region,
        "endpoints": [format!("wss://{id}.example.com/ws")],
        "ips": ips, "capacity": 100, "load": load, "version": "2.3.1",
    })
    .to_string()
}

async fn beat(app: &TestApp, clock: &ManualClock, body: &str, secret: &str) -> Value {
    let (status, v) = signed_post(app, "/v1/nodes/heartbeat", body, secret, clock.now_secs()).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn node_ids(answer: &Value, service: &str) -> Vec<String> {
    answer["services"][service]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no {service} in {answer}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn resolve_stops_returning_a_node_within_the_heartbeat_timeout() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    let v = beat(
        &app,
        &clock,
        &hb("chat-tw-1", "chat", "tw", 10, &[]),
        CHAT_SECRET,
    )
    .await;
    assert_eq!(v["applied"], true);
    assert_eq!(v["healthy_until_ms"], T0 + 30_000);

    let (s, a) = app.get("/v1/resolve?services=chat,im&region=tw").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(node_ids(&a, "chat"), ["chat-tw-1"]);
    assert_eq!(a["services"]["chat"]["outcome"], "local");
    assert_eq!(a["ttl_seconds"], 60);
    // The channel profiles from the policy.
    assert_eq!(
        a["services"]["chat"]["profile"],
        json!({"channel": 1, "heartbeat_seconds": 15, "keep_alive": "room", "delivery": "best_effort"})
    );
    assert_eq!(
        a["services"]["im"]["profile"],
        json!({"channel": 2, "heartbeat_seconds": 240, "keep_alive": "app", "delivery": "reliable"})
    );
    assert_eq!(a["services"]["im"]["outcome"], "none");

    // The policy's timeout is 30 s: still there at 30 s, gone just after.
    clock.advance_ms(30_000);
    let (_, a) = app.get("/v1/resolve?services=chat&region=tw").await;
    assert_eq!(node_ids(&a, "chat"), ["chat-tw-1"]);
    clock.advance_ms(1);
    let (_, a) = app.get("/v1/resolve?services=chat&region=tw").await;
    assert!(node_ids(&a, "chat").is_empty(), "{a}");
    assert_eq!(a["services"]["chat"]["outcome"], "none");

    // A new heartbeat brings it back.
    beat(
        &app,
        &clock,
        &hb("chat-tw-1", "chat", "tw", 10, &[]),
        CHAT_SECRET,
    )
    .await;
    let (_, a) = app.get("/v1/resolve?services=chat&region=tw").await;
    assert_eq!(node_ids(&a, "chat"), ["chat-tw-1"]);
    app.stop().await;
}

/// A heartbeat signed 120 s ahead of livesteer's clock, replayed byte for byte 2 s and 3 s
/// later (and again after a restart): applied once, never again, and the node's health ends
/// when the first one's does.
#[tokio::test]
async fn a_replayed_heartbeat_signed_ahead_never_extends_health() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    let body = hb("chat-tw-1", "chat", "tw", 10, &[]);
    let signed_at = clock.now_secs() + 120;
    let send = |app: &TestApp| {
        let app_url = app.url("/v1/nodes/heartbeat");
        let client = app.client.clone();
        let body = body.clone();
        async move {
            let t = signed_at.to_string();
            let sig = signed::sign(CHAT_SECRET.as_bytes(), &t, body.as_bytes());
            let res = client
                .post(app_url)
                .header("content-type", "application/json")
                .header(signed::TIMESTAMP_HEADER, t)
                .header(signed::SIGNATURE_HEADER, sig)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let first = send(&app).await;
    assert_eq!(first["applied"], true, "{first}");
    // Last-seen is the signed time capped at livesteer's clock.
    assert_eq!(first["healthy_until_ms"], T0 + 30_000);
    for later_ms in [2_000, 1_000] {
        clock.advance_ms(later_ms);
        let replay = send(&app).await;
        assert_eq!(replay["applied"], false, "{replay}");
        assert_eq!(replay["healthy_until_ms"], T0 + 30_000, "{replay}");
    }
    let node = app.state.directory.node("chat-tw-1").unwrap();
    assert_eq!(node.last_seen_ms, T0);

    // After a restart on the same database the replay is still no newer.
    app.state.directory.writer().flush().await.unwrap();
    app.stop().await;
    let app = self::app(&db, clock.clone()).await;
    let replay = send(&app).await;
    assert_eq!(replay["applied"], false, "{replay}");
    assert_eq!(replay["healthy_until_ms"], T0 + 30_000, "{replay}");

    // Health ends when the first heartbeat's does.
    clock.set_ms(T0 + 30_001);
    let (_, a) = app.get("/v1/resolve?services=chat&region=tw").await;
    assert!(node_ids(&a, "chat").is_empty(), "{a}");
    app.stop().await;
}

#[tokio::test]
async fn a_region_without_a_healthy_chat_node_falls_back_to_the_next_region() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    // The shipped policy: tw falls back to hk, then sea, cn, global.
    beat(
        &app,
        &clock,
        &hb("chat-sea-1", "chat", "sea", 0, &[]),
        CHAT_SECRET,
    )
    .await;
    beat(
        &app,
        &clock,
        &hb("chat-hk-busy", "chat", "hk", 80, &[]),
        CHAT_SECRET,
    )
    .await;
    beat(
        &app,
        &clock,
        &hb("chat-hk-idle", "chat", "hk", 5, &[]),
        CHAT_SECRET,
    )
    .await;
    let draining = json!({
        "id": "chat-tw-1", "kind": "chat", "region": "tw",
        "endpoints": ["wss://chat-tw-1.example.com/ws"], "capacity": 100, "status": "draining",
    })
    .to_string();
    beat(&app, &clock, &draining, CHAT_SECRET).await;

    let (_, a) = app.get("/v1/resolve?services=chat&region=tw").await;
    assert_eq!(a["services"]["chat"]["outcome"], "fallback", "{a}");
    assert_eq!(
        node_ids(&a, "chat"),
        ["chat-hk-idle", "chat-hk-busy", "chat-sea-1"],
        "next region first, least loaded first"
    );

    // The same by POST, for several clients at once.
    let (s, b) = app
        .post(
            "/v1/resolve",
            json!({"requests": [
                {"services": ["chat"], "region": "tw"},
                {"services": ["chat"], "region": "sea"},
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(node_ids(&b["answers"][0], "chat")[0], "chat-hk-idle");
    assert_eq!(b["answers"][1]["services"]["chat"]["outcome"], "local");
    assert_eq!(node_ids(&b["answers"][1], "chat")[0], "chat-sea-1");
    app.stop().await;
}

#[tokio::test]
async fn static_nodes_are_health_checked_and_api_edges_fail_over() {
    let db = TestDb::sqlite();
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // In place of the shipped api-local.
    let nodes = json!([
        {"id": "api-tw", "kind": "api", "region": "tw", "endpoints": ["https://api-tw.example.com"],
         "ips": ["198.51.100.10"], "health_tcp": format!("127.0.0.1:{closed_port}")},
        {"id": "api-hk", "kind": "api", "region": "hk", "endpoints": ["https://api-hk.example.com"],
         "ips": ["198.51.100.20"], "health_tcp": open.local_addr().unwrap().to_string()},
        {"id": "up-cn", "kind": "upload", "region": "cn", "endpoints": ["https://up-cn.example.cn"]},
        {"id": "up-hk", "kind": "upload", "region": "hk", "endpoints": ["https://up-hk.example.com"]},
    ]);
    let app = TestApp::builder(&db)
        .policy(|p| {
            p.set("services.nodes", nodes)
                .insert("services.areas[id=mainland].upload_nodes", ["up-cn"])
        })
        .start()
        .await;
    // Before the first check both edges count as healthy: tw gets its own first.
    let (_, a) = app.get("/v1/resolve?services=api&region=tw").await;
    assert_eq!(node_ids(&a, "api"), ["api-tw", "api-hk"]);
    let summary = livesteer::jobs::run_once(app.state.jobs(), "check_nodes")
        .await
        .unwrap();
    assert!(
        summary.contains("1 static node(s) healthy, 1 failing"),
        "{summary}"
    );
    let (_, a) = app
        .get("/v1/resolve?services=api,static,upload&region=tw")
        .await;
    assert_eq!(node_ids(&a, "api"), ["api-hk"]);
    assert_eq!(a["services"]["api"]["outcome"], "fallback");
    // Static per area: tw is overseas (CloudFront), cn mainland (domestic CDN).
    assert_eq!(a["services"]["static"]["domain"], "static.example.com");
    assert_eq!(a["services"]["static"]["area"], "overseas");
    let (_, c) = app
        .get("/v1/resolve?services=static,upload&region=cn")
        .await;
    assert_eq!(c["services"]["static"]["domain"], "static.example.cn");
    assert_eq!(
        node_ids(&c, "upload"),
        ["up-cn"],
        "the area's upload nodes only"
    );
    assert_eq!(
        node_ids(&a, "upload"),
        ["up-hk"],
        "overseas: nodes in its regions"
    );

    let (_, list) = app.get("/v1/nodes?kind=api").await;
    let tw = list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "api-tw")
        .unwrap();
    assert_eq!(tw["healthy"], false);
    assert!(
        tw["check"]["error"].as_str().unwrap().contains("connect"),
        "{tw}"
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("livesteer_service_nodes_healthy{kind=\"api\",region=\"hk\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "livesteer_resolve_answers_total{service=\"api\",region=\"tw\",outcome=\"fallback\"}"
    ));
    drop(open);
    app.stop().await;
}

#[tokio::test]
async fn a_bad_hmac_or_a_stale_timestamp_gets_401_and_changes_nothing() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    let body = hb("chat-tw-1", "chat", "tw", 1, &[]);
    let now = clock.now_secs();
    let cases = [
        ("wrong secret", IM_SECRET, now, "invalid_signature"),
        ("301 s old", CHAT_SECRET, now - 301, "stale_timestamp"),
        ("301 s ahead", CHAT_SECRET, now + 301, "stale_timestamp"),
    ];
    for (what, secret, ts, code) in cases {
        let (s, v) = signed_post(&app, "/v1/nodes/heartbeat", &body, secret, ts).await;
        assert_eq!((s, v["error"].as_str()), (401, Some(code)), "{what}: {v}");
    }
    // A body changed after signing.
    let t = now.to_string();
    let sig = signed::sign(CHAT_SECRET.as_bytes(), &t, body.as_bytes());
    for (ts, sig, body) in [
        (
            Some(t.as_str()),
            Some(sig.as_str()),
            body.replace("\"load\":1", "\"load\":2"),
        ),
        (None, Some(sig.as_str()), body.clone()),
        (Some(t.as_str()), None, body.clone()),
        (Some("soon"), Some(sig.as_str()), body.clone()),
    ] {
        let mut r = app
            .client
            .post(app.url("/v1/nodes/heartbeat"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(ts) = ts {
            r = r.header(signed::TIMESTAMP_HEADER, ts);
        }
        if let Some(sig) = sig {
            r = r.header(signed::SIGNATURE_HEADER, sig);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401);
        let v: Value = res.json().await.unwrap();
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
    let (_, list) = app.get("/v1/nodes?kind=chat").await;
    assert_eq!(list["nodes"], json!([]), "nothing registered");
    app.state.directory.writer().flush().await.unwrap();
    assert!(db.all_nodes().unwrap().is_empty(), "nothing persisted");
    app.stop().await;
}

#[tokio::test]
async fn bad_heartbeats_are_named_4xx() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    let now = clock.now_secs();
    let base = json!({"id": "n1", "kind": "chat", "region": "tw",
        "endpoints": ["wss://n1.example.com"], "capacity": 10});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b.to_string()
    };
    for (body, status, code) in [
        (with("region", json!("mars")), 400, "unknown_region"),
        (with("kind", json!("video")), 400, "unknown_service"),
        (with("id", json!("bad id")), 400, "invalid_node"),
        (with("endpoints", json!(["not a url"])), 400, "invalid_node"),
        (with("endpoints", json!([])), 400, "invalid_node"),
        (with("ips", json!(["300.1.1.1"])), 400, "invalid_node"),
        (with("capacity", json!(0)), 400, "invalid_node"),
        (with("status", json!("sleepy")), 400, "invalid_node"),
        (
            with("rooms", json!(["ok", "bad anchor!"])),
            400,
            "invalid_anchor_id",
        ),
        (with("extra", json!(1)), 400, "invalid_json"),
        ("{not json".to_string(), 400, "invalid_json"),
    ] {
        let (s, v) = signed_post(&app, "/v1/nodes/heartbeat", &body, CHAT_SECRET, now).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (status, Some(code)),
            "{body}: {v}"
        );
    }
    // A static node of the policy is health-checked, not registered (signed with the shipped
    // policy's demo secret for api nodes, in force because its variable is unset here).
    let api = with("id", json!("api-local")).replace("\"chat\"", "\"api\"");
    let (s, v) = signed_post(
        &app,
        "/v1/nodes/heartbeat",
        &api,
        "demo-only-api-heartbeat-0003",
        now,
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("static_node")), "{v}");
    // A registered node cannot change kind.
    beat(&app, &clock, &hb("n2", "chat", "tw", 0, &[]), CHAT_SECRET).await;
    let (s, v) = signed_post(
        &app,
        "/v1/nodes/heartbeat",
        &hb("n2", "im", "tw", 0, &[]),
        IM_SECRET,
        now,
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (409, Some("node_kind_mismatch")),
        "{v}"
    );
    let (s, v) = app.get("/v1/resolve?services=chat,video").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("unknown_service")),
        "{v}"
    );
    let (s, v) = app.get("/v1/resolve?region=mars").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("unknown_region")),
        "{v}"
    );
    app.stop().await;
}

/// Alibaba Cloud EMAS HTTPDNS, "Resolve a domain name"
/// (https://www.alibabacloud.com/help/en/httpdns/latest/resolve-a-domain-name):
/// `GET /{account_id}/d?host=…[&ip=…][&query=4,6]` answers 200 with JSON
/// `{"host", "ips": [...], "ttl", "origin_ttl"}`, `"ipsv6"` when `query` includes 6, and the
/// client address as `"client_ip"`.
/// Tencent Cloud DNSPod D+ HTTPDNS (https://www.tencentcloud.com/document/product/1130/44468):
/// `GET /d?dn=…[&ip=…][&ttl=1]` answers the plain text `ip1;ip2`, followed by `,ttl` when
/// `ttl=1` is given (the SDKs split on `,` then `;`); an empty body means no address.
#[tokio::test]
async fn httpdns_answers_match_the_vendors_formats() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    beat(
        &app,
        &clock,
        &hb(
            "chat-tw-a",
            "chat",
            "tw",
            10,
            &["203.0.113.1", "2001:db8::1"],
        ),
        CHAT_SECRET,
    )
    .await;
    beat(
        &app,
        &clock,
        &hb("chat-tw-b", "chat", "tw", 60, &["203.0.113.2"]),
        CHAT_SECRET,
    )
    .await;

    // 168.95.0.0/16 is in tw's CIDR table in the shipped policy.
    let (s, v) = app
        .get("/100000/d?host=chat.example.com&ip=168.95.1.1")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"host": "chat.example.com", "ips": ["203.0.113.1", "203.0.113.2"],
               "ttl": 60, "origin_ttl": 60, "client_ip": "168.95.1.1"})
    );
    let (_, v) = app
        .get("/100000/d?host=chat.example.com&ip=168.95.1.1&query=4,6")
        .await;
    assert_eq!(v["ipsv6"], json!(["2001:db8::1"]));
    assert_eq!(v["ips"], json!(["203.0.113.1", "203.0.113.2"]));
    // No healthy node: an empty list, not an error.
    let (s, v) = app.get("/100000/d?host=im.example.com&ip=168.95.1.1").await;
    assert_eq!((s, &v["ips"]), (200, &json!([])), "{v}");
    for (path, code) in [
        ("/100000/d", "missing_argument"),
        ("/100000/d?host=nope.example.com", "unknown_host"),
        ("/100000/d?host=bad_host!", "invalid_host"),
        ("/100000/d?host=chat.example.com&query=5", "invalid_query"),
        ("/100000/d?host=chat.example.com&ip=x", "invalid_client_ip"),
    ] {
        let (s, v) = app.get(path).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(code)), "{path}: {v}");
    }

    let text = |path: &'static str| {
        let client = app.client.clone();
        let url = app.url(path);
        async move {
            let res = client.get(url).send().await.unwrap();
            let ct = res.headers()["content-type"].to_str().unwrap().to_string();
            (res.status().as_u16(), ct, res.text().await.unwrap())
        }
    };
    let (s, ct, body) = text("/d?dn=chat.example.com&ip=168.95.1.1&ttl=1").await;
    assert_eq!((s, body.as_str()), (200, "203.0.113.1;203.0.113.2,60"));
    assert!(ct.starts_with("text/plain"), "{ct}");
    let (_, _, body) = text("/d?dn=chat.example.com&ip=168.95.1.1").await;
    assert_eq!(body, "203.0.113.1;203.0.113.2");
    let (_, _, body) = text("/d?dn=chat.example.com&ip=168.95.1.1&type=AAAA&ttl=1").await;
    assert_eq!(body, "2001:db8::1,60");
    let (s, _, body) = text("/d?dn=im.example.com&ip=168.95.1.1&ttl=1").await;
    assert_eq!((s, body.as_str()), (200, ""));
    let (s, v) = app.get("/d?dn=nope.example.com").await;
    assert_eq!((s, v["error"].as_str()), (400, Some("unknown_host")), "{v}");
    app.stop().await;
}

/// Two replicas on one database: a heartbeat one of them took is resolved by the other after
/// its `sync_nodes` run, and survives a restart.
async fn replicas_share_heartbeats(db: TestDb) {
    let clock = Arc::new(ManualClock::new(T0));
    let a = app(&db, clock.clone()).await;
    let b = app(&db, clock.clone()).await;
    beat(
        &a,
        &clock,
        &hb("im-hk-1", "im", "hk", 3, &["198.51.100.5"]),
        IM_SECRET,
    )
    .await;
    a.state.directory.writer().flush().await.unwrap();
    let (_, r) = b.get("/v1/resolve?services=im&region=hk").await;
    assert!(node_ids(&r, "im").is_empty(), "b has not synced yet");
    livesteer::jobs::run_once(b.state.jobs(), "sync_nodes")
        .await
        .unwrap();
    let (_, r) = b.get("/v1/resolve?services=im&region=hk").await;
    assert_eq!(node_ids(&r, "im"), ["im-hk-1"]);
    a.stop().await;
    b.stop().await;
    let c = app(&db, clock.clone()).await;
    let (_, r) = c.get("/v1/resolve?services=im&region=hk").await;
    assert_eq!(node_ids(&r, "im"), ["im-hk-1"], "reloaded at start");
    c.stop().await;
}

on_both_backends!(
    #[tokio::test]
    async replicas_share_heartbeats(TestDb) =>
        replicas_share_heartbeats_sqlite, replicas_share_heartbeats_postgres
);

#[tokio::test]
async fn a_chat_heartbeat_gives_its_rooms_chat_presence() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0));
    let app = app(&db, clock.clone()).await;
    let (_, room) = app.get("/v1/rooms/anchor42").await;
    assert_eq!(room["chat_connected"], false, "{room}");
    let body = json!({
        "id": "chat-tw-1", "kind": "chat", "region": "tw",
        "endpoints": ["wss://chat-tw-1.example.com/ws"], "capacity": 100,
        "rooms": ["anchor42", "anchor7"],
    })
    .to_string();
    let v = beat(&app, &clock, &body, CHAT_SECRET).await;
    assert_eq!(v["rooms"], 2, "{v}");
    let (_, room) = app.get("/v1/rooms/anchor42").await;
    assert_eq!(room["chat_connected"], true, "{room}");
    // The next heartbeat no longer lists anchor42: its presence from this node goes.
    clock.advance_ms(1_000);
    let body = body.replace("\"anchor42\",", "");
    beat(&app, &clock, &body, CHAT_SECRET).await;
    let (_, room) = app.get("/v1/rooms/anchor42").await;
    assert_eq!(room["chat_connected"], false, "{room}");
    app.stop().await;
}
