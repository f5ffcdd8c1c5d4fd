//! Two replicas on one PostgreSQL database: a stream created on one plays on the other, and
//! its end answers 410 there, within a second (LISTEN/NOTIFY); one that missed the
//! notifications (it started later) has it from the start-up load and the catch-up.

use std::time::{Duration, Instant};

use livesteer::store::testing::TestDb;

use crate::support::TestApp;

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
