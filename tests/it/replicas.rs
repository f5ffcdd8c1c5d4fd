//! Two replicas on one PostgreSQL database: a stream created on one plays on the other, and
//! its end answers 410 there, within a second (LISTEN/NOTIFY); one that missed the
//! notifications (it started later) has it from the start-up load and the catch-up.

use std::time::{Duration, Instant};

use livesteer::store::testing::TestDb;

use crate::support::{TestApp, YamlDoc};

/// The play status on `app` for `id`, polled until it is `want` or a second has passed.
async fn status_within_a_second(app: &TestApp, id: &str, want: u16) -> (u16, Duration) {
    let path = format!("/v1/streams/{id}/play?protocol=hls&region=tw");
    let started = Instant::now();
    loop {
        let (status, _) = app.get(&path).await;
        if status == want || started.elapsed() > Duration::from_secs(1) {
            return (status, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ends both replicas' listener connections, once both are connected (each reconnects a second
/// after it notices, then catches up).
async fn cut_both_listeners(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut cut = 0;
    while cut < 2 {
        assert!(
            Instant::now() < deadline,
            "the replicas' listeners never connected"
        );
        cut += db.end_connections("LISTEN");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_stream_created_or_ended_on_one_replica_shows_on_the_other_within_a_second() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let a = TestApp::builder(&db).start().await;
    let b = TestApp::builder(&db).start().await;

    for round in 0..3 {
        let created = a
            .create_stream(&format!("anchor-replica-{round}"), "tw")
            .await;
        let id = created["stream_id"].as_str().unwrap();
        let (status, took) = status_within_a_second(&b, id, 200).await;
        assert_eq!(
            status, 200,
            "round {round}: {id} created on A, on B after {took:?}"
        );
        let (status, _) = a.delete(&format!("/v1/streams/{id}")).await;
        assert_eq!(status, 200);
        let (status, took) = status_within_a_second(&b, id, 410).await;
        assert_eq!(
            status, 410,
            "round {round}: {id} ended on A, on B after {took:?}"
        );
    }
    // Created on B, ended on B: A follows too.
    let created = b.create_stream("anchor-replica-b", "tw").await;
    let id = created["stream_id"].as_str().unwrap().to_string();
    assert_eq!(status_within_a_second(&a, &id, 200).await.0, 200);
    // A replica started later loads the live stream at start.
    let c = TestApp::builder(&db).start().await;
    assert_eq!(status_within_a_second(&c, &id, 200).await.0, 200);
    b.delete(&format!("/v1/streams/{id}")).await;
    assert_eq!(status_within_a_second(&a, &id, 410).await.0, 410);
    assert_eq!(status_within_a_second(&c, &id, 410).await.0, 410);
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

/// The listeners' connections fail; a stream created meanwhile (its notification lost) reaches
/// the other replica when its listener reconnects and catches up.
#[tokio::test]
async fn a_replica_that_lost_its_listener_catches_up() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let a = TestApp::builder(&db).start().await;
    let b = TestApp::builder(&db).start().await;
    let first = a.create_stream("anchor-catch-up-0", "tw").await;
    let first = first["stream_id"].as_str().unwrap().to_string();
    // B's own memory, not a request (a request would read the row on a miss).
    let held = |app: &TestApp, id: &str| app.state.streams.get(id).is_some();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !held(&b, &first) {
        assert!(Instant::now() < deadline, "B never heard of {first}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    cut_both_listeners(&db).await;
    let created = a.create_stream("anchor-catch-up-1", "tw").await;
    let id = created["stream_id"].as_str().unwrap();
    // The reconnect waits a second; the catch-up reads what was missed, with no request asking.
    let deadline = Instant::now() + Duration::from_secs(8);
    while !held(&b, id) {
        assert!(Instant::now() < deadline, "B never caught up with {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = b
        .get(&format!("/v1/streams/{id}/play?protocol=hls&region=tw"))
        .await;
    assert_eq!(status, 200);
    b.stop().await;
    a.stop().await;
}

/// A replica asked about a stream it does not hold (its notification not merged: here the
/// listeners' connections were just cut, so none arrives for a second) reads the row at once:
/// a live stream plays, an ended one answers 410, an unknown one 404, on the first request.
#[tokio::test]
async fn a_replica_reads_a_stream_it_does_not_hold_on_the_first_request() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let a = TestApp::builder(&db).start().await;
    let b = TestApp::builder(&db).start().await;
    cut_both_listeners(&db).await;
    let live = a.create_stream("anchor-read-live", "tw").await;
    let live = live["stream_id"].as_str().unwrap();
    let ended = a.create_stream("anchor-read-ended", "tw").await;
    let ended = ended["stream_id"].as_str().unwrap();
    assert_eq!(a.delete(&format!("/v1/streams/{ended}")).await.0, 200);

    let play = |id: &str| format!("/v1/streams/{id}/play?protocol=hls&region=tw");
    let (status, body) = b.get(&play(live)).await;
    assert_eq!(
        status, 200,
        "{live} created on A, asked of B at once: {body}"
    );
    let (status, body) = b.get(&format!("/v1/steering/hls/{live}?region=tw")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = b.get(&play(ended)).await;
    assert_eq!(
        status, 410,
        "{ended} ended on A, asked of B at once: {body}"
    );
    let (status, body) = b.get(&format!("/v1/streams/{ended}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "ended", "{body}");
    let unknown = "s0000000000000000000000000";
    for _ in 0..3 {
        let (status, body) = b.get(&play(unknown)).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"], "unknown_stream", "{body}");
    }
    b.stop().await;
    a.stop().await;
}

/// Polls `f` until it is true or `within` has passed; returns how long it took, or `None`.
async fn within(within: Duration, mut f: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if f().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn room_state(app: &TestApp, anchor: &str) -> String {
    let (status, body) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(status, 200, "{body}");
    body["state"].as_str().unwrap().to_string()
}

async fn srs(app: &TestApp, hook: &str, stream: &str, token: &str) {
    let body = crate::rooms::srs_hook(hook, stream, token);
    let (status, answer) = app
        .post_raw("/v1/callbacks/local-srs", "application/json", body)
        .await;
    assert_eq!(status, 200, "{hook}: {answer}");
}

/// Short graces and no chat requirement, so a room goes live on an `on_hls` and offline within
/// half a second of an `on_unpublish`.
fn quick_rooms(policy: YamlDoc) -> YamlDoc {
    policy
        .set("rooms.chat_required", false)
        .set("rooms.stall_grace_ms", 150)
        .set("rooms.offline_grace_ms", 150)
}

/// A room that goes live through callbacks on A is live on B within a second, in B's list
/// too; its anchor's unpublish reaching B takes it offline there, and A follows within a
/// second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_state_reached_through_one_replica_holds_on_the_other_within_a_second() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let a = TestApp::builder(&db).policy(quick_rooms).start().await;
    let b = TestApp::builder(&db).policy(quick_rooms).start().await;
    let anchor = "anchor-room-replicas";
    let created = a.create_stream(anchor, "tw").await;
    let stream = created["stream_id"].as_str().unwrap().to_string();
    let push = created["push"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "local-srs")
        .unwrap_or_else(|| panic!("no local-srs push in {created}"));
    let token = crate::rooms::token_of(push["url"].as_str().unwrap());

    srs(&a, "srs-on_publish.json", &stream, &token).await;
    srs(&a, "srs-on_hls.json", &stream, &token).await;
    assert_eq!(room_state(&a, anchor).await, "live");
    let took = within(Duration::from_secs(1), async || {
        room_state(&b, anchor).await == "live"
    })
    .await;
    assert!(took.is_some(), "live on A, not on B within a second");
    let (_, list) = b.get("/v1/rooms?state=live&region=tw").await;
    assert!(
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["anchor_id"] == anchor),
        "{list}"
    );

    // The encoder stops; the origin's unpublish reaches B, whose timers take the room down.
    srs(&b, "srs-on_unpublish.json", &stream, &token).await;
    let offline = within(Duration::from_secs(2), async || {
        livesteer::jobs::run_once(b.state.jobs(), "sweep_rooms")
            .await
            .unwrap();
        room_state(&b, anchor).await == "offline"
    })
    .await;
    assert!(offline.is_some(), "B never took the room offline");
    let took = within(Duration::from_secs(1), async || {
        room_state(&a, anchor).await == "offline"
    })
    .await;
    assert!(took.is_some(), "offline on B, not on A within a second");
    b.stop().await;
    a.stop().await;
}

/// A drain set through A's admin API applies on B within a second (and its end too), and a
/// replica started later has it from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_set_on_one_replica_applies_on_the_other_within_a_second() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let a = TestApp::builder(&db).admin_token("t0ken").start().await;
    let b = TestApp::builder(&db).admin_token("t0ken").start().await;
    let drained_on = async |app: &TestApp| -> Vec<String> {
        let (status, body) = app.get_as("/admin/scores", "t0ken").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["drained"].clone()).unwrap()
    };
    let set = async |app: &TestApp, on: bool| {
        let url = app.url("/admin/providers/local-srs/drain");
        let req = if on {
            app.client.post(url)
        } else {
            app.client.delete(url)
        };
        let res = req.bearer_auth("t0ken").send().await.unwrap();
        assert_eq!(res.status(), 200);
    };
    set(&a, true).await;
    assert!(drained_on(&a).await.contains(&"local-srs".to_string()));
    let took = within(Duration::from_secs(1), async || {
        drained_on(&b).await.contains(&"local-srs".to_string())
    })
    .await;
    assert!(took.is_some(), "drained on A, not on B within a second");
    let c = TestApp::builder(&db).admin_token("t0ken").start().await;
    assert!(drained_on(&c).await.contains(&"local-srs".to_string()));

    set(&b, false).await;
    for app in [&a, &c] {
        let took = within(Duration::from_secs(1), async || {
            !drained_on(app).await.contains(&"local-srs".to_string())
        })
        .await;
        assert!(took.is_some(), "undrained on B, still drained elsewhere");
    }
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

/// Two replicas reading one policy file: it changes, A is told to reload, and B runs the new
/// version within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reload_on_one_replica_reaches_the_other_within_a_second() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("default.yaml");
    let shipped = YamlDoc::shipped_policy();
    shipped.write(&file);
    let a = TestApp::builder(&db)
        .policy_file(file.clone())
        .admin_token("t0ken")
        .start()
        .await;
    let b = TestApp::builder(&db)
        .policy_file(file.clone())
        .admin_token("t0ken")
        .start()
        .await;
    let before = b.state.catalog.load().policy.version.clone();
    assert_eq!(a.state.catalog.load().policy.version, before);

    shipped.set("scoring.exploration_rate", 0.05).write(&file);
    let res = a
        .client
        .post(a.url("/admin/policies/reload"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let now = a.state.catalog.load().policy.version.clone();
    assert_ne!(now, before);
    let took = within(Duration::from_secs(1), async || {
        b.state.catalog.load().policy.version == now
    })
    .await;
    assert!(took.is_some(), "A reloaded {now}, B still runs {before}");
    b.stop().await;
    a.stop().await;
}

/// An anchor's publish, chat and flow reach three different replicas a few milliseconds
/// apart, before any of them heard of the others' rows: every replica has the room live within
/// a second (each row merged as the union of what the replicas saw).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_inputs_spread_over_three_replicas_make_it_live_on_all() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let start = || {
        TestApp::builder(&db)
            .config(|c| c.flush_interval_ms = 50)
            .start()
    };
    let (a, b, c) = (start().await, start().await, start().await);
    // Each replica's sweep runs every second, as the job does.
    for app in [&a, &b, &c] {
        let state = std::sync::Arc::downgrade(&app.state);
        tokio::spawn(async move {
            while let Some(s) = state.upgrade() {
                livesteer::jobs::run_once(s.jobs(), "sweep_rooms")
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    for round in 0..20 {
        let anchor = format!("anchor-spread-{round}");
        let created = a.create_stream(&anchor, "tw").await;
        let stream = created["stream_id"].as_str().unwrap().to_string();
        let push = created["push"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "local-srs")
            .unwrap()
            .clone();
        let token = crate::rooms::token_of(push["url"].as_str().unwrap());
        let apps = [&a, &b, &c];
        let (x, y, z) = (
            apps[round % 3],
            apps[(round + 1) % 3],
            apps[(round + 2) % 3],
        );
        srs(x, "srs-on_publish.json", &stream, &token).await;
        let (status, body) = y
            .post(
                &format!("/v1/rooms/{anchor}/chat"),
                serde_json::json!({"connected": true}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        srs(z, "srs-on_hls.json", &stream, &token).await;
        for (i, app) in apps.iter().enumerate() {
            let took = within(Duration::from_secs(1), async || {
                room_state(app, &anchor).await == "live"
            })
            .await;
            if took.is_none() {
                for (j, other) in apps.iter().enumerate() {
                    let (_, room) = other.get(&format!("/v1/rooms/{anchor}")).await;
                    eprintln!("replica {j}: {room}");
                }
                eprintln!("stored: {:?}", db.get_room(&anchor).unwrap());
                panic!("round {round}: replica {i} not live");
            }
        }
    }
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

/// A stream moved to other push targets on one replica (its app asked again) plays from the
/// new targets on the other within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_moved_on_one_replica_plays_from_its_new_targets_on_the_other() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let start = || {
        TestApp::builder(&db)
            .providers(crate::support::all_providers_dir())
            .secrets(crate::support::test_secrets())
            .policy(|p| {
                p.set("scoring.exploration_rate", 0)
                    .set("ingest.ask_again_seconds", 60)
            })
            .start()
    };
    let a = start().await;
    let b = start().await;
    let created = a.create_stream("anchor-replica-moved", "tw").await;
    let id = created["stream_id"].as_str().unwrap().to_string();
    let pushed: Vec<String> = created["push"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["provider"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(status_within_a_second(&b, &id, 200).await.0, 200);
    // A's players rebuffer on both providers the stream is pushed to.
    let reports: Vec<serde_json::Value> = pushed
        .iter()
        .flat_map(|p| {
            let id = &id;
            (0..200).map(move |_| {
                serde_json::json!({
                    "stream_id": id, "provider": p, "region": "tw", "protocol": "hls",
                    "played_ms": 30000, "rebuffer_ms": 6000, "rebuffer_count": 1, "startup_ms": 900
                })
            })
        })
        .collect();
    assert_eq!(a.post("/v1/qos", serde_json::json!(reports)).await.0, 200);
    let moved = within(Duration::from_secs(5), async || {
        a.state.scorer.delivery_score(&pushed[1], "tw").samples > 150.0
    })
    .await;
    assert!(moved.is_some(), "the reports never all reached A's engine");
    let (status, answer) = a
        .post(&format!("/v1/streams/{id}/push"), serde_json::json!({}))
        .await;
    assert_eq!(
        (status, &answer["moved"]),
        (200, &serde_json::json!(true)),
        "{answer}"
    );
    let now_on = answer["push"].clone();
    let now_on: Vec<&str> = now_on
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["provider"].as_str().unwrap())
        .collect();
    let path = format!("/v1/streams/{id}");
    let seen = within(Duration::from_secs(1), async || {
        b.get(&path).await.1["providers"] == serde_json::json!(now_on)
    })
    .await;
    assert!(seen.is_some(), "B still has {}", b.get(&path).await.1);
    let (_, play) = b
        .get(&format!("/v1/streams/{id}/play?region=tw&protocol=rtmp"))
        .await;
    for c in play["candidates"].as_array().unwrap() {
        assert!(now_on.contains(&c["provider"].as_str().unwrap()), "{play}");
    }
    b.stop().await;
    a.stop().await;
}
