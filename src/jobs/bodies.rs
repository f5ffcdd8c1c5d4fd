//! The jobs' bodies: each reads and changes what the [`Context`] hands it.

use std::sync::Arc;

use super::{Context, TIDY_LEASE, acquire_lease};

/// Drops streams that ended more than an hour ago from memory (they stay in the database).
pub(super) async fn sweep_streams(state: Arc<Context>) -> anyhow::Result<String> {
    let cutoff = state.clock.now_ms() - 3_600_000;
    let dropped = state.streams.sweep_ended(cutoff);
    Ok(format!("dropped {dropped} ended stream(s)"))
}

/// Reloads provider and policy files when they changed on disk.
pub(super) async fn reload_policy(state: Arc<Context>) -> anyhow::Result<String> {
    match state.reload.reload(false) {
        Ok(Some(version)) => Ok(format!("loaded policy {version}")),
        Ok(None) => Ok("unchanged".into()),
        Err(d) => Err(anyhow::anyhow!(
            "files refused, the policy in force stays:\n{d}"
        )),
    }
}

/// How far back saved scoring windows are read, and when they are forgotten: eight of the
/// longer half-life, after which a window holds under 0.4% of what it held.
pub fn scores_horizon_ms(s: &crate::policy::scoring::ScoringSettings) -> i64 {
    (8.0 * s.half_life_ms.max(s.ingest_half_life_ms)) as i64
}

/// Saves this replica's scoring windows and takes in the other replicas' latest ones, so that
/// replicas sharing a database rank with what all of them heard, and a restart forgets nothing.
pub(super) async fn persist_scores(state: Arc<Context>) -> anyhow::Result<String> {
    let now = state.clock.now_ms();
    let rows = state.scorer.own_windows(&state.instance, now)?;
    let horizon = scores_horizon_ms(&state.catalog.load().policy.scoring);
    // Forgetting what every replica saved long ago is work for one replica.
    let tidy = acquire_lease(&state, TIDY_LEASE).await?;
    let db = state.db.clone();
    let me = state.instance.clone();
    let (saved, remote) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let saved = db.save_score_windows(&me, &rows, now)?;
        if tidy {
            db.forget_score_windows(now - horizon)?;
            db.forget_dead_replicas(now - crate::cluster::FORGET_DEAD_AFTER_MS)?;
        }
        Ok((saved, db.load_score_windows(&me, now - horizon)?))
    })
    .await??;
    let loaded = remote.len();
    state.scorer.apply_remote_windows(remote);
    Ok(format!(
        "saved {saved} window(s), took in {loaded} from other replicas"
    ))
}

/// Advances every room's timers.
pub(super) async fn sweep_rooms(state: Arc<Context>) -> anyhow::Result<String> {
    let catalog = state.catalog.load();
    let sum = state
        .rooms
        .sweep(&catalog.policy.rooms, state.clock.now_ms());
    Ok(format!(
        "{} transition(s), {} offline room(s) forgotten",
        sum.transitions, sum.forgotten
    ))
}

/// Health-checks the static service nodes.
pub(super) async fn check_nodes(state: Arc<Context>) -> anyhow::Result<String> {
    let policy = state.catalog.load().policy.clone();
    crate::directory::checks::check_nodes(
        &state.directory,
        &state.db,
        &policy,
        state.clock.as_ref(),
    )
    .await
}

/// Loads the heartbeats other replicas stored.
pub(super) async fn sync_nodes(state: Arc<Context>) -> anyhow::Result<String> {
    crate::directory::checks::sync_nodes(&state.directory, &state.db).await
}

/// Probes this replica's share of the live streams.
pub(super) async fn probe_streams(state: Arc<Context>) -> anyhow::Result<String> {
    crate::probes::probe_streams(&state.probing).await
}
