//! Scoring through the API: QoS reports reorder play answers and steering manifests; switch,
//! Content Steering, the multivariant playlist, admin controls and reloads.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backends::on_both_backends;
use crate::support::{
    Builder, MEDIA_PLAYLIST, Reply, TestApp, TestOrigin, YamlDoc, all_providers_dir, test_secrets,
};
use livesteer::clock::ManualClock;
use livesteer::signals::{IngestSource, Signal};
use livesteer::store::testing::TestDb;

/// Every vendor enabled, decisions without exploration or hold time, and every steered player
/// moved at once, so that orders are exact.
fn builder(db: &TestDb) -> Builder {
    TestApp::builder(db)
        .providers(all_providers_dir())
        .secrets(test_secrets())
        .policy(|p| {
            p.set("scoring.exploration_rate", 0)
                .set("scoring.hysteresis_hold_seconds", 0)
                .set("steering.move_share", 1)
        })
        .admin_token("secret-admin-token")
}

async fn app(db: &TestDb) -> TestApp {
    builder(db).start().await
}

fn first(v: &Value) -> String {
    v["candidates"][0]["provider"].as_str().unwrap().to_string()
}

fn reports(stream: &str, provider: &str, n: usize, rebuffer_ms: u64) -> Vec<Value> {
    (0..n)
        .map(|_| {
            json!({
                "stream_id": stream, "provider": provider, "region": "tw", "protocol": "hls",
                "played_ms": 30000, "rebuffer_ms": rebuffer_ms, "rebuffer_count": u32::from(rebuffer_ms > 0),
                "startup_ms": 900
            })
        })
        .collect()
}

/// One run of the job that saves this replica's score windows and takes in the others'.
async fn persist(app: &TestApp) -> String {
    livesteer::jobs::run_once(app.state.jobs(), "persist_scores")
        .await
        .unwrap()
}

/// Taiwan's ranking as ops see it (`/admin/scores`).
async fn tw_scores(app: &TestApp) -> Value {
    let (status, body) = app
        .get_as("/admin/scores?region=tw", "secret-admin-token")
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls until `f` holds (the signal consumer applies reports within a tenth of a second).
async fn eventually<F: AsyncFnMut() -> bool>(mut f: F) -> bool {
    for _ in 0..50 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_reorders_play_and_steering() {
    let db = TestDb::sqlite();
    let app = app(&db).await;
    let created = app.create_stream("anchor-qos", "tw").await;
    let id = created["stream_id"].as_str().unwrap().to_string();
    let play = format!("/v1/streams/{id}/play?region=tw&protocol=hls");
    let (_, before) = app.get(&play).await;
    assert_eq!(first(&before), "tencent");
    assert_eq!(before["pick"], "ranked");
    let (_, steer) = app.get(&format!("/v1/steering/hls/{id}?region=tw")).await;
    assert_eq!(steer["PATHWAY-PRIORITY"][0], "tencent");

    // Viewers in Taiwan rebuffer on Tencent, not on Alibaba.
    let mut batch = reports(&id, "tencent", 300, 3000);
    batch.extend(reports(&id, "alibaba", 100, 0));
    let (status, body) = app.post("/v1/qos", json!({ "reports": batch })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 400);

    let ok = eventually(async || first(&app.get(&play).await.1) == "alibaba").await;
    assert!(
        ok,
        "play still starts on tencent: {}",
        app.get(&play).await.1
    );
    let (_, steer) = app.get(&format!("/v1/steering/hls/{id}?region=tw")).await;
    assert_eq!(steer["PATHWAY-PRIORITY"], json!(["alibaba", "tencent"]));
    // A player already on Tencent is told to move.
    let (_, steer) = app
        .get(&format!(
            "/v1/steering/hls/{id}?region=tw&_HLS_pathway=tencent"
        ))
        .await;
    assert_eq!(steer["PATHWAY-PRIORITY"][0], "alibaba");
    // Scores are visible to ops, once the whole batch is applied (the consumer applies what
    // has arrived and publishes at most every 100 ms).
    // Alibaba's reports come last in the batch.
    let applied = eventually(async || {
        let scores = tw_scores(&app).await;
        scores["regions"][0]["order"].as_array().is_some_and(|o| {
            o.iter()
                .any(|s| s["provider"] == "alibaba" && s["samples"].as_f64().unwrap_or(0.0) > 10.0)
        })
    })
    .await;
    let scores = tw_scores(&app).await;
    assert!(applied, "the batch was not applied: {scores}");
    let order: Vec<&str> = scores["regions"][0]["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["provider"].as_str().unwrap())
        .collect();
    assert_eq!(order[0], "alibaba", "{scores}");
    assert_eq!(scores["regions"][0]["incumbency"]["provider"], "alibaba");
    app.stop().await;
}

/// Reports that name their session (`sid`) count once per session on a provider as well as one
/// by one. Thirty players stay on Tencent and report well 30 times each, while 90 of its 300
/// new sessions stall; 20 of Alibaba's 400 new sessions do. Report by report, Tencent is not
/// confidently worse and keeps first place; by session, it is plainly worse and loses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_sessions_count_once_per_provider() {
    for with_sid in [true, false] {
        let db = TestDb::sqlite();
        let app = app(&db).await;
        let id = app.create_stream("anchor-sid", "tw").await["stream_id"]
            .as_str()
            .unwrap()
            .to_string();
        let report = |provider: &str, sid: String, stalled: bool| {
            let mut r = json!({
                "stream_id": id, "provider": provider, "region": "tw", "protocol": "hls",
                "played_ms": 30000, "rebuffer_ms": if stalled { 3000 } else { 0 },
                "rebuffer_count": u32::from(stalled), "startup_ms": 900
            });
            if with_sid {
                r["sid"] = json!(sid);
            }
            r
        };
        let stayers: Vec<Value> = (0..900)
            .map(|i| report("tencent", format!("stay-{}", i % 30), false))
            .collect();
        let mut arrivals: Vec<Value> = (0..300)
            .map(|i| report("tencent", format!("t-{i}"), i % 10 < 3))
            .collect();
        arrivals.extend((0..400).map(|i| report("alibaba", format!("a-{i}"), i % 20 == 0)));
        for batch in [stayers, arrivals] {
            let (status, body) = app.post("/v1/qos", json!({ "reports": batch })).await;
            assert_eq!(status, 200, "{body}");
        }
        // Alibaba's reports come last.
        let applied = eventually(async || {
            tw_scores(&app).await["regions"][0]["order"]
                .as_array()
                .is_some_and(|o| {
                    o.iter().any(|s| {
                        s["provider"] == "alibaba" && s["samples"].as_f64().unwrap_or(0.0) > 300.0
                    })
                })
        })
        .await;
        assert!(applied, "not applied: {}", tw_scores(&app).await);
        let expected = if with_sid { "alibaba" } else { "tencent" };
        let settled = eventually(async || {
            tw_scores(&app).await["regions"][0]["incumbency"]["provider"] == expected
        })
        .await;
        assert!(settled, "with sid: {with_sid}: {}", tw_scores(&app).await);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_batches_keep_good_reports_and_refuse_bad_ones() {
    let db = TestDb::sqlite();
    let app = app(&db).await;
    let id = app.create_stream("anchor-batch", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let good = json!({ "stream_id": id, "provider": "tencent", "region": "tw", "played_ms": 1000 });
    let cmcd = json!({ "cid": id, "provider": "alibaba", "sf": "h", "bs": true, "br": 2500, "played_ms": 4000, "client_ip": "168.95.1.1" });
    let batch = json!([
        good,
        { "stream_id": id, "provider": "nope", "played_ms": 1 },
        { "stream_id": "missing", "provider": "tencent", "played_ms": 1 },
        { "stream_id": id, "provider": "tencent", "played_ms": 1, "bogus": 1 },
        { "stream_id": id, "provider": "tencent", "region": "mars", "played_ms": 1 },
        { "stream_id": id, "provider": "tencent", "protocol": "webrtc", "played_ms": 1 },
        { "stream_id": id, "provider": "tencent", "played_ms": 999999999999u64 },
        { "stream_id": id, "provider": "tencent" },
        { "provider": "tencent", "played_ms": 1 },
        "not an object",
        cmcd,
    ]);
    let (status, body) = app.post("/v1/qos", batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    let refused: Vec<(u64, &str)> = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        [
            (1, "unknown_provider"),
            (2, "unknown_stream"),
            (3, "invalid_report"),
            (4, "unknown_region"),
            (5, "unknown_protocol"),
            (6, "invalid_value"),
            (7, "empty_report"),
            (8, "missing_field"),
            (9, "invalid_report"),
        ]
    );
    // One good report alone, and the body-level errors.
    assert_eq!(app.post("/v1/qos", good_one(&id)).await.0, 200);
    let (status, body) = app.post("/v1/qos", json!([{ "stream_id": id }])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("no_valid_reports"))
    );
    let too_many: Vec<Value> = (0..1001).map(|_| good_one(&id)).collect();
    let (status, body) = app.post("/v1/qos", json!(too_many)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("batch_too_large"))
    );
    let (status, body) = app.post_raw("/v1/qos", "application/json", "[{").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, _) = app.post("/v1/qos", json!([])).await;
    assert_eq!(status, 400);
    let (status, _) = app.post_raw("/v1/qos", "text/plain", "{}").await;
    assert_eq!(status, 415);
    app.stop().await;
}

fn good_one(id: &str) -> Value {
    json!({ "stream_id": id, "provider": "tencent", "region": "tw", "played_ms": 1000 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_moves_the_failing_provider_last_and_counts_against_it() {
    let db = TestDb::sqlite();
    let app = app(&db).await;
    let id = app.create_stream("anchor-switch", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/streams/{id}/switch");
    let (status, body) = app
        .post(&path, json!({ "from_provider": "tencent", "reason": "stall", "region": "tw", "protocol": "flv" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let order: Vec<&str> = body["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["alibaba", "tencent"]);
    let (status, body) = app.post(&path, json!({ "from_provider": "nope" })).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (404, "unknown_provider"),
        "{body}"
    );
    for (req, code) in [
        (
            json!({ "from_provider": "cloudfront", "region": "tw" }),
            "not_a_carrier",
        ),
        (
            json!({ "from_provider": "tencent", "reason": "bad reason!" }),
            "invalid_reason",
        ),
        (json!({ "reason": "stall" }), "invalid_json"),
    ] {
        let (status, body) = app.post(&path, req).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, code),
            "{body}"
        );
    }
    // Enough players stalling on Tencent move Taiwan off it.
    for _ in 0..10 {
        app.post(
            &path,
            json!({ "from_provider": "tencent", "reason": "stall", "region": "tw" }),
        )
        .await;
    }
    let play = format!("/v1/streams/{id}/play?region=tw");
    assert!(eventually(async || first(&app.get(&play).await.1) == "alibaba").await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_manifests_follow_the_specs() {
    let db = TestDb::sqlite();
    let app = app(&db).await;
    let id = app.create_stream("anchor-steer", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (flavour, key, pathway) in [
        ("hls", "PATHWAY-PRIORITY", "_HLS_pathway"),
        ("dash", "SERVICE-LOCATION-PRIORITY", "_DASH_pathway"),
    ] {
        let (status, m) = app
            .get(&format!(
                "/v1/steering/{flavour}/{id}?{pathway}=alibaba&region=tw"
            ))
            .await;
        assert_eq!(status, 200, "{m}");
        assert_eq!(m["VERSION"], 1);
        assert_eq!(m["TTL"], 30);
        let priority: Vec<&str> = m[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert!(!priority.is_empty());
        assert_eq!(
            priority.len(),
            priority.iter().collect::<HashSet<_>>().len(),
            "unique pathways"
        );
        // The player on Alibaba stays there: it is about as good as Tencent.
        assert_eq!(priority[0], "alibaba");
        let reload = m["RELOAD-URI"].as_str().unwrap();
        let prefix = app.url(&format!("/v1/steering/{flavour}/{id}?session="));
        assert!(reload.starts_with(&prefix), "{reload}");
        // The reload carries the region: no region hint needed, any replica can answer. The
        // player appends its pathway, as hls.js and dash.js do.
        let (status, again) = app
            .get(&format!(
                "{}&{pathway}=alibaba",
                &reload[app.url("").len()..]
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(again[key], m[key]);
    }
    // Garbage state or throughput: a fresh session, or a clear 400; never a 429 or a 5xx.
    let (status, _) = app.get(&format!("/v1/steering/hls/{id}?session=%%%")).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .get(&format!("/v1/steering/hls/{id}?_HLS_throughput=fast"))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_throughput"))
    );
    for _ in 0..200 {
        assert_eq!(app.get(&format!("/v1/steering/hls/{id}")).await.0, 200);
    }
    assert_eq!(app.get("/v1/steering/hls/unknown").await.0, 404);
    app.delete(&format!("/v1/streams/{id}")).await;
    let (status, body) = app.get(&format!("/v1/steering/hls/{id}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("stream_ended"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_playlist_points_players_at_the_steering_server() {
    let db = TestDb::sqlite();
    // An origin without a ladder: one variant per pathway.
    let origin = TestOrigin::start(Reply::playlist(MEDIA_PLAYLIST));
    let app = builder(&db).origin(&origin).start().await;
    let id = app.create_stream("anchor-master", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .client
        .get(app.url(&format!("/v1/streams/{id}/master.m3u8?region=tw")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    assert!(
        lines[1].starts_with(&format!(
            "#EXT-X-CONTENT-STEERING:SERVER-URI=\"{}?session=",
            app.url(&format!("/v1/steering/hls/{id}"))
        )),
        "{text}"
    );
    assert!(lines[1].ends_with(",PATHWAY-ID=\"tencent\""), "{text}");
    assert_eq!(
        lines[2],
        "#EXT-X-STREAM-INF:BANDWIDTH=2500000,PATHWAY-ID=\"tencent\""
    );
    assert!(lines[3].starts_with(&format!(
        "http://{}/tencent/live/{id}.m3u8?txSecret=",
        origin.addr
    )));
    assert_eq!(
        lines[4],
        "#EXT-X-STREAM-INF:BANDWIDTH=2500000,PATHWAY-ID=\"alibaba\""
    );
    assert!(lines[5].starts_with(&format!(
        "http://{}/alibaba/live/{id}.m3u8?auth_key=",
        origin.addr
    )));
    assert_eq!(lines.len(), 6, "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_drain_and_reload() {
    let db = TestDb::sqlite();
    let app = app(&db).await;
    let admin = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let mut r = app.client.request(method, app.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let res = r.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let t = Some("secret-admin-token");
    assert_eq!(
        admin(reqwest::Method::GET, "/admin/scores", None).await.0,
        401
    );
    assert_eq!(
        admin(reqwest::Method::GET, "/admin/scores", Some("wrong"))
            .await
            .0,
        401
    );
    assert_eq!(
        admin(reqwest::Method::GET, "/admin/scores?region=mars", t)
            .await
            .0,
        400
    );
    assert_eq!(
        admin(reqwest::Method::POST, "/admin/providers/nope/drain", t)
            .await
            .0,
        404
    );

    let id = app.create_stream("anchor-admin", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = admin(reqwest::Method::POST, "/admin/providers/tencent/drain", t).await;
    assert_eq!((status, body["drained"].as_bool()), (200, Some(true)));
    let (_, play) = app.get(&format!("/v1/streams/{id}/play?region=tw")).await;
    assert_eq!(first(&play), "alibaba");
    // New streams are not pushed to a drained provider.
    let created = app.create_stream("anchor-admin-2", "tw").await;
    assert_eq!(created["push"][0]["provider"], "alibaba");
    let (status, _) = admin(reqwest::Method::DELETE, "/admin/providers/tencent/drain", t).await;
    assert_eq!(status, 200);
    // Back in rotation (second: as good as the interim incumbent, not better by the margin).
    let (_, play) = app.get(&format!("/v1/streams/{id}/play?region=tw")).await;
    let order: Vec<&str> = play["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["alibaba", "tencent"]);

    // A bad policy file is refused with its line, and the policy in force stays.
    let file = app.state.config.policy_file.clone();
    let good = std::fs::read_to_string(&file).unwrap();
    let version = app.state.catalog.load().policy.version.clone();
    YamlDoc::parse(&good)
        .set("scoring.exploration_rate", 7)
        .write(&file);
    let (status, body) = admin(reqwest::Method::POST, "/admin/policies/reload", t).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("invalid_policy")),
        "{body}"
    );
    assert!(
        body["problems"][0]
            .as_str()
            .unwrap()
            .contains("scoring.exploration_rate is 7"),
        "{body}"
    );
    assert_eq!(app.state.catalog.load().policy.version, version);
    // The file watcher sees the same bad file and keeps the policy too.
    assert!(
        livesteer::jobs::run_once(app.state.jobs(), "reload_policy")
            .await
            .is_ok()
    );
    assert_eq!(app.state.catalog.load().policy.version, version);
    // A good change is picked up by the watcher.
    YamlDoc::parse(&good)
        .set("steering.ttl_seconds", 12)
        .write(&file);
    let summary = livesteer::jobs::run_once(app.state.jobs(), "reload_policy")
        .await
        .unwrap();
    assert!(summary.starts_with("loaded policy"), "{summary}");
    assert_ne!(app.state.catalog.load().policy.version, version);
    let (_, m) = app.get(&format!("/v1/steering/hls/{id}?region=tw")).await;
    assert_eq!(m["TTL"], 12);
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
        metrics.contains("livesteer_policy_reloads_total{outcome=\"error\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_is_off_without_a_token() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).start().await;
    let (status, body) = app.get("/admin/scores").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("admin_disabled"))
    );
    app.stop().await;
}

async fn replicas_share_what_they_learn(db: TestDb) {
    // Two replicas on one database; players report to A only.
    let a = app(&db).await;
    let b = app(&db).await;
    let id = a.create_stream("anchor-replicas", "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string();
    // B learns of the stream the way a replica does after a restart; here, from the table.
    a.state.writer.flush().await.unwrap();
    let row = db.get_stream(&id).unwrap().unwrap();
    b.state
        .streams
        .put(livesteer::streams::Stream::from_row(&row).unwrap());
    let play = format!("/v1/streams/{id}/play?region=tw&protocol=hls");
    assert_eq!(first(&b.get(&play).await.1), "tencent");

    let mut batch = reports(&id, "tencent", 300, 3000);
    batch.extend(reports(&id, "alibaba", 100, 0));
    assert_eq!(a.post("/v1/qos", json!(batch)).await.0, 200);
    assert!(eventually(async || first(&a.get(&play).await.1) == "alibaba").await);
    // A saves its windows, B takes them in: B ranks with what A heard.
    persist(&a).await;
    let summary = persist(&b).await;
    assert!(summary.contains("took in"), "{summary}");
    b.state.scorer.refresh();
    assert_eq!(first(&b.get(&play).await.1), "alibaba");
    // B saved nothing of its own: A counts A's windows once, not twice. (Once every report is
    // applied: the first reorder can come before the last of the batch, whose last hundred are
    // Alibaba's.)
    let applied =
        eventually(async || a.state.scorer.delivery_score("alibaba", "tw").samples > 80.0).await;
    assert!(applied, "the reports never all reached the engine");
    a.state.scorer.refresh();
    let before = a.state.scorer.snapshot().cost("tw", "tencent").unwrap();
    persist(&a).await;
    a.state.scorer.refresh();
    let after = a.state.scorer.snapshot().cost("tw", "tencent").unwrap();
    assert!((before - after).abs() < 0.02, "{before} vs {after}");
    a.stop().await;
    b.stop().await;

    // A restarted instance starts from what was saved.
    let c = app(&db).await;
    let (_, play_c) = c.get(&play).await;
    assert_eq!(first(&play_c), "alibaba", "{play_c}");
    c.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async replicas_share_what_they_learn(TestDb) =>
        sqlite_replicas_share_what_they_learn, postgres_replicas_share_what_they_learn
);

/// An outage of one CDN's ingest for a region's anchors, heard by one replica (origin callbacks
/// and probes reach it as signals), reaches the other through the saved windows: B too rates
/// every anchor of that region, one with no record of its own included, worse on that CDN,
/// beyond what the hour-long windows show.
async fn replicas_share_an_ingest_outage(db: TestDb) {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let a = builder(&db).clock(clock.clone()).start().await;
    let b = builder(&db).clock(clock.clone()).start().await;
    let created = a.create_stream("anchor-hk-1", "hk").await;
    let cdn = providers_of(&created["push"])[0].clone();
    let probe = |healthy: bool| Signal::Ingest {
        provider: cdn.clone(),
        anchor_id: "anchor-hk-1".into(),
        source: IngestSource::Probe,
        healthy,
        bitrate_kbps: None,
    };
    let estimate = |app: &TestApp| {
        app.state
            .scorer
            .ingest_unhealthy(&cdn, "anchor-hk-2", "hk")
            .0
    };
    // A long healthy record, then ten minutes later (many recent half-lives) ten failures.
    for _ in 0..60 {
        assert!(a.state.signals.emit(probe(true)));
    }
    assert!(
        eventually(async || estimate(&a) < 0.02).await,
        "{}",
        estimate(&a)
    );
    clock.advance_ms(600_000);
    for _ in 0..10 {
        assert!(a.state.signals.emit(probe(false)));
    }
    assert!(
        eventually(async || estimate(&a) > 0.4).await,
        "{}",
        estimate(&a)
    );
    // Over the hour alone the region's rate is a sixth of that.
    let (_, region_over_the_hour) = a.state.scorer.ingest_unhealthy(&cdn, "anchor-hk-2", "hk");
    assert!(region_over_the_hour < 0.2, "{region_over_the_hour}");
    persist(&a).await;
    let summary = persist(&b).await;
    assert!(summary.contains("took in"), "{summary}");
    assert!(estimate(&b) > 0.4, "{}", estimate(&b));
    a.stop().await;
    b.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async replicas_share_an_ingest_outage(TestDb) =>
        sqlite_replicas_share_an_ingest_outage, postgres_replicas_share_an_ingest_outage
);

/// A live stream whose push targets turn out poor for its audience moves when its app asks
/// again: the move is committed before the answer, play answers follow it, a stream that is
/// fine stays, and an ended stream is not moved back to life.
async fn asking_again_moves_a_poorly_pushed_stream(db: TestDb) {
    let app = builder(&db)
        .policy(|p| p.set("ingest.ask_again_seconds", 60))
        .start()
        .await;
    let created = app.create_stream("anchor-ask-again", "tw").await;
    assert_eq!(created["ask_again_seconds"], 60, "{created}");
    let id = created["stream_id"].as_str().unwrap().to_string();
    let pushed: Vec<String> = providers_of(&created["push"]);
    assert_eq!(pushed.len(), 2, "{created}");
    let path = format!("/v1/streams/{id}/push");

    // Nothing learned since: it stays, with its targets signed again.
    let (status, same) = app.post(&path, json!({})).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["moved"], false, "{same}");
    assert_eq!(providers_of(&same["push"]), pushed);
    assert_eq!(same["push"][0]["role"], "primary");
    assert_eq!(same["ask_again_seconds"], 60);

    // Its viewers rebuffer on both of its providers.
    let mut batch = reports(&id, &pushed[0], 200, 6000);
    batch.extend(reports(&id, &pushed[1], 200, 6000));
    assert_eq!(app.post("/v1/qos", json!(batch)).await.0, 200);
    let applied =
        eventually(async || app.state.scorer.delivery_score(&pushed[1], "tw").samples > 150.0)
            .await;
    assert!(applied, "the reports never all reached the engine");

    let (status, moved) = app.post(&path, json!({})).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["moved"], true, "{moved}");
    let now_on = providers_of(&moved["push"]);
    assert_eq!(now_on.len(), 2, "{moved}");
    assert!(now_on.iter().any(|p| !pushed.contains(p)), "{moved}");
    assert!(
        moved["push"][0]["url"].as_str().unwrap().contains(&id),
        "{moved}"
    );
    // Committed, shown and played from.
    let row = db.get_stream(&id).unwrap().unwrap();
    for p in &now_on {
        assert!(row.providers.contains(p.as_str()), "{}", row.providers);
    }
    let (_, shown) = app.get(&format!("/v1/streams/{id}")).await;
    assert_eq!(shown["providers"], json!(now_on), "{shown}");
    let (_, play) = app
        .get(&format!("/v1/streams/{id}/play?region=tw&protocol=rtmp"))
        .await;
    let playing = providers_of(&play["candidates"]);
    assert!(
        playing.iter().all(|p| now_on.contains(p)),
        "{playing:?} against {now_on:?}"
    );
    // Asked again at once, it stays where it went.
    let (_, again) = app.post(&path, json!({})).await;
    assert_eq!(again["moved"], false, "{again}");
    assert_eq!(providers_of(&again["push"]), now_on);

    // Ended: 410; unknown: 404.
    assert_eq!(app.delete(&format!("/v1/streams/{id}")).await.0, 200);
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("stream_ended"))
    );
    let (status, body) = app.post("/v1/streams/s0000/push", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_stream"))
    );
    let row = db.get_stream(&id).unwrap().unwrap();
    assert_eq!(row.state, "ended");
    app.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async asking_again_moves_a_poorly_pushed_stream(TestDb) =>
        sqlite_asking_again_moves_a_poorly_pushed_stream,
        postgres_asking_again_moves_a_poorly_pushed_stream
);

fn providers_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap().to_string())
        .collect()
}
