//! Rooms through the HTTP API on a real socket, over SQLite and PostgreSQL: SRS hooks (bodies
//! from SRS's documentation, `tests/data/rooms/README.md`), the generic signed callback,
//! malformed and wrongly tokened callbacks, list and follow queries, restarts, and the stats
//! probes against provider answers.

use std::collections::HashMap;
use std::time::Duration;

use livesteer::callbacks::generic;
use livesteer::providers::signing::{Grant, issue_origin_token};
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::backends::on_both_backends;
use crate::support::{TestApp, all_providers_dir, root, test_secrets};

const SRS_SECRET: &str = "demo-only-local-srs-secret-00002";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/data/rooms").join(name)).unwrap()
}

/// An SRS hook body from the fixtures for `stream` with `token`.
pub(crate) fn srs_hook(name: &str, stream: &str, token: &str) -> String {
    fixture(name)
        .replace("STREAM", stream)
        .replace("TOKEN", token)
}

/// The token of a push URL.
pub(crate) fn token_of(url: &str) -> String {
    url.split("?token=").nth(1).unwrap().to_string()
}

/// Creates a stream in `tw` and returns (stream id, local-srs push token).
async fn srs_stream(app: &TestApp, anchor: &str) -> (String, String) {
    let created = app.create_stream(anchor, "tw").await;
    let push = created["push"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "local-srs")
        .unwrap_or_else(|| panic!("no local-srs push in {created}"));
    (
        created["stream_id"].as_str().unwrap().to_string(),
        token_of(push["url"].as_str().unwrap()),
    )
}

async fn srs(app: &TestApp, body: String) -> (u16, Value) {
    app.post_raw("/v1/callbacks/local-srs", "application/json", body)
        .await
}

async fn state_of(app: &TestApp, anchor: &str) -> String {
    let (status, body) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(status, 200, "{body}");
    body["state"].as_str().unwrap().to_string()
}

async fn srs_hooks_drive_the_room(db: TestDb) {
    let mut db = db;
    let app = TestApp::builder(&db).start().await;
    let anchor = "anchor-srs-1";
    let (stream, token) = srs_stream(&app, anchor).await;

    let (status, body) = srs(&app, srs_hook("srs-on_publish.json", &stream, &token)).await;
    assert_eq!((status, &body), (200, &json!({"code": 0})));
    assert_eq!(state_of(&app, anchor).await, "starting");

    // Chat connects; an on_hls (a segment written) is evidence of flow: live.
    let (status, room) = app
        .post(
            &format!("/v1/rooms/{anchor}/chat"),
            json!({"connected": true}),
        )
        .await;
    assert_eq!(status, 200, "{room}");
    assert_eq!(room["state"], "starting");
    let (status, body) = srs(&app, srs_hook("srs-on_hls.json", &stream, &token)).await;
    assert_eq!((status, &body), (200, &json!({"code": 0})));
    let (_, room) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(room["state"], "live", "{room}");
    assert_eq!(room["providers"], json!(["local-srs"]));
    assert_eq!(room["region"], "tw");
    assert!(room["held_ms"].as_i64().unwrap() >= 0);
    let (_, list) = app.get("/v1/rooms?state=live&region=tw").await;
    assert_eq!(list["rooms"][0]["anchor_id"], anchor, "{list}");

    // The anchor's encoder drops: within the stall grace the room stays live.
    let (status, _) = srs(&app, srs_hook("srs-on_unpublish.json", &stream, &token)).await;
    assert_eq!(status, 200);
    livesteer::jobs::run_once(app.state.jobs(), "sweep_rooms")
        .await
        .unwrap();
    assert_eq!(state_of(&app, anchor).await, "live");
    let (_, body) = srs(&app, srs_hook("srs-on_publish.json", &stream, &token)).await;
    assert_eq!(body, json!({"code": 0}));

    // States survive a restart.
    app.state.rooms.flush().await.unwrap();
    app.stop().await;
    db.reopen();
    let app = TestApp::builder(&db).start().await;
    let (_, room) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(room["state"], "live", "{room}");
    assert_eq!(room["providers"], json!(["local-srs"]));
    assert_eq!(room["chat_connected"], true);
    app.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async srs_hooks_drive_the_room(TestDb) =>
        sqlite_srs_hooks_drive_the_room, postgres_srs_hooks_drive_the_room
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callbacks_are_refused_and_change_nothing() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).start().await;
    let anchor = "anchor-bad-1";
    let (stream, token) = srs_stream(&app, anchor).await;
    let (other, other_token) = srs_stream(&app, "anchor-bad-2").await;

    let expired = issue_origin_token(
        SRS_SECRET.as_bytes(),
        Grant::Publish,
        "live",
        &stream,
        1_000_000,
    )
    .unwrap();
    let never_issued = issue_origin_token(
        SRS_SECRET.as_bytes(),
        Grant::Publish,
        "live",
        "s_never",
        1_999_999_999,
    )
    .unwrap();
    // The token of this stream's own play URL: a viewer must not be able to publish with it.
    let play_token = issue_origin_token(
        SRS_SECRET.as_bytes(),
        Grant::Play,
        "live",
        &stream,
        1_999_999_999,
    )
    .unwrap();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            srs_hook("srs-on_publish.json", &stream, &other_token),
            403,
            "invalid_token",
        ),
        (
            srs_hook("srs-on_publish.json", &stream, &play_token),
            403,
            "invalid_token",
        ),
        (
            srs_hook("srs-on_publish.json", &stream, &expired),
            403,
            "expired_token",
        ),
        (
            srs_hook("srs-on_publish.json", &stream, "12-zz"),
            403,
            "invalid_token",
        ),
        (
            srs_hook("srs-on_publish.json", &stream, ""),
            403,
            "missing_token",
        ),
        (
            srs_hook("srs-on_publish.json", "s_never", &never_issued),
            404,
            "unknown_stream",
        ),
        (
            srs_hook("srs-on_publish.json", "bad/key", &token),
            400,
            "invalid_callback",
        ),
        ("{\"action\":".into(), 400, "invalid_callback"),
        (
            "{\"action\":\"on_publish\",\"app\":\"live\"}".into(),
            400,
            "invalid_callback",
        ),
        ("[]".into(), 400, "invalid_callback"),
    ];
    for (body, want_status, want_code) in cases {
        let (status, answer) = srs(&app, body.clone()).await;
        assert_eq!(status, want_status, "{body} → {answer}");
        assert_eq!(answer["error"], want_code, "{body} → {answer}");
        assert_eq!(
            answer["code"], want_status,
            "SRS refuses on a non-zero code: {answer}"
        );
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    // The unpublish of a wrongly tokened stream changes nothing either.
    let (status, _) = srs(&app, srs_hook("srs-on_unpublish.json", &other, &token)).await;
    assert_eq!(status, 403);

    // nginx-rtmp form fields: missing call, wrong token.
    let (status, body) = app
        .post_raw(
            "/v1/callbacks/local-nginx",
            "application/x-www-form-urlencoded",
            "app=live&name=x",
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_callback"))
    );
    let form = format!(
        "app=live&addr=127.0.0.1&clientid=3&call=publish&name={stream}&type=live&token={token}"
    );
    let (status, body) = app
        .post_raw(
            "/v1/callbacks/local-nginx",
            "application/x-www-form-urlencoded",
            form,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_token")),
        "{body}"
    );

    // Unknown and disabled providers.
    let (status, body) = app.post("/v1/callbacks/nope", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_provider"))
    );
    let (status, body) = app.post("/v1/callbacks/tencent", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_provider"))
    );
    assert!(body["message"].as_str().unwrap().contains("disabled"));

    // Oversized body.
    let (status, body) = srs(&app, format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );

    for a in [anchor, "anchor-bad-2"] {
        assert_eq!(state_of(&app, a).await, "offline");
    }
    let (_, list) = app.get("/v1/rooms?state=all").await;
    assert_eq!(list["rooms"], json!([]), "no room was created: {list}");

    // A publish to an ended stream is refused.
    let (status, _) = app.delete(&format!("/v1/streams/{stream}")).await;
    assert_eq!(status, 200);
    let (status, body) = srs(&app, srs_hook("srs-on_publish.json", &stream, &token)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("stream_ended"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_callbacks_are_signed() {
    let db = TestDb::sqlite();
    let mut secrets = test_secrets();
    secrets.insert(
        "TENCENT_CALLBACK_SECRET".into(),
        "cb-secret-0123456789abcdef".into(),
    );
    let app = TestApp::builder(&db)
        .providers(all_providers_dir())
        .secrets(secrets)
        .policy(|p| {
            p.set(
                "rooms.callback_secret_env",
                json!({"tencent": "TENCENT_CALLBACK_SECRET"}),
            )
            .set("rooms.chat_required", false)
        })
        .start()
        .await;
    let created = app.create_stream("anchor-cdn-1", "tw").await;
    assert_eq!(created["push"][0]["provider"], "tencent", "{created}");
    let stream = created["stream_id"].as_str().unwrap();
    let key = b"cb-secret-0123456789abcdef";
    let post = |body: String, ts: String, sig: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(app.url("/v1/callbacks/tencent"))
                .header("content-type", "application/json")
                .header("x-livesteer-timestamp", ts)
                .header("x-livesteer-signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let now = app.state.clock.now_secs().to_string();
    let body = json!({"event": "update", "stream": stream, "bitrate_kbps": 1800}).to_string();

    // Wrong key, stale time: refused, nothing changes.
    let bad = generic::sign(b"another-secret-0123456789", &now, body.as_bytes());
    let (status, answer) = post(body.clone(), now.clone(), bad).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    let old = "1000000000".to_string();
    let sig = generic::sign(key, &old, body.as_bytes());
    let (status, answer) = post(body.clone(), old, sig).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("stale_timestamp"))
    );
    assert_eq!(state_of(&app, "anchor-cdn-1").await, "offline");

    let sig = generic::sign(key, &now, body.as_bytes());
    let (status, answer) = post(body.clone(), now.clone(), sig).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["room"]["state"], "live", "{answer}");
    assert_eq!(answer["room"]["ingest"][0]["bitrate_kbps"], 1800.0);

    // Another provider's file is not configured for generic callbacks.
    let (status, answer) = app.post("/v1/callbacks/alibaba", json!({})).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (403, Some("callbacks_not_configured"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_page_and_validate() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .policy(|p| p.set("rooms.chat_required", false))
        .start()
        .await;
    for i in 0..5 {
        let anchor = format!("anchor-q{i}");
        let (stream, token) = srs_stream(&app, &anchor).await;
        let (status, _) = srs(&app, srs_hook("srs-on_hls.json", &stream, &token)).await;
        assert_eq!(status, 200);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/rooms?state=live&limit=2&cursor={c}"),
            None => "/v1/rooms?state=live&limit=2".to_string(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for r in page["rooms"].as_array().unwrap() {
            assert_eq!(r["state"], "live");
            seen.push(r["anchor_id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("anchor-q{i}")).collect::<Vec<_>>()
    );

    // The follow list: 1000 ids in one call, in the order asked, unknown ones offline.
    let mut ids: Vec<String> = (0..998).map(|i| format!("follow-{i}")).collect();
    ids.insert(10, "anchor-q3".into());
    ids.push("anchor-q0".into());
    let (status, body) = app.post("/v1/rooms", json!({ "anchor_ids": ids })).await;
    assert_eq!(status, 200, "{body}");
    let rooms = body["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1000);
    assert_eq!(rooms[10]["state"], "live");
    assert_eq!(rooms[999]["anchor_id"], "anchor-q0");
    assert_eq!(rooms[0]["state"], "offline");
    assert_eq!(rooms[0]["since_ms"], Value::Null);

    ids.push("one-too-many".into());
    let (status, answer) = app.post("/v1/rooms", json!({ "anchor_ids": ids })).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("batch_too_large")),
        "{answer}"
    );
    for (path, body, code) in [
        (
            "/v1/rooms",
            json!({ "anchor_ids": ["ok", "not ok"] }),
            "invalid_anchor_id",
        ),
        ("/v1/rooms", json!({ "anchors": [] }), "invalid_json"),
        (
            "/v1/rooms/x/chat",
            json!({ "connected": "yes" }),
            "invalid_json",
        ),
    ] {
        let (status, answer) = app.post(path, body).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{answer}"
        );
    }
    for (path, code) in [
        ("/v1/rooms?state=bogus", "invalid_state"),
        ("/v1/rooms?limit=0", "invalid_limit"),
        ("/v1/rooms?limit=100000", "invalid_limit"),
        ("/v1/rooms?region=mars", "unknown_region"),
        ("/v1/rooms?cursor=a%20b", "invalid_cursor"),
        ("/v1/rooms?colour=red", "invalid_query"),
        ("/v1/rooms/bad%20id", "invalid_anchor_id"),
    ] {
        let (status, answer) = app.get(path).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(code)),
            "{path}: {answer}"
        );
    }
    app.stop().await;
}

/// Serves `body` for every request on a free loopback port; returns its base URL.
async fn serve_fixed(body: String) -> (String, actix_web::dev::ServerHandle) {
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let body = body.clone();
            async move {
                actix_web::HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://{addr}"), handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_probes_read_srs_answers_and_dead_providers_are_left_alone() {
    // SRS's streams API answer (fixture) served on loopback; nginx's stat URL points at a port
    // nothing listens on.
    let db = TestDb::sqlite();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let anchor = "anchor-probe-1";
    let mut app_builder = TestApp::builder(&db);
    // Probe only the statistics endpoints, quickly.
    let stream_id;
    let (url, handle);
    {
        // The stream key is random: create the app first, then serve a fixture naming it.
        let tmp = TestApp::builder(&db).start().await;
        let (s, _) = srs_stream(&tmp, anchor).await;
        stream_id = s;
        tmp.stop().await;
        (url, handle) =
            serve_fixed(fixture("srs-api-v1-streams.json").replace("STREAM", &stream_id)).await;
        app_builder = app_builder.policy(|p| {
            p.set("probes.kinds", ["stats"])
                .set("probes.breaker_failures", 2)
                .set("rooms.chat_required", false)
                .set(
                    "probes.stats[provider=local-srs].url",
                    format!("{url}/api/v1/streams"),
                )
                .set(
                    "probes.stats[provider=local-nginx].url",
                    format!("http://{dead}/stat"),
                )
        });
    }
    drop(std::net::TcpListener::bind(dead)); // keep nothing listening there
    let app = app_builder.start().await;
    assert!(
        app.state.streams.get(&stream_id).is_some(),
        "live stream reloaded"
    );

    let reports = livesteer::probes::run_once(&app.state.probing()).await;
    let by: HashMap<(String, &str), &str> = reports
        .iter()
        .map(|r| ((r.provider.clone(), r.kind), r.outcome))
        .collect();
    assert_eq!(
        by[&("local-srs".to_string(), "srs_api")],
        "healthy",
        "{reports:?}"
    );
    assert_eq!(
        by[&("local-nginx".to_string(), "nginx_stat")],
        "error",
        "{reports:?}"
    );
    let srs_report = reports.iter().find(|r| r.kind == "srs_api").unwrap();
    assert_eq!(srs_report.bitrate_kbps, Some(1245.0));
    let (_, room) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(room["state"], "live", "{room}");
    assert_eq!(room["providers"], json!(["local-srs"]));

    // The dead provider: after breaker_failures transport failures it is skipped, not hammered.
    livesteer::probes::run_once(&app.state.probing()).await;
    let third = livesteer::probes::run_once(&app.state.probing()).await;
    let nginx = third.iter().find(|r| r.provider == "local-nginx").unwrap();
    assert_eq!(nginx.outcome, "skipped", "{third:?}");
    // Errors change no state: the room is still live on local-srs only.
    assert_eq!(state_of(&app, anchor).await, "live");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("livesteer_probe_duration_seconds_count{provider=\"local-nginx\",kind=\"nginx_stat\",outcome=\"skipped\"}"), "{metrics}");
    handle.stop(false).await;
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[test]
fn provider_stat_fixtures_parse() {
    let nginx =
        livesteer::probes::stats::parse_nginx_stat(&fixture("nginx-rtmp-stat.xml")).unwrap();
    let s = &nginx[&("live".to_string(), "s0123456789abcdef01234567".to_string())];
    assert!(s.publishing && s.active);
    assert!((s.recv_kbps - 877.936).abs() < 1e-9, "{s:?}");
    assert_eq!(s.frame_rate, Some(25.0));
    let srs =
        livesteer::probes::stats::parse_srs(fixture("srs-api-v1-streams.json").as_bytes()).unwrap();
    let idle = &srs[&("live".to_string(), "idle".to_string())];
    assert!(!idle.publishing && !idle.active);
    let live = &srs[&("live".to_string(), "STREAM".to_string())];
    assert!(live.publishing && live.active);
    assert_eq!(live.recv_kbps, 1245.0);
}
