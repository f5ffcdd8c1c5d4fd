//! Scheduled jobs: cluster jobs run on one replica at a time, replica jobs everywhere.

use std::sync::Arc;

use livesteer::jobs::{self, Context, Job, Scope};
use livesteer::store::testing::TestDb;

use crate::backends::on_both_backends;
use crate::support::TestApp;

fn cluster_job() -> Job {
    Job {
        name: "test_cluster_job",
        scope: Scope::Cluster,
        run: |s: Arc<Context>| Box::pin(async move { Ok(format!("ran on {}", s.instance)) }),
    }
}

async fn one_replica_runs_cluster_jobs(db: TestDb) {
    let a = TestApp::builder(&db).start().await;
    let b = TestApp::builder(&db).start().await;
    assert_ne!(a.state.instance, b.state.instance);
    let first = jobs::run_job(a.state.jobs(), cluster_job()).await.unwrap();
    assert_eq!(first, Some(format!("ran on {}", a.state.instance)));
    // B is refused while A's lease lasts; A renews and runs again.
    assert_eq!(
        jobs::run_job(b.state.jobs(), cluster_job()).await.unwrap(),
        None
    );
    assert!(
        jobs::run_job(a.state.jobs(), cluster_job())
            .await
            .unwrap()
            .is_some()
    );
    a.stop().await;
    b.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async one_replica_runs_cluster_jobs(TestDb) =>
        sqlite_one_replica_runs_cluster_jobs, postgres_one_replica_runs_cluster_jobs
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_streams_runs_by_name() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).start().await;
    let summary = jobs::run_once(app.state.jobs(), "sweep_streams")
        .await
        .unwrap();
    assert_eq!(summary, "dropped 0 ended stream(s)");
    assert!(jobs::run_once(app.state.jobs(), "nope").await.is_err());
    app.stop().await;
}

/// The streams `app` probed in one run of its probes.
async fn probed_by(app: &TestApp) -> std::collections::BTreeSet<String> {
    livesteer::probes::run_once(&app.state.probing())
        .await
        .into_iter()
        .map(|r| r.stream_id)
        .collect()
}

/// Waits until every replica in `apps` counts `n` live replicas; returns how long it took.
async fn live_set_of(
    apps: &[&TestApp],
    n: usize,
    within: std::time::Duration,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !apps.iter().all(|a| a.state.cluster.live().len() == n) {
        assert!(
            started.elapsed() < within,
            "live sets never reached {n}: {:?}",
            apps.iter()
                .map(|a| a.state.cluster.live())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Three replicas on one PostgreSQL database register, and each live stream is probed by
/// exactly one of them; one dies (no goodbye: its heartbeat stops), and within its TTL the two
/// left divide every stream between them, its share included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_probes_are_divided_among_live_replicas() {
    use crate::support::{Reply, TestOrigin};
    use std::collections::BTreeSet;
    use std::time::Duration;
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let origin = TestOrigin::start(Reply::status(404));
    let start = || {
        TestApp::builder(&db)
            .origin(&origin)
            .policy(|p| p.set("probes.kinds", ["hls"]))
            .start()
    };
    let a = start().await;
    let b = start().await;
    let c = start().await;
    live_set_of(&[&a, &b, &c], 3, Duration::from_secs(3)).await;

    let mut all = BTreeSet::new();
    for i in 0..30 {
        let created = a
            .create_stream(&format!("anchor-probe-share-{i}"), "tw")
            .await;
        all.insert(created["stream_id"].as_str().unwrap().to_string());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for app in [&b, &c] {
        while !all.iter().all(|id| app.state.streams.get(id).is_some()) {
            assert!(std::time::Instant::now() < deadline, "streams not followed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let shares = [
        probed_by(&a).await,
        probed_by(&b).await,
        probed_by(&c).await,
    ];
    for (i, share) in shares.iter().enumerate() {
        assert!(!share.is_empty(), "replica {i} probed nothing: {shares:?}");
        for other in &shares[i + 1..] {
            assert!(
                share.is_disjoint(other),
                "a stream probed twice: {shares:?}"
            );
        }
    }
    let union: BTreeSet<String> = shares.iter().flatten().cloned().collect();
    assert_eq!(union, all, "every stream probed once");

    // C dies without leaving the registry.
    c.stop().await;
    let took = live_set_of(&[&a, &b], 2, Duration::from_secs(8)).await;
    let ttl = Duration::from_millis(livesteer::cluster::REPLICA_TTL_MS as u64);
    assert!(
        took <= ttl + livesteer::cluster::HEARTBEAT_EVERY * 2,
        "C's share taken over after {took:?}, its TTL is {ttl:?}"
    );
    let (sa, sb) = (probed_by(&a).await, probed_by(&b).await);
    assert!(sa.is_disjoint(&sb), "{sa:?} {sb:?}");
    assert_eq!(sa.union(&sb).cloned().collect::<BTreeSet<_>>(), all);
    assert!(
        sa.is_superset(&shares[0]) && sb.is_superset(&shares[1]),
        "only C's streams moved"
    );
    b.stop().await;
    a.stop().await;
}

/// Saving score windows is every replica's job; forgetting expired ones (and long-dead
/// replicas' registry rows) runs under the `tidy` lease, on one replica at a time.
async fn one_replica_tidies(db: TestDb) {
    let a = TestApp::builder(&db).start().await;
    let b = TestApp::builder(&db).start().await;
    jobs::run_once(a.state.jobs(), "persist_scores")
        .await
        .unwrap();
    jobs::run_once(b.state.jobs(), "persist_scores")
        .await
        .unwrap();
    let (holder, _) = db.lease_holder(jobs::TIDY_LEASE).unwrap().unwrap();
    assert_eq!(holder, a.state.instance);
    a.stop().await;
    b.stop().await;
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async one_replica_tidies(TestDb) => sqlite_one_replica_tidies, postgres_one_replica_tidies
);
