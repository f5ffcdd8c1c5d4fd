//! Acknowledged means committed: the real binary SIGKILLed while it creates and ends streams
//! as fast as it can, on SQLite and PostgreSQL; and a PostgreSQL outage answered with 503 at
//! once while play answers from memory.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livesteer::auth::signed;
use livesteer::store::Db;
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::backends::on_both_backends;
use crate::payments::{self, serve};
use crate::rooms::{srs_hook, token_of};
use crate::support::TestApp;

/// Concurrent clients during the load.
const WORKERS: usize = 32;
/// How long they create and end streams before the kill, at least.
const LOAD: Duration = Duration::from_millis(1500);

/// What the clients were told.
#[derive(Default)]
struct Told {
    /// Streams whose create was answered 201, with their local-srs push token, in answer order.
    created: Vec<(String, String)>,
    /// Streams whose end was answered 200.
    ended: HashSet<String>,
    /// Streams an end was sent for (answered or not).
    end_sent: HashSet<String>,
    /// Requests without an answer (in flight at the kill).
    unanswered: usize,
}

async fn create(client: &reqwest::Client, port: u16, anchor: &str) -> Result<Value, String> {
    let res = client
        .post(format!("http://127.0.0.1:{port}/v1/streams"))
        .json(&json!({ "anchor_id": anchor, "region": "tw" }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let v: Value = res.json().await.map_err(|e| e.to_string())?;
    if status != 201 {
        return Err(format!("HTTP {status}: {v}"));
    }
    Ok(v)
}

fn srs_token(created: &Value) -> String {
    let push = created["push"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "local-srs")
        .unwrap_or_else(|| panic!("no local-srs push in {created}"));
    token_of(push["url"].as_str().unwrap())
}

async fn end(client: &reqwest::Client, port: u16, id: &str) -> Result<(), String> {
    let res = client
        .delete(format!("http://127.0.0.1:{port}/v1/streams/{id}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    // The body is read whole: the answer was sent.
    let v: Value = res.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}: {v}"));
    }
    Ok(())
}

/// One client: creates streams back to back and ends every third one it created, until told
/// to stop or the server is gone.
async fn client_loop(worker: usize, port: u16, stop: Arc<AtomicBool>, told: Arc<Mutex<Told>>) {
    let client = reqwest::Client::new();
    let mut mine: Vec<String> = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if i % 3 == 2
            && let Some(id) = mine.pop()
        {
            told.lock().unwrap().end_sent.insert(id.clone());
            match end(&client, port, &id).await {
                Ok(()) => {
                    told.lock().unwrap().ended.insert(id);
                }
                Err(_) => {
                    told.lock().unwrap().unanswered += 1;
                    return;
                }
            }
            continue;
        }
        match create(&client, port, &format!("anchor-kill-{worker}-{i}")).await {
            Ok(v) => {
                let id = v["stream_id"].as_str().unwrap().to_string();
                mine.push(id.clone());
                told.lock().unwrap().created.push((id, srs_token(&v)));
            }
            Err(_) => {
                told.lock().unwrap().unanswered += 1;
                return;
            }
        }
    }
}

/// Creates and ends streams from [`WORKERS`] clients as fast as the server answers, SIGKILLs it
/// after [`LOAD`] (longer on a busy machine, until 300 creates were answered), and checks on the database and on the restarted server that every
/// acknowledged create and end is there, and that the push token of the last stream
/// acknowledged before the kill publishes.
async fn acknowledged_survives_sigkill(test_db: TestDb) {
    let url = test_db.url().to_string();
    let server = serve(&url).await;
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let told = Arc::new(Mutex::new(Told::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(client_loop(w, port, stop.clone(), told.clone())))
        .collect();
    // At least LOAD and some hundreds of answers (a busy machine answers slowly), at most 9 s.
    let started = Instant::now();
    while started.elapsed() < LOAD
        || (told.lock().unwrap().created.len() < 300 && started.elapsed() < LOAD * 6)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("clients stop once the server is gone")
            .unwrap();
    }
    let told = std::mem::take(&mut *told.lock().unwrap());
    assert!(
        told.created.len() >= 50,
        "only {} creates answered under load",
        told.created.len()
    );

    // Every acknowledged create and end is in the database.
    let db = Db::connect(&url, 1).unwrap();
    let (mut lost, mut revived) = (Vec::new(), Vec::new());
    for (id, _) in &told.created {
        match db.get_stream(id).unwrap() {
            None => lost.push(id.clone()),
            Some(row) if told.ended.contains(id) && row.state != "ended" => {
                revived.push(id.clone())
            }
            Some(row) if !told.end_sent.contains(id) => {
                assert_eq!(row.state, "live", "{id}: ended without being asked")
            }
            Some(_) => {}
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost: {:?}",
        lost.len(),
        told.created.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        revived.is_empty(),
        "{} of {} acknowledged ends came back live: {:?}",
        revived.len(),
        told.ended.len(),
        &revived[..revived.len().min(5)]
    );
    drop(db);
    println!(
        "SIGKILL on {}: {} creates and {} ends acknowledged, all stored; {} requests in flight",
        test_db.backend(),
        told.created.len(),
        told.ended.len(),
        told.unanswered
    );

    // After the restart: the last stream acknowledged before the kill publishes with the push
    // token it was given, and an acknowledged end stays ended.
    let server = serve(&url).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", server.port);
    let (id, token) = told
        .created
        .iter()
        .rev()
        .find(|(id, _)| !told.end_sent.contains(id))
        .expect("a stream that was not ended");
    let res = client
        .post(format!("{base}/v1/callbacks/local-srs"))
        .header("content-type", "application/json")
        .body(srs_hook("srs-on_publish.json", id, token))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (status, &body),
        (200, &json!({"code": 0})),
        "on_publish {id}"
    );
    let play = client
        .get(format!(
            "{base}/v1/streams/{id}/play?protocol=hls&region=tw"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(play.status(), 200, "play {id} after the restart");
    if let Some(ended) = told.ended.iter().next() {
        let play = client
            .get(format!(
                "{base}/v1/streams/{ended}/play?protocol=hls&region=tw"
            ))
            .send()
            .await
            .unwrap();
        assert_ne!(play.status(), 200, "play {ended}, ended before the kill");
    }
    server.kill9();
}

on_both_backends!(
    #[tokio::test]
    async acknowledged_survives_sigkill(TestDb) =>
        acknowledged_creates_and_ends_survive_sigkill_sqlite,
        acknowledged_creates_and_ends_survive_sigkill_postgres
);

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A request that must be answered within a second.
async fn within_a_second(req: reqwest::RequestBuilder, what: &str) -> (u16, Value) {
    let res = req
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: no answer within 1 s: {e}"));
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = res.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{what}: {ct}: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

/// PostgreSQL refuses every connection (and drops the open ones): `/readyz`, a payment sync
/// and a stream create answer 503 JSON within a second each, nothing is created, and play
/// keeps answering from memory; when the database is back, so is readiness.
#[tokio::test]
async fn a_database_outage_answers_503_at_once_and_play_goes_on() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let app = TestApp::builder(&db)
        .secrets(payments::secrets())
        .start()
        .await;
    let created = app.create_stream("anchor-outage", "tw").await;
    let id = created["stream_id"].as_str().unwrap().to_string();
    let play = app.url(&format!("/v1/streams/{id}/play?protocol=hls&region=tw"));
    assert_eq!(app.get("/readyz").await.0, 200);

    db.set_connections_allowed(false);
    let client = &app.client;
    for round in 0..3 {
        let (status, v) = within_a_second(client.get(app.url("/readyz")), "readyz").await;
        assert_eq!(
            (status, v["error"].as_str()),
            (503, Some("database_unavailable"))
        );
        let (status, v) = within_a_second(client.get(&play), "play").await;
        assert_eq!(status, 200, "round {round}: {v}");
    }
    let body = payments::batch(vec![payments::record("outage-1", 100, "TWD")]);
    let t = now_secs().to_string();
    let sig = signed::sign(payments::SECRET.as_bytes(), &t, body.as_bytes());
    let (status, v) = within_a_second(
        client
            .post(app.url("/v1/payments/sync"))
            .header("content-type", "application/json")
            .header(signed::TIMESTAMP_HEADER, t)
            .header(signed::SIGNATURE_HEADER, sig)
            .body(body),
        "payments sync",
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (503, Some("database_unavailable"))
    );
    let (status, v) = within_a_second(
        client
            .post(app.url("/v1/streams"))
            .json(&json!({ "anchor_id": "anchor-outage-2", "region": "tw" })),
        "create",
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (503, Some("database_unavailable"))
    );
    assert_eq!(
        app.state.streams.len(),
        1,
        "a create not stored is not held"
    );
    let (status, _) = within_a_second(client.get(&play), "play").await;
    assert_eq!(status, 200);

    db.set_connections_allowed(true);
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready 15 s after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.create_stream("anchor-outage-2", "tw").await;
    app.stop().await;
}
