//! The storage suite: one set of checks, run on SQLite always and on PostgreSQL when a
//! server is reachable (garage style).
//!
//! Each `suite_*` function takes a database and knows nothing of the backend; the
//! `on_both_backends!` lines below (`tests/it/backends.rs`) turn each into `sqlite_*` and
//! `postgres_*` tests, each on a fresh database, so the tests run in parallel. When
//! PostgreSQL is unreachable the `postgres_*` tests print `skipping: …` and pass, except
//! with `CI=true`, where they fail.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use livesteer::store::testing::TestDb;
use livesteer::store::{Backend, Db, StoreError, StreamRow};

use crate::backends::on_both_backends;

const INIT_MIGRATION: &str = "2026-11-25-000001_init";

/// Every migration of the set, oldest first (what a fresh database gets).
fn all_migrations() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names[0], INIT_MIGRATION);
    names
}

on_both_backends!(suite_ping(&Db) => sqlite_ping, postgres_ping);
on_both_backends!(suite_upsert_anchor(&Db) => sqlite_upsert_anchor, postgres_upsert_anchor);
on_both_backends!(suite_save_get_roundtrip(&Db) => sqlite_save_get_roundtrip, postgres_save_get_roundtrip);
on_both_backends!(suite_update_on_conflict(&Db) => sqlite_update_on_conflict, postgres_update_on_conflict);
on_both_backends!(suite_large_batch(&Db) => sqlite_large_batch, postgres_large_batch);
on_both_backends!(suite_end_stream(&Db) => sqlite_end_stream, postgres_end_stream);
on_both_backends!(suite_streams_in_state(&Db) => sqlite_streams_in_state, postgres_streams_in_state);
on_both_backends!(suite_ended_stays_ended(&Db) => sqlite_ended_stays_ended, postgres_ended_stays_ended);
on_both_backends!(suite_policy_version_dedupe(&Db) => sqlite_policy_version_dedupe, postgres_policy_version_dedupe);
on_both_backends!(suite_lease_lifecycle(&Db) => sqlite_lease_lifecycle, postgres_lease_lifecycle);
on_both_backends!(suite_lease_contention(&Db) => sqlite_lease_contention, postgres_lease_contention);
on_both_backends!(suite_migrations_idempotent(&Db, unmigrated) => sqlite_migrations_idempotent, postgres_migrations_idempotent);
on_both_backends!(suite_concurrent_migrations(&Db, unmigrated) => sqlite_concurrent_migrations, postgres_concurrent_migrations);
on_both_backends!(suite_restart(TestDb) => sqlite_restart, postgres_restart);

// ---------------------------------------------------------------------------------------
// The suite

fn stream(id: &str, anchor: &str, state: &str, started_ms: i64) -> StreamRow {
    StreamRow {
        id: id.to_string(),
        anchor_id: anchor.to_string(),
        region: "eu-west".to_string(),
        providers: StreamRow::encode_providers(&["aliyun", "tencent"]),
        state: state.to_string(),
        reason: "anchor-first".to_string(),
        started_ms,
        ended_ms: None,
        updated_ms: started_ms,
    }
}

fn suite_ping(db: &Db) {
    db.ping().expect("ping");
    assert!(!db.location().is_empty());
    // Clones share the pool.
    let clone = db.clone();
    clone.ping().expect("ping through a clone");
}

fn suite_migrations_idempotent(db: &Db) {
    assert_eq!(db.run_migrations().expect("first run"), all_migrations());
    assert_eq!(
        db.run_migrations().expect("second run"),
        Vec::<String>::new()
    );
    assert_eq!(
        db.run_migrations().expect("third run"),
        Vec::<String>::new()
    );
    // The tables are there.
    assert_eq!(db.get_stream("nope").expect("query after migrating"), None);
}

fn suite_concurrent_migrations(db: &Db) {
    let runs: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let db = db.clone();
                s.spawn(move || db.run_migrations().expect("run migrations concurrently"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let applied: Vec<String> = runs.iter().flatten().cloned().collect();
    assert_eq!(
        applied,
        all_migrations(),
        "each migration applied exactly once: {runs:?}"
    );
}

fn suite_upsert_anchor(db: &Db) {
    assert_eq!(db.get_anchor("a1").unwrap(), None);

    db.upsert_anchor("a1", Some("eu-west"), 100).unwrap();
    let a = db.get_anchor("a1").unwrap().expect("anchor inserted");
    assert_eq!(
        (a.region.as_deref(), a.created_ms, a.updated_ms),
        (Some("eu-west"), 100, 100)
    );

    // No region: keeps the known one, bumps updated_ms, never created_ms.
    db.upsert_anchor("a1", None, 200).unwrap();
    let a = db.get_anchor("a1").unwrap().unwrap();
    assert_eq!(
        (a.region.as_deref(), a.created_ms, a.updated_ms),
        (Some("eu-west"), 100, 200)
    );

    db.upsert_anchor("a1", Some("ap-east"), 300).unwrap();
    let a = db.get_anchor("a1").unwrap().unwrap();
    assert_eq!(
        (a.region.as_deref(), a.created_ms, a.updated_ms),
        (Some("ap-east"), 100, 300)
    );

    db.upsert_anchor("a2", None, 400).unwrap();
    let a = db.get_anchor("a2").unwrap().unwrap();
    assert_eq!((a.region, a.created_ms, a.updated_ms), (None, 400, 400));
}

fn suite_save_get_roundtrip(db: &Db) {
    assert_eq!(db.save_streams(&[]).unwrap(), 0);

    let s1 = stream("s1", "a1", "live", 1_000);
    let mut s2 = stream("s2", "a1", "live", 1_100);
    s2.providers = StreamRow::encode_providers(&["origin-fra"]);
    let s3 = StreamRow {
        id: "s3-ключ-主播".to_string(),
        anchor_id: "a2".to_string(),
        region: "ap-east".to_string(),
        providers: StreamRow::encode_providers::<&str>(&[]),
        state: "ended".to_string(),
        reason: "it's \"quoted\"; DROP TABLE streams; --".to_string(),
        started_ms: 1_700_000_000_000,
        ended_ms: Some(1_700_000_360_000),
        updated_ms: 1_700_000_360_000,
    };
    let batch = vec![s1.clone(), s2.clone(), s3.clone()];
    assert_eq!(db.save_streams(&batch).unwrap(), 3);

    for want in &batch {
        let got = db.get_stream(&want.id).unwrap().expect("saved stream");
        assert_eq!(&got, want);
    }
    assert_eq!(db.get_stream("missing").unwrap(), None);

    let s1 = db.get_stream("s1").unwrap().unwrap();
    assert_eq!(s1.provider_ids(), vec!["aliyun", "tencent"]);
    assert_eq!(s1.primary_provider().as_deref(), Some("aliyun"));
    assert!(
        db.get_stream(&s3.id)
            .unwrap()
            .unwrap()
            .provider_ids()
            .is_empty()
    );

    // The anchors were created, once each, from the first stream that named them.
    let a1 = db
        .get_anchor("a1")
        .unwrap()
        .expect("anchor a1 created by save_streams");
    assert_eq!(
        (a1.region.as_deref(), a1.created_ms),
        (Some("eu-west"), 1_000)
    );
    let a2 = db
        .get_anchor("a2")
        .unwrap()
        .expect("anchor a2 created by save_streams");
    assert_eq!(a2.region.as_deref(), Some("ap-east"));

    // An existing anchor is left as it is.
    db.upsert_anchor("a3", Some("us-east"), 5).unwrap();
    db.save_streams(&[stream("s4", "a3", "live", 2_000)])
        .unwrap();
    let a3 = db.get_anchor("a3").unwrap().unwrap();
    assert_eq!(
        (a3.region.as_deref(), a3.created_ms, a3.updated_ms),
        (Some("us-east"), 5, 5)
    );
}

fn suite_update_on_conflict(db: &Db) {
    let v1 = stream("s1", "a1", "live", 1_000);
    db.save_streams(std::slice::from_ref(&v1)).unwrap();

    // Every column changes (a live stream moved to other targets, even its region and anchor).
    let v2 = StreamRow {
        id: "s1".to_string(),
        anchor_id: "a9".to_string(),
        region: "sa-east".to_string(),
        providers: StreamRow::encode_providers(&["cloudfront"]),
        state: "live".to_string(),
        reason: "switched: aliyun timeout".to_string(),
        started_ms: 1_001,
        ended_ms: None,
        updated_ms: 2_000,
    };
    assert_eq!(db.save_streams(std::slice::from_ref(&v2)).unwrap(), 1);
    assert_eq!(db.get_stream("s1").unwrap().unwrap(), v2);
    assert!(db.get_anchor("a9").unwrap().is_some(), "new anchor created");

    // Replaying the same batch (write-behind retry) changes nothing.
    db.save_streams(std::slice::from_ref(&v2)).unwrap();
    db.save_streams(std::slice::from_ref(&v2)).unwrap();
    assert_eq!(db.get_stream("s1").unwrap().unwrap(), v2);
    assert_eq!(db.streams_in_state("live", 10).unwrap().len(), 1);

    // An older snapshot does not overwrite a newer row.
    assert_eq!(db.save_streams(&[v1]).unwrap(), 0);
    assert_eq!(db.get_stream("s1").unwrap().unwrap(), v2);

    // NULL is overwritten (ended), and the end is final: a newer live row is refused.
    let v3 = StreamRow {
        state: "ended".to_string(),
        ended_ms: Some(3_000),
        updated_ms: 3_000,
        ..v2.clone()
    };
    assert_eq!(db.save_streams(std::slice::from_ref(&v3)).unwrap(), 1);
    assert_eq!(db.get_stream("s1").unwrap().unwrap(), v3);
    let revived = StreamRow {
        updated_ms: 3_500,
        ..v2.clone()
    };
    assert_eq!(db.save_streams(&[revived]).unwrap(), 0);
    assert_eq!(db.get_stream("s1").unwrap().unwrap(), v3);

    // A mixed batch: one stale row, one new, one update; the stale one is skipped.
    let stale = StreamRow {
        updated_ms: 2_500,
        ..v3.clone()
    };
    let new = stream("s2", "a1", "live", 4_000);
    let mut update = v3.clone();
    update.reason = "later".to_string();
    update.updated_ms = 4_000;
    assert_eq!(db.save_streams(&[stale, new.clone()]).unwrap(), 1);
    assert_eq!(db.save_streams(&[update.clone()]).unwrap(), 1);
    assert_eq!(db.get_stream("s1").unwrap().unwrap(), update);
    assert_eq!(db.get_stream("s2").unwrap().unwrap(), new);
}

fn suite_large_batch(db: &Db) {
    // More rows than one multi-row statement holds.
    let rows: Vec<StreamRow> = (0..1_234)
        .map(|i| {
            stream(
                &format!("s{i:05}"),
                &format!("a{}", i % 97),
                "live",
                10_000 + i,
            )
        })
        .collect();
    assert_eq!(db.save_streams(&rows).unwrap(), rows.len());
    let live = db.streams_in_state("live", 5_000).unwrap();
    assert_eq!(live, rows);
    assert!(db.get_anchor("a96").unwrap().is_some());

    // The same stream twice in one batch (PostgreSQL refuses that in one statement):
    // the newer row wins, whatever the order.
    let mut newer = rows[0].clone();
    newer.state = "ended".to_string();
    newer.updated_ms += 10;
    let mut older = rows[0].clone();
    older.reason = "older".to_string();
    older.updated_ms += 5;
    assert_eq!(
        db.save_streams(&[newer.clone(), rows[1].clone(), older])
            .unwrap(),
        2
    );
    assert_eq!(db.get_stream(&rows[0].id).unwrap().unwrap(), newer);
}

fn suite_end_stream(db: &Db) {
    let s = stream("s1", "a1", "live", 1_000);
    db.save_streams(std::slice::from_ref(&s)).unwrap();

    assert!(db.end_stream("s1", 5_000).unwrap());
    let ended = db.get_stream("s1").unwrap().unwrap();
    assert_eq!(ended.state, "ended");
    assert_eq!(ended.ended_ms, Some(5_000));
    assert_eq!(ended.updated_ms, 5_000);
    assert_eq!(ended.reason, s.reason, "reason kept");
    assert_eq!(ended.provider_ids(), s.provider_ids());

    assert!(!db.end_stream("s1", 6_000).unwrap(), "already ended");
    assert_eq!(db.get_stream("s1").unwrap().unwrap().ended_ms, Some(5_000));
    assert!(!db.end_stream("unknown", 6_000).unwrap());

    // A write-behind snapshot taken before the end does not revive the stream.
    db.save_streams(&[s]).unwrap();
    assert_eq!(db.get_stream("s1").unwrap().unwrap().state, "ended");
}

fn suite_streams_in_state(db: &Db) {
    let rows = vec![
        stream("s-c", "a1", "live", 3_000),
        stream("s-a", "a2", "live", 1_000),
        stream("s-e", "a1", "ended", 500),
        stream("s-b", "a3", "live", 2_000),
        stream("s-b2", "a3", "live", 2_000),
        stream("s-f", "a4", "ended", 600),
    ];
    db.save_streams(&rows).unwrap();

    let ids = |state: &str, limit: i64| -> Vec<String> {
        db.streams_in_state(state, limit)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids("live", 100), ["s-a", "s-b", "s-b2", "s-c"]);
    assert_eq!(ids("live", 2), ["s-a", "s-b"]);
    assert_eq!(ids("ended", 100), ["s-e", "s-f"]);
    assert!(ids("nope", 100).is_empty());
    assert!(ids("live", 0).is_empty());
    assert!(ids("live", -1).is_empty());

    db.end_stream("s-a", 9_000).unwrap();
    assert_eq!(ids("live", 100), ["s-b", "s-b2", "s-c"]);
    assert_eq!(ids("ended", 100), ["s-e", "s-f", "s-a"]);
}

/// A live stream's newer version (its push targets moved) replaces it; an ended stream is
/// never made live again by a newer live version (moved on one replica, ended on another).
fn suite_ended_stays_ended(db: &Db) {
    db.save_streams(&[stream("s-m", "a1", "live", 1_000)])
        .unwrap();
    let mut moved = stream("s-m", "a1", "live", 1_000);
    moved.providers = StreamRow::encode_providers(&["tencent", "akamai"]);
    moved.updated_ms = 2_000;
    db.save_streams(&[moved.clone()]).unwrap();
    let row = db.get_stream("s-m").unwrap().unwrap();
    assert_eq!(
        (row.providers.as_str(), row.updated_ms),
        (moved.providers.as_str(), 2_000)
    );

    let mut ended = moved.clone();
    ended.state = "ended".into();
    ended.ended_ms = Some(3_000);
    ended.updated_ms = 3_000;
    db.save_streams(&[ended]).unwrap();
    let mut again = moved.clone();
    again.providers = StreamRow::encode_providers(&["akamai", "aliyun"]);
    again.updated_ms = 4_000;
    db.save_streams(&[again]).unwrap();
    let row = db.get_stream("s-m").unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.providers.as_str(), row.updated_ms),
        ("ended", moved.providers.as_str(), 3_000)
    );
}

fn suite_policy_version_dedupe(db: &Db) {
    assert_eq!(db.latest_policy_version().unwrap(), None);
    let files = vec!["regions.yaml".to_string(), "scoring.yaml".to_string()];

    assert!(
        db.record_policy_version("sha256:aaa", &files, 1_000)
            .unwrap()
    );
    let first = db.latest_policy_version().unwrap().expect("recorded");
    assert_eq!(first.version, "sha256:aaa");
    assert_eq!(first.file_names(), files);
    assert_eq!(first.loaded_ms, 1_000);

    // Same as the latest: skipped.
    assert!(
        !db.record_policy_version("sha256:aaa", &files, 2_000)
            .unwrap()
    );
    assert_eq!(db.latest_policy_version().unwrap().unwrap(), first);

    assert!(
        db.record_policy_version("sha256:bbb", &files[..1], 3_000)
            .unwrap()
    );
    let second = db.latest_policy_version().unwrap().unwrap();
    assert_eq!(second.version, "sha256:bbb");
    assert_eq!(second.file_names(), vec!["regions.yaml"]);
    assert!(second.id > first.id);

    // Going back to an older version is a new load.
    assert!(db.record_policy_version("sha256:aaa", &[], 4_000).unwrap());
    let third = db.latest_policy_version().unwrap().unwrap();
    assert_eq!(
        (third.version.as_str(), third.loaded_ms),
        ("sha256:aaa", 4_000)
    );
    assert!(third.file_names().is_empty());
    assert!(third.id > second.id);

    // Replicas recording the same reload at once insert it once.
    let inserted: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let db = db.clone();
                let files = files.clone();
                s.spawn(move || {
                    db.record_policy_version("sha256:ccc", &files, 5_000 + i)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(inserted.iter().filter(|x| **x).count(), 1, "{inserted:?}");
    assert_eq!(
        db.latest_policy_version().unwrap().unwrap().version,
        "sha256:ccc"
    );
}

fn suite_lease_lifecycle(db: &Db) {
    assert_eq!(db.lease_holder("sweep").unwrap(), None);

    // Free: taken.
    assert!(db.try_acquire_lease("sweep", "r1", 1_000, 500).unwrap());
    assert_eq!(
        db.lease_holder("sweep").unwrap(),
        Some(("r1".to_string(), 1_500))
    );

    // Held by another: refused, unchanged.
    assert!(!db.try_acquire_lease("sweep", "r2", 1_200, 500).unwrap());
    assert_eq!(
        db.lease_holder("sweep").unwrap(),
        Some(("r1".to_string(), 1_500))
    );

    // Held by the same holder: renewed.
    assert!(db.try_acquire_lease("sweep", "r1", 1_300, 500).unwrap());
    assert_eq!(
        db.lease_holder("sweep").unwrap(),
        Some(("r1".to_string(), 1_800))
    );

    // Not yet expired, then expired (expires_ms <= now): taken over.
    assert!(!db.try_acquire_lease("sweep", "r2", 1_799, 500).unwrap());
    assert!(db.try_acquire_lease("sweep", "r2", 1_800, 500).unwrap());
    assert_eq!(
        db.lease_holder("sweep").unwrap(),
        Some(("r2".to_string(), 2_300))
    );
    assert!(!db.try_acquire_lease("sweep", "r1", 1_900, 500).unwrap());

    // Leases are independent.
    assert!(db.try_acquire_lease("probe", "r1", 1_900, 100).unwrap());

    // Release only by the holder.
    assert!(!db.release_lease("sweep", "r1").unwrap());
    assert!(db.release_lease("sweep", "r2").unwrap());
    assert!(!db.release_lease("sweep", "r2").unwrap());
    assert!(db.try_acquire_lease("sweep", "r1", 2_000, 500).unwrap());
    assert_eq!(
        db.lease_holder("probe").unwrap(),
        Some(("r1".to_string(), 2_000))
    );
}

fn suite_lease_contention(db: &Db) {
    for round in 0..5 {
        let name = format!("job-{round}");
        let winners: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|replica| {
                    let db = db.clone();
                    let name = name.clone();
                    s.spawn(move || {
                        let holder = format!("replica-{replica}");
                        db.try_acquire_lease(&name, &holder, 10_000, 30_000)
                            .unwrap()
                            .then_some(holder)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(
            winners.len(),
            1,
            "exactly one replica wins {name}: {winners:?}"
        );
        let holder = db.lease_holder(&name).unwrap().unwrap().0;
        assert_eq!(holder, winners[0]);
    }
}

fn suite_restart(mut test_db: TestDb) {
    let rows = vec![
        stream("s1", "a1", "live", 1_000),
        stream("s2", "a2", "live", 2_000),
    ];
    test_db.save_streams(&rows).unwrap();
    test_db.end_stream("s2", 3_000).unwrap();
    test_db
        .record_policy_version("v1", &["p.yaml".to_string()], 1_000)
        .unwrap();
    assert!(
        test_db
            .try_acquire_lease("sweep", "r1", 1_000, 60_000)
            .unwrap()
    );
    let before = test_db.get_stream("s2").unwrap();

    let db = test_db.reopen();
    assert_eq!(
        db.run_migrations().unwrap(),
        Vec::<String>::new(),
        "nothing pending after restart"
    );
    assert_eq!(
        db.streams_in_state("live", 10).unwrap(),
        vec![rows[0].clone()]
    );
    assert_eq!(db.get_stream("s2").unwrap(), before);
    assert_eq!(db.latest_policy_version().unwrap().unwrap().version, "v1");
    assert!(
        !db.record_policy_version("v1", &["p.yaml".to_string()], 9_000)
            .unwrap()
    );
    assert!(
        !db.try_acquire_lease("sweep", "r2", 2_000, 60_000).unwrap(),
        "lease survives"
    );
    assert!(db.try_acquire_lease("sweep", "r1", 2_000, 60_000).unwrap());
}

// ---------------------------------------------------------------------------------------
// Connecting

/// A local port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn connect_rejects_an_unknown_scheme() {
    for (url, scheme) in [
        ("mysql://root@localhost/livesteer", "mysql"),
        ("redis://x", "redis"),
    ] {
        let error = Db::connect(url, 1).expect_err(url);
        assert!(
            matches!(error, StoreError::UnsupportedScheme { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(&format!("`{scheme}`")), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
    let error = Db::connect("data/livesteer", 1).expect_err("no scheme, no .db");
    assert!(error.to_string().contains("(none)"), "{error}");
}

#[test]
fn connect_to_postgres_on_a_closed_port_reports_the_cause() {
    let url = format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/livesteer",
        closed_port()
    );
    let started = Instant::now();
    let error = Db::connect(&url, 2).expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails at once, not after a pool time-out"
    );
    assert!(
        matches!(
            error,
            StoreError::Connect {
                backend: Backend::Postgres,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    assert!(
        message.starts_with("connect to PostgreSQL at postgres://postgres:***@127.0.0.1:"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "password shown: {message}");
    assert!(!message.contains('\n'), "one line: {message}");
}

#[test]
fn connect_to_sqlite_creates_the_parent_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/livesteer.db");
    let db = Db::connect(&format!("sqlite://{}", path.display()), 2).unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    db.run_migrations().unwrap();
    db.ping().unwrap();
    assert!(path.is_file(), "{} created", path.display());
}

#[test]
fn connect_to_sqlite_accepts_every_url_form() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().display().to_string();
    let forms = [
        (format!("sqlite://{base}/a.db"), "a.db"),
        (format!("sqlite:{base}/b.db"), "b.db"),
        (format!("file:{base}/c.db?mode=rwc"), "c.db"),
        (format!("{base}/d.db"), "d.db"),
        (format!("sqlite://{base}/e.sqlite3?mode=rwc"), "e.sqlite3"),
    ];
    for (url, file) in forms {
        let db = Db::connect(&url, 1).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(db.backend(), Backend::Sqlite, "{url}");
        assert_eq!(db.run_migrations().unwrap(), all_migrations(), "{url}");
        db.save_streams(&[stream("s", "a", "live", 1)]).unwrap();
        assert!(dir.path().join(file).is_file(), "{url} → {file}");
    }
}

#[test]
fn connect_refuses_in_memory_sqlite() {
    let error = Db::connect("sqlite::memory:", 1).expect_err("in-memory");
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
    assert!(error.to_string().contains("in-memory"), "{error}");
}

#[test]
fn sqlite_pool_of_zero_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("{}/z.db", dir.path().display()), 0).unwrap();
    db.run_migrations().unwrap();
    db.ping().unwrap();
}
