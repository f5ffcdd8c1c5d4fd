//! A real origin: nginx with the RTMP module (Debian's `nginx` + `libnginx-mod-rtmp`) on
//! loopback ports chosen at run time, its `on_publish`, `on_publish_done`, `on_play`, `on_done`
//! and `on_update` hooks pointed at livesteer, and ffmpeg publishing a generated test pattern
//! to a livesteer-signed push URL.
//!
//! Skips with a printed reason when nginx, the module or ffmpeg is missing, except with
//! `CI=true`, where it fails (`.ci/run` installs them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use livesteer::providers::signing::{Grant, issue_origin_token};
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::media::{DEMO_SECRET, Encode, Origin, missing_origin_tools, require, wait_exit};
use crate::support::TestApp;

/// The provider directory: one nginx-rtmp origin on this test's ports.
fn providers_dir(origin: &Origin) -> PathBuf {
    let dir = origin.path("providers");
    origin.write_provider(&dir, "[rtmp, hls]");
    dir
}

/// Short grace periods so the test takes seconds.
fn policy_file(origin: &Origin) -> PathBuf {
    let file = origin.path("policy.yaml");
    std::fs::write(
        &file,
        format!(
            "regions:\n  - id: global\n    providers: [local-nginx]\ndefault_region: global\n\
             rooms:\n  chat_required: true\n  confirm_ms: 3000\n  stall_grace_ms: 500\n  \
             offline_grace_ms: 1500\n\
             probes:\n  kinds: [hls, stats]\n  timeout_ms: 3000\n  stats:\n    - provider: local-nginx\n      \
             kind: nginx_stat\n      url: http://127.0.0.1:{h}/stat\n\
             jobs:\n  probe_streams: \"\"\n  sweep_rooms: \"\"\n",
            h = origin.http
        ),
    )
    .unwrap();
    file
}

async fn room(app: &TestApp, anchor: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn in_live_list(app: &TestApp, anchor: &str) -> bool {
    let (status, body) = app.get("/v1/rooms?state=live&limit=500").await;
    assert_eq!(status, 200, "{body}");
    body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["anchor_id"] == anchor)
}

/// Waits (polling every 50 ms, at most `limit`) until `anchor` has `state`; returns how long
/// it took.
async fn wait_state(
    app: &TestApp,
    origin: &Origin,
    anchor: &str,
    state: &str,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let r = room(app, anchor).await;
        if r["state"] == state {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "room did not become {state} within {limit:?}: {r}\n{}",
            origin.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_rtmp_publish_goes_live_then_stalled_then_offline() {
    if !require("the real-origin test", &missing_origin_tools()) {
        return;
    }
    let origin = Origin::new();
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .providers(providers_dir(&origin))
        .policy_file(policy_file(&origin))
        .start()
        .await;
    let _nginx = origin.start_nginx(app.addr);
    // Timers advance in the sweep_rooms job; here it runs every 50 ms.
    let sweeper = {
        let state = app.state.clone();
        tokio::spawn(async move {
            loop {
                livesteer::jobs::run_once(state.jobs(), "sweep_rooms")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let anchor = "anchor-origin-1";
    let created = app.create_stream(anchor, "global").await;
    let stream = created["stream_id"].as_str().unwrap().to_string();
    let push = created["push"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(created["push"][0]["provider"], "local-nginx");
    assert!(push.contains("?token="), "{push}");

    // A forged token and an expired one: nginx refuses the publish because livesteer said no.
    let base = push.split("?token=").next().unwrap().to_string();
    let forged = format!("{base}?token=1999999999-{}", "0".repeat(64));
    let expired_token = issue_origin_token(
        DEMO_SECRET.as_bytes(),
        Grant::Publish,
        "live",
        &stream,
        1_000_000,
    )
    .unwrap();
    let expired = format!("{base}?token={expired_token}");
    for (url, log) in [
        (&forged, "ffmpeg-forged.log"),
        (&expired, "ffmpeg-expired.log"),
    ] {
        let encode = Encode {
            seconds: Some(20),
            ..Encode::default()
        };
        let mut p = origin.ffmpeg(url, log, &encode);
        let status = wait_exit(&mut p, Duration::from_secs(15)).unwrap_or_else(|| {
            panic!("ffmpeg kept publishing with a bad token\n{}", origin.logs())
        });
        assert!(
            !status.success(),
            "publish with a bad token succeeded\n{}",
            origin.logs()
        );
        assert_eq!(room(&app, anchor).await["state"], "offline");
    }
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
        metrics
            .lines()
            .any(|l| l.starts_with("livesteer_callbacks_total")
                && l.contains("provider=\"local-nginx\"")
                && l.contains("outcome=\"refused\"")),
        "{metrics}"
    );

    // The chat room is connected; then the real publish.
    let (status, _) = app
        .post(
            &format!("/v1/rooms/{anchor}/chat"),
            json!({"connected": true}),
        )
        .await;
    assert_eq!(status, 200);
    let mut ffmpeg = origin.ffmpeg(&push, "ffmpeg-good.log", &Encode::default());
    let to_live = wait_state(&app, &origin, anchor, "live", Duration::from_secs(20)).await;
    assert!(in_live_list(&app, anchor).await);
    let r = room(&app, anchor).await;
    assert_eq!(r["providers"], json!(["local-nginx"]));
    assert_eq!(r["stream_id"], stream.as_str());
    eprintln!("publish start → live: {to_live:?}");

    // Active probes against the real origin: nginx-rtmp's stat page and its HLS output.
    let deadline = Instant::now() + Duration::from_secs(25);
    let (mut stat_ok, mut hls_ok) = (false, false);
    while !(stat_ok && hls_ok) {
        for r in livesteer::probes::run_once(&app.state.probing()).await {
            assert_eq!(r.stream_id, stream);
            if r.outcome == "healthy" && r.bitrate_kbps.is_some_and(|k| k > 0.0) {
                stat_ok |= r.kind == "nginx_stat";
                hls_ok |= r.kind == "hls";
            }
        }
        assert!(
            Instant::now() < deadline,
            "probes never found the stream healthy (stat {stat_ok}, hls {hls_ok})\n{}",
            origin.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let r = room(&app, anchor).await;
    assert_eq!(r["health"], 1.0, "{r}");
    assert!(
        r["ingest"][0]["bitrate_kbps"].as_f64().unwrap() > 0.0,
        "{r}"
    );

    // ffmpeg is killed: stalled after the stall grace, offline after the offline grace.
    drop(ffmpeg.0.kill());
    let _ = ffmpeg.0.wait();
    let killed = Instant::now();
    wait_state(&app, &origin, anchor, "stalled", Duration::from_secs(10)).await;
    assert!(!in_live_list(&app, anchor).await);
    let to_stalled = killed.elapsed();
    wait_state(&app, &origin, anchor, "offline", Duration::from_secs(10)).await;
    eprintln!(
        "publish stop → stalled: {to_stalled:?}, → offline: {:?}",
        killed.elapsed()
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
    for want in [
        "livesteer_room_transitions_total{from=\"live\",to=\"stalled\"}",
        "livesteer_room_transitions_total{from=\"stalled\",to=\"offline\"}",
        "livesteer_rooms{state=\"offline\"}",
        "livesteer_probe_duration_seconds_bucket{provider=\"local-nginx\",kind=\"hls\",outcome=\"healthy\"",
    ] {
        assert!(metrics.contains(want), "no {want} in\n{metrics}");
    }
    sweeper.abort();
    app.state.rooms.flush().await.unwrap();
    assert_eq!(db.get_room(anchor).unwrap().unwrap().state, "offline");
    app.stop().await;
}
