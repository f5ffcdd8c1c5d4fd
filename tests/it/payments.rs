//! The payment sync ledger: idempotent, durable before acknowledged, signed, on both
//! backends; and the real binary killed with SIGKILL while it handles a batch.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use livesteer::auth::signed;
use livesteer::store::Db;
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::backends::on_both_backends;
use crate::directory::signed_post;
use crate::support::{TestApp, YamlDoc, root};

pub(crate) const CENTRE: &str = "pay-tw";
pub(crate) const SECRET: &str = "test-pay-tw-secret";

pub(crate) fn secrets() -> HashMap<String, String> {
    [("LIVESTEER_PAY_TW_SECRET".to_string(), SECRET.to_string())].into()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn record(id: &str, amount: i64, currency: &str) -> Value {
    json!({
        "id": id, "user": format!("user-{id}"), "amount_minor": amount, "currency": currency,
        "provider": "apple", "status": "completed", "created_at": "2026-11-25T10:00:00Z",
        "centre": CENTRE,
    })
}

pub(crate) fn batch(records: Vec<Value>) -> String {
    json!({ "centre": CENTRE, "records": records }).to_string()
}

async fn sync(app: &TestApp, body: &str) -> (u16, Value) {
    signed_post(app, "/v1/payments/sync", body, SECRET, now_secs()).await
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

async fn replayed_three_times_then_a_conflict(db: TestDb) {
    let app = TestApp::builder(&db).secrets(secrets()).start().await;
    let body = batch(vec![
        record("p1", 499, "TWD"),
        record("p2", 150, "USD"),
        record("p3", 1000, "TWD"),
    ]);
    let (s, first) = sync(&app, &body).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(strs(&first["stored"]), ["p1", "p2", "p3"]);
    assert_eq!(strs(&first["inserted"]), ["p1", "p2", "p3"]);
    let before = db.payments_of(CENTRE).unwrap();
    assert_eq!(before.len(), 3);
    for _ in 0..3 {
        let (s, again) = sync(&app, &body).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!(strs(&again["stored"]), ["p1", "p2", "p3"]);
        assert_eq!(strs(&again["duplicates"]), ["p1", "p2", "p3"]);
        assert!(strs(&again["inserted"]).is_empty());
    }
    assert_eq!(
        db.payments_of(CENTRE).unwrap(),
        before,
        "replays change nothing"
    );

    // A different record under p2, with a new one beside it.
    let (s, v) = sync(
        &app,
        &batch(vec![record("p2", 151, "USD"), record("p4", 5, "JPY")]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(strs(&v["stored"]), ["p4"]);
    assert_eq!(v["conflicts"][0]["id"], "p2");
    let msg = v["conflicts"][0]["message"].as_str().unwrap();
    assert!(msg.contains("amount_minor 150 ≠ 151"), "{msg}");
    assert_eq!(
        db.get_payment(CENTRE, "p2").unwrap().unwrap().amount_minor,
        150
    );
    let conflicts = db.payment_conflicts_of(CENTRE).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert!(
        conflicts[0].1.contains("\"amount_minor\":151"),
        "{conflicts:?}"
    );

    // Reconcile: signed by the centre (the query string is the signed payload).
    let q = "centre=pay-tw&from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z";
    let t = now_secs().to_string();
    let sig = signed::sign(SECRET.as_bytes(), &t, q.as_bytes());
    let res = app
        .client
        .get(app.url(&format!("/v1/payments/reconcile?{q}")))
        .header(signed::TIMESTAMP_HEADER, &t)
        .header(signed::SIGNATURE_HEADER, &sig)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["count"], 4, "{r}");
    assert_eq!(
        r["currencies"],
        json!([
            {"currency": "JPY", "count": 1, "sum_minor": 5},
            {"currency": "TWD", "count": 2, "sum_minor": 1499},
            {"currency": "USD", "count": 1, "sum_minor": 150},
        ])
    );
    let (s, r) = app
        .get("/v1/payments/reconcile?centre=pay-tw&from=2026-11-26T00:00:00Z")
        .await;
    assert_eq!(
        (s, r["error"].as_str()),
        (401, Some("invalid_timestamp")),
        "{r}"
    );
    app.stop().await;
}

on_both_backends!(
    #[tokio::test]
    async replayed_three_times_then_a_conflict(TestDb) =>
        replayed_batches_store_once_sqlite, replayed_batches_store_once_postgres
);

#[tokio::test]
async fn a_bad_hmac_or_a_stale_timestamp_gets_401_and_stores_nothing() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .secrets(secrets())
        .admin_token("admin-t")
        .start()
        .await;
    let body = batch(vec![record("p1", 1, "TWD")]);
    let now = now_secs();
    for (what, secret, ts, code) in [
        ("wrong secret", "not-the-secret", now, "invalid_signature"),
        // Past the 300 s window by more than a slow test run can close.
        ("stale", SECRET, now - 330, "stale_timestamp"),
        ("future", SECRET, now + 330, "stale_timestamp"),
    ] {
        let (s, v) = signed_post(&app, "/v1/payments/sync", &body, secret, ts).await;
        assert_eq!((s, v["error"].as_str()), (401, Some(code)), "{what}: {v}");
    }
    let (s, v) = app
        .post_raw("/v1/payments/sync", "application/json", body.clone())
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("invalid_timestamp")),
        "{v}"
    );
    let other = body.replace("pay-tw", "pay-xx");
    let (s, v) = signed_post(&app, "/v1/payments/sync", &other, SECRET, now).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("unknown_signer")),
        "{v}"
    );
    assert!(db.payments_of(CENTRE).unwrap().is_empty(), "nothing stored");

    // Bad values are 400 and store nothing either, not even the good records beside them.
    for (records, code) in [
        (
            vec![record("p1", 1, "TWD"), record("p2", -5, "TWD")],
            "invalid_record",
        ),
        (vec![record("p1", 1, "twd")], "invalid_record"),
        (vec![], "empty_batch"),
    ] {
        let (s, v) = sync(&app, &batch(records)).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(code)), "{v}");
    }
    let (s, v) = sync(&app, "{\"centre\": \"pay-tw\"").await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_json")), "{v}");
    assert!(db.payments_of(CENTRE).unwrap().is_empty(), "nothing stored");

    // The admin token also opens reconciliation.
    let (s, v) = app
        .get_as("/v1/payments/reconcile?centre=pay-tw", "admin-t")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["count"], 0, "{v}");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// SIGKILL while a batch is being handled.

pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `livesteer serve` on its own port over `database_url` and waits until it answers.
pub(crate) async fn serve(database_url: &str) -> Server {
    let port = free_port();
    let mut server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_livesteer"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
            ])
            .current_dir(root())
            .env_remove("DATABASE_URL")
            .env_remove("LIVESTEER_LISTEN")
            .env("LIVESTEER_PAY_TW_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        port,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().is_success()
        {
            return server;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("livesteer serve exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "livesteer serve did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Server {
    pub(crate) fn kill9(mut self) {
        // std's Child::kill sends SIGKILL on Unix.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(client: &reqwest::Client, port: u16, body: &str) -> Result<Value, String> {
    let t = now_secs().to_string();
    let sig = signed::sign(SECRET.as_bytes(), &t, body.as_bytes());
    let res = client
        .post(format!("http://127.0.0.1:{port}/v1/payments/sync"))
        .header("content-type", "application/json")
        .header(signed::TIMESTAMP_HEADER, t)
        .header(signed::SIGNATURE_HEADER, sig)
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let v: Value = res.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}: {v}"));
    }
    Ok(v)
}

fn big_batch(round: usize) -> (Vec<String>, String) {
    let ids: Vec<String> = (0..1000).map(|i| format!("r{round}-{i:04}")).collect();
    let records = ids
        .iter()
        .enumerate()
        .map(|(i, id)| record(id, 100 + i as i64, if i % 2 == 0 { "TWD" } else { "USD" }))
        .collect();
    (ids, batch(records))
}

fn stored_of(db: &Db, prefix: &str) -> usize {
    db.payments_of(CENTRE)
        .unwrap()
        .iter()
        .filter(|r| r.payment_id.starts_with(prefix))
        .count()
}

/// Kills the server at a range of delays after sending a 1000-record batch (spanning the
/// time it takes to answer), restarts it, checks the batch was stored all or nothing, retries
/// it, and in the end checks every record is stored exactly once and as sent.
async fn killed_while_handling_then_retried(test_db: TestDb) {
    let url = test_db.url().to_string();
    let client = reqwest::Client::new();
    let mut server = serve(&url).await;

    // How long a batch takes here, unkilled (also warms the server).
    let (warm_ids, warm) = big_batch(999);
    let started = Instant::now();
    let v = send(&client, server.port, &warm).await.unwrap();
    let latency = started.elapsed();
    assert_eq!(v["stored"].as_array().unwrap().len(), warm_ids.len());

    let rounds = 16;
    let (mut before_commit, mut committed_unanswered, mut answered) = (0, 0, 0);
    for round in 0..rounds {
        let (ids, body) = big_batch(round);
        // From just after sending to a little past the usual answer time.
        let delay = latency.mul_f64(0.1 + 1.4 * (round as f64 / (rounds - 1) as f64));
        let port = server.port;
        let c = client.clone();
        let b = body.clone();
        let in_flight = tokio::spawn(async move { send(&c, port, &b).await });
        tokio::time::sleep(delay).await;
        server.kill9();
        let outcome = in_flight.await.unwrap();

        let db = Db::connect(&url, 1).unwrap();
        let n = stored_of(&db, &format!("r{round}-"));
        assert!(
            n == 0 || n == ids.len(),
            "round {round}: {n} of {} records stored: a batch must be all or nothing",
            ids.len()
        );
        match (&outcome, n) {
            (Ok(_), _) => {
                assert_eq!(n, ids.len(), "round {round}: acknowledged but not stored");
                answered += 1;
            }
            (Err(_), 0) => before_commit += 1,
            (Err(_), _) => committed_unanswered += 1,
        }
        drop(db);

        server = serve(&url).await;
        let v = send(&client, server.port, &body).await.unwrap();
        assert_eq!(
            v["stored"].as_array().unwrap().len(),
            ids.len(),
            "round {round}: the retry stores (or finds) every record: {}",
            v["conflicts"]
        );
        assert!(v["conflicts"].as_array().unwrap().is_empty());
    }
    println!(
        "sigkill rounds on {}: {before_commit} killed before the commit, {committed_unanswered} \
         committed but killed before answering, {answered} answered (warm batch took {latency:?})",
        test_db.backend()
    );
    assert!(
        before_commit + committed_unanswered > 0,
        "no kill landed while a batch was in flight"
    );

    let db = Db::connect(&url, 1).unwrap();
    let all = db.payments_of(CENTRE).unwrap();
    assert_eq!(all.len(), (rounds + 1) * 1000, "every record exactly once");
    for r in &all {
        let i: i64 = r.payment_id.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(r.amount_minor, 100 + i, "{r:?}");
        assert_eq!(r.user_id, format!("user-{}", r.payment_id));
    }
    assert!(db.payment_conflicts_of(CENTRE).unwrap().is_empty());
    server.kill9();
}

on_both_backends!(
    #[tokio::test]
    async killed_while_handling_then_retried(TestDb) =>
        sigkill_between_receiving_and_answering_sqlite,
        sigkill_between_receiving_and_answering_postgres
);

#[tokio::test]
async fn a_reload_brings_new_centres_and_refuses_a_missing_secret() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .secrets(secrets())
        // A copy of the shipped policy, which the test rewrites.
        .policy(|p| p)
        .start()
        .await;
    let file = app.state.config.policy_file.clone();
    let shipped = YamlDoc::load(&file);
    let hk = body_for("pay-hk");
    let (s, v) = signed_post(
        &app,
        "/v1/payments/sync",
        &hk,
        "hk-demo-secret-0123",
        now_secs(),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("unknown_signer")),
        "{v}"
    );

    // A centre whose variable is unset and which has no demo value: the reload is refused.
    shipped
        .clone()
        .push(
            "services.payment_centres",
            json!({"id": "pay-hk", "secret_env": "LIVESTEER_PAY_HK_SECRET"}),
        )
        .write(&file);
    let err = app.state.reload(true).unwrap_err().to_string();
    assert!(err.contains("LIVESTEER_PAY_HK_SECRET is not set"), "{err}");

    shipped
        .push(
            "services.payment_centres",
            json!({"id": "pay-hk", "secret_env": "LIVESTEER_PAY_HK_SECRET",
                   "demo_secret": "hk-demo-secret-0123"}),
        )
        .write(&file);
    app.state.reload(true).unwrap();
    let (s, v) = signed_post(
        &app,
        "/v1/payments/sync",
        &hk,
        "hk-demo-secret-0123",
        now_secs(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(strs(&v["stored"]), ["h1"]);
    app.stop().await;
}

fn body_for(centre: &str) -> String {
    let mut r = record("h1", 1, "HKD");
    r["centre"] = json!(centre);
    json!({ "centre": centre, "records": [r] }).to_string()
}
