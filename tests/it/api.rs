//! The HTTP API on the shipped files, on SQLite always and on PostgreSQL when it is there.

use serde_json::{Value, json};

use crate::backends::on_both_backends;
use crate::support::TestApp;
use livesteer::store::testing::TestDb;

fn providers_of(candidates: &Value) -> Vec<String> {
    candidates
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap().to_string())
        .collect()
}

async fn push_then_play(db: TestDb) {
    let app = TestApp::builder(&db).without_exploration().start().await;
    let created = app.create_stream("anchor-tw-1", "tw").await;
    let id = created["stream_id"].as_str().unwrap();
    assert_eq!(created["region"], "tw");
    let push = created["push"].as_array().unwrap();
    assert_eq!(push.len(), 2, "primary and one backup: {created}");
    assert_eq!(push[0]["role"], "primary");
    for p in push {
        let url = p["url"].as_str().unwrap();
        assert!(
            url.starts_with("rtmp://127.0.0.1:") && url.contains(&format!("/live/{id}?token=")),
            "{url}"
        );
        assert!(p["expires_at"].as_i64().unwrap() > 0);
    }
    assert!(created["reason"].as_str().unwrap().contains("tw"));

    let (status, play) = app.get(&format!("/v1/streams/{id}/play?region=tw")).await;
    assert_eq!(status, 200, "{play}");
    assert_eq!(play["stream_id"], id);
    assert_eq!(play["region"], "tw");
    assert_eq!(play["ttl_seconds"], 30);
    let candidates = &play["candidates"];
    assert_eq!(providers_of(candidates), ["local-srs", "local-nginx"]);
    for c in candidates.as_array().unwrap() {
        assert_eq!(c["protocol"], "hls");
        let url = c["url"].as_str().unwrap();
        assert!(url.contains(&format!("/{id}.m3u8?token=")), "{url}");
    }

    // FLV: only the SRS origin serves it.
    let (status, play) = app
        .get(&format!("/v1/streams/{id}/play?protocol=flv&region=tw"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(providers_of(&play["candidates"]), ["local-srs"]);
    assert!(
        play["candidates"][0]["url"]
            .as_str()
            .unwrap()
            .contains(".flv?token=")
    );

    let (status, rtmp) = app
        .get(&format!("/v1/streams/{id}/play?protocol=rtmp"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(rtmp["candidates"].as_array().unwrap().len(), 2);
    app.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async push_then_play(TestDb) => sqlite_push_then_play, postgres_push_then_play
);

async fn survives_restart(db: TestDb) {
    let app = TestApp::builder(&db).start().await;
    let id = app.create_stream("anchor-hk", "hk").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ended = app.create_stream("anchor-gone", "hk").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.delete(&format!("/v1/streams/{ended}")).await.0, 200);
    app.stop().await;

    let app = TestApp::builder(&db).start().await;
    let (status, stream) = app.get(&format!("/v1/streams/{id}")).await;
    assert_eq!(status, 200, "{stream}");
    assert_eq!(stream["anchor_id"], "anchor-hk");
    assert_eq!(stream["state"], "live");
    assert_eq!(stream["providers"], json!(["local-srs", "local-nginx"]));
    let (status, play) = app.get(&format!("/v1/streams/{id}/play?region=hk")).await;
    assert_eq!(status, 200);
    assert_eq!(play["candidates"].as_array().unwrap().len(), 2);
    // Ended streams are not reloaded into memory; the row is still stored. On PostgreSQL,
    // where other replicas create and end streams, a request for one memory does not hold
    // reads its row; SQLite's one node has nothing to read.
    let (status, shown) = app.get(&format!("/v1/streams/{ended}")).await;
    if db.url().starts_with("postgres") {
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["state"], "ended", "{shown}");
    } else {
        assert_eq!(status, 404, "{shown}");
    }
    let row = db.get_stream(&ended).unwrap().unwrap();
    assert_eq!(row.state, "ended");
    assert!(row.ended_ms.is_some());
    app.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async survives_restart(TestDb) =>
        sqlite_streams_survive_restart, postgres_streams_survive_restart
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).start().await;
    let id = app.create_stream("a1", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (
            400,
            "invalid_json",
            app.post_raw("/v1/streams", "application/json", "{not json")
                .await,
        ),
        (
            400,
            "invalid_json",
            app.post("/v1/streams", json!({ "anchor": "x" })).await,
        ),
        (
            400,
            "invalid_json",
            app.post("/v1/streams", json!({ "anchor_id": 5 })).await,
        ),
        (
            400,
            "invalid_json",
            app.post("/v1/streams", json!({ "anchor_id": "a", "regoin": "tw" }))
                .await,
        ),
        (
            400,
            "invalid_anchor_id",
            app.post("/v1/streams", json!({ "anchor_id": "" })).await,
        ),
        (
            400,
            "invalid_anchor_id",
            app.post("/v1/streams", json!({ "anchor_id": "a b/c" }))
                .await,
        ),
        (
            400,
            "unknown_region",
            app.post("/v1/streams", json!({ "anchor_id": "a", "region": "mars" }))
                .await,
        ),
        (
            400,
            "invalid_client_ip",
            app.post(
                "/v1/streams",
                json!({ "anchor_id": "a", "client_ip": "1.2.3" }),
            )
            .await,
        ),
        (
            415,
            "unsupported_media_type",
            app.post_raw("/v1/streams", "text/plain", "{}").await,
        ),
        (
            413,
            "payload_too_large",
            app.post_raw(
                "/v1/streams",
                "application/json",
                format!("{{\"anchor_id\":\"{}\"}}", "x".repeat(100_000)),
            )
            .await,
        ),
        (
            404,
            "unknown_stream",
            app.get("/v1/streams/nope/play").await,
        ),
        (
            404,
            "unknown_stream",
            app.get("/v1/streams/..%2F..%2Fetc/play").await,
        ),
        (404, "unknown_stream", app.delete("/v1/streams/nope").await),
        (
            400,
            "unknown_protocol",
            app.get(&format!("/v1/streams/{id}/play?protocol=webrtc"))
                .await,
        ),
        (
            400,
            "unknown_region",
            app.get(&format!("/v1/streams/{id}/play?region=XX")).await,
        ),
        (
            400,
            "invalid_client_ip",
            app.get(&format!("/v1/streams/{id}/play?client_ip=nope"))
                .await,
        ),
        (404, "not_found", app.get("/v2/nothing").await),
    ];
    for (want_status, want_code, (status, body)) in cases {
        assert_eq!(
            (status, body["error"].as_str().unwrap_or("")),
            (want_status, want_code),
            "{body}"
        );
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    // Nothing bad was stored, and the good stream is still playable.
    assert_eq!(app.state.streams.len(), 1);
    assert_eq!(app.get(&format!("/v1/streams/{id}/play")).await.0, 200);
    // Ended streams: 410 on play, and ending again is harmless.
    assert_eq!(app.delete(&format!("/v1/streams/{id}")).await.0, 200);
    assert_eq!(app.delete(&format!("/v1/streams/{id}")).await.0, 200);
    let (status, body) = app.get(&format!("/v1/streams/{id}/play")).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (410, "stream_ended")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_from_header_cidr_and_client_ip() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).without_exploration().start().await;
    let id = app.create_stream("a2", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let play = |q: String| {
        let app = &app;
        async move { app.get(&q).await.1 }
    };
    let res = app
        .client
        .get(app.url(&format!("/v1/streams/{id}/play")))
        .header("CloudFront-Viewer-Country", "AE")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["region"].as_str(), body["region_source"].as_str()),
        (Some("gulf"), Some("header"))
    );
    let body = play(format!("/v1/streams/{id}/play?client_ip=168.95.1.1")).await;
    assert_eq!(
        (body["region"].as_str(), body["region_source"].as_str()),
        (Some("tw"), Some("cidr"))
    );
    let body = play(format!("/v1/streams/{id}/play")).await;
    assert_eq!(
        (body["region"].as_str(), body["region_source"].as_str()),
        (Some("global"), Some("default"))
    );
    let created = app
        .post(
            "/v1/streams",
            json!({ "anchor_id": "a3", "client_ip": "203.198.7.7" }),
        )
        .await
        .1;
    assert_eq!(created["region"], "hk");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).without_exploration().start().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "SQLite");
    assert_eq!(body["policy_version"].as_str().unwrap().len(), 16);
    let id = app.create_stream("a4", "sea").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get(&format!("/v1/streams/{id}/play")).await.0, 200);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "livesteer_http_requests_total{route=\"/v1/streams/{id}/play\",method=\"GET\",status=\"200\"}",
        "livesteer_http_request_duration_seconds_bucket{route=\"/v1/streams\",status=\"201\"",
        "livesteer_decisions_total{kind=\"push\",provider=\"local-srs\",region=\"sea\",protocol=\"rtmp\",reason=\"anchor_first\"}",
        "livesteer_decisions_total{kind=\"push\",provider=\"local-nginx\",region=\"sea\",protocol=\"rtmp\",reason=\"backup\"}",
        "livesteer_decisions_total{kind=\"play\",provider=\"local-srs\",region=\"global\",protocol=\"hls\",reason=\"",
        "# HELP livesteer_http_requests_total",
        "livesteer_streams{state=\"live\"}",
        "livesteer_write_queue_depth{table=\"service_nodes\"}",
        "livesteer_db_pool_connections{state=\"in_use\"}",
        "livesteer_db_pool_max_connections ",
        "# TYPE livesteer_process_cpu_seconds_total counter",
        "livesteer_process_cpu_seconds_total{mode=\"user\"} ",
        "livesteer_process_resident_memory_bytes ",
        "livesteer_process_open_fds ",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains(&id), "stream ids must not appear in metrics");
    app.stop().await;
}

/// Sends `method path` with an optional body and returns the status, the `Allow` header and the
/// body, which must be JSON `{"error", "message"}` (`TestApp`'s helpers check the same).
async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Option<String>, Value) {
    let mut req = app.client.request(method.clone(), app.url(path));
    if let Some((ct, b)) = body {
        req = req.header("content-type", ct).body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let header = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let allow = header("allow");
    let ct = header("content-type").unwrap_or_default();
    let text = res.text().await.unwrap();
    assert!(
        ct.starts_with("application/json"),
        "{method} {path}: {status} is not JSON ({ct}): {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(
        v["error"].is_string() && !v["message"].as_str().unwrap_or("").is_empty(),
        "{method} {path}: {v}"
    );
    (status, allow, v)
}

/// actix's own answers (routing, methods, extractors, bodies) are the same JSON shape, with the
/// table's code and status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_errors_are_json_with_table_codes() {
    use reqwest::Method;
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).without_exploration().start().await;
    let id = app.create_stream("anchor-errors", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let json = |s: &str| Some(("application/json", s.as_bytes().to_vec()));

    // No route: 404, whatever the method.
    for (m, path) in [
        (Method::GET, "/v1/nothing"),
        (Method::POST, "/nothing/at/all"),
        (Method::GET, "/v1/streams/a/b/c/d"),
        (Method::DELETE, "/admin"),
    ] {
        let (status, _, v) = raw(&app, m.clone(), path, None).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (404, Some("not_found")),
            "{m} {path}"
        );
    }

    // A known path, a method it does not take: 405 with Allow.
    for (m, path, allowed) in [
        (Method::DELETE, "/v1/resolve".to_string(), "GET, POST"),
        (Method::PUT, format!("/v1/streams/{id}"), "DELETE, GET"),
        (Method::POST, format!("/v1/streams/{id}/play"), "GET"),
        (Method::GET, "/v1/streams".to_string(), "POST"),
        (Method::POST, "/v1/nodes".to_string(), "GET"),
        (Method::GET, "/v1/nodes/heartbeat".to_string(), "POST"),
        (Method::GET, "/v1/qos".to_string(), "POST"),
        (Method::PUT, "/v1/cmcd".to_string(), "GET, POST"),
        (Method::GET, "/v1/callbacks/local-srs".to_string(), "POST"),
        (Method::GET, "/admin/policies/reload".to_string(), "POST"),
        (
            Method::GET,
            "/admin/providers/x/drain".to_string(),
            "DELETE, POST",
        ),
        (Method::POST, "/healthz".to_string(), "GET"),
        (Method::POST, "/d".to_string(), "GET"),
    ] {
        let (status, allow, v) = raw(&app, m.clone(), &path, None).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (405, Some("method_not_allowed")),
            "{m} {path}: {v}"
        );
        let mut allow: Vec<String> = allow
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        allow.sort();
        assert_eq!(allow.join(", "), allowed, "{m} {path}");
    }

    // Extractors: JSON body and query string. (Every path segment is a string, so a path
    // extractor error cannot happen on today's routes.)
    for (m, path, body, want) in [
        (
            Method::POST,
            "/v1/streams".to_string(),
            json("{"),
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/streams".to_string(),
            json("[1]"),
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/streams".to_string(),
            json(""),
            "invalid_json",
        ),
        (
            Method::POST,
            "/v1/rooms".to_string(),
            json(r#"{"anchor_ids": "a"}"#),
            "invalid_json",
        ),
        (
            Method::POST,
            format!("/v1/streams/{id}/switch"),
            json(r#"{"from_provider": 5}"#),
            "invalid_json",
        ),
        (
            Method::GET,
            "/v1/rooms?limit=lots".to_string(),
            None,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("/v1/streams/{id}/play?protocol=hls&protocol=flv"),
            None,
            "invalid_query",
        ),
        (
            Method::GET,
            "/v1/nodes?kind=1&kind=2".to_string(),
            None,
            "invalid_query",
        ),
    ] {
        let (status, _, v) = raw(&app, m.clone(), &path, body).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some(want)),
            "{m} {path}: {v}"
        );
    }

    // Headers: a body that is not JSON by its Content-Type.
    for (path, ct) in [
        ("/v1/streams", "text/plain"),
        ("/v1/resolve", "application/x-www-form-urlencoded"),
        ("/v1/qos", "text/plain"),
        ("/v1/nodes/heartbeat", "text/plain"),
        ("/v1/cmcd", "image/png"),
    ] {
        let (status, _, v) = raw(&app, Method::POST, path, Some((ct, b"{}".to_vec()))).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (415, Some("unsupported_media_type")),
            "{path}: {v}"
        );
    }

    // An oversize body, on every route that takes one.
    let big = vec![b' '; (1 << 20) + 4096];
    for path in [
        "/v1/streams".to_string(),
        "/v1/resolve".to_string(),
        format!("/v1/streams/{id}/switch"),
        "/v1/rooms".to_string(),
        "/v1/rooms/anchor-errors/chat".to_string(),
        "/v1/nodes/heartbeat".to_string(),
        "/v1/payments/sync".to_string(),
        "/v1/callbacks/local-srs".to_string(),
        "/v1/callbacks/local-nginx".to_string(),
        "/v1/qos".to_string(),
        "/v1/cmcd".to_string(),
    ] {
        let ct = if path == "/v1/cmcd" {
            "application/cmcd"
        } else {
            "application/json"
        };
        let (status, _, v) = raw(&app, Method::POST, &path, Some((ct, big.clone()))).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (413, Some("payload_too_large")),
            "{path}: {v}"
        );
    }
    // The stream is untouched by all of it.
    assert_eq!(app.get(&format!("/v1/streams/{id}")).await.0, 200);
    app.stop().await;
}

/// The limit of the JSON promise: a request actix's HTTP/1 parser cannot read (here a header
/// line without a colon) is answered by the parser itself, before any route or middleware, with
/// a bare status and no body. The README says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_http_is_answered_by_the_parser() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).start().await;
    for request in [
        "GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n",
    ] {
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{request:?}: {answer}");
        assert!(
            !answer.contains("application/json"),
            "{request:?}: {answer}"
        );
    }
    app.stop().await;
}
