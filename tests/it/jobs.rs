//! Scheduled jobs: cluster jobs run on one replica at a time, replica jobs everywhere.

use std::sync::Arc;

use livesteer::jobs::{self, Job, Scope};
use livesteer::state::AppState;
use livesteer::store::testing::TestDb;

use crate::support::TestApp;

fn cluster_job() -> Job {
    Job {
        name: "test_cluster_job",
        scope: Scope::Cluster,
        run: |s: Arc<AppState>| Box::pin(async move { Ok(format!("ran on {}", s.instance)) }),
    }
}

async fn one_replica_runs_cluster_jobs(db: TestDb) {
    let a = TestApp::builder(&db).start().await;
    let b = TestApp::builder(&db).start().await;
    assert_ne!(a.state.instance, b.state.instance);
    let first = jobs::run_job(a.state.clone(), cluster_job()).await.unwrap();
    assert_eq!(first, Some(format!("ran on {}", a.state.instance)));
    // B is refused while A's lease lasts; A renews and runs again.
    assert_eq!(
        jobs::run_job(b.state.clone(), cluster_job()).await.unwrap(),
        None
    );
    assert!(
        jobs::run_job(a.state.clone(), cluster_job())
            .await
            .unwrap()
            .is_some()
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_replica_runs_cluster_jobs() {
    one_replica_runs_cluster_jobs(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_replica_runs_cluster_jobs() {
    if let Some(db) = TestDb::postgres() {
        one_replica_runs_cluster_jobs(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_streams_runs_by_name() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db).start().await;
    let summary = jobs::run_once(app.state.clone(), "sweep_streams")
        .await
        .unwrap();
    assert_eq!(summary, "dropped 0 ended stream(s)");
    assert!(jobs::run_once(app.state.clone(), "nope").await.is_err());
    app.stop().await;
}
