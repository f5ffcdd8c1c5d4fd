//! Following the other replicas sharing a PostgreSQL database: stream creates and ends, room
//! states, run-time drains and policy loads; and this replica's heartbeat in the registry
//! (`cluster`).
//!
//! Every replica listens on the change channels (`store::changes`); a committed change
//! notifies them in its own transaction, and a replica that does not hold that change reads
//! the rows and merges them: streams into its `StreamTable` (a live stream it had not seen,
//! the end of one it holds), rooms into `Rooms` (`Rooms::merge`: a newer record replaces the
//! room, keeping what this replica observed later), drains into the engine, and a policy
//! version other than its own makes it reload its files. So a stream created on one replica
//! plays on every replica, an ended one answers 410, a room that went live is live, a drain
//! applies and a policy reload is in force everywhere within a poll interval ([`POLL`]) of
//! the commit (room states are written behind, so add the writer's flush interval). Notifications
//! are not stored, so a replica catches up when it (re)connects and every [`CATCH_UP_EVERY`]:
//! streams and rooms by `updated_ms` from [`OVERLAP_MS`] before the newest change it saw
//! (replicas' clocks differ a little), every drain, and the latest policy version.
//!
//! The same thread renews this replica's heartbeat and reads the live set every
//! `cluster::HEARTBEAT_EVERY`.
//!
//! The listener runs on a thread of its own: it never touches the request path, and a
//! database outage only delays what it merges. SQLite (one node) needs none of this.
//!
//! A request for a stream this replica does not hold (its notification not merged yet, or
//! lost) reads the row once ([`StreamReads`]): concurrent requests for one id share the read,
//! and "not in the database" is remembered for [`ABSENT_FOR`], so unknown ids cost the database
//! at most one read per id and interval.
//!
//! **Architecture invariant:** memory only ever takes a newer change (`StreamTable::merge`,
//! `StreamTable::adopt`, `Rooms::merge`).

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::state::AppState;
use crate::store::{Backend, Change, Listener, RoomRow, StoreError, StreamRow};

/// How often notifications are read (without a round trip to the server).
pub const POLL: Duration = Duration::from_millis(50);
/// How often the catch-up read runs besides (re)connects.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(5);
/// How far before the newest change seen the catch-up reads.
pub const OVERLAP_MS: i64 = 5_000;
/// Most rows one catch-up reads.
const CATCH_UP_LIMIT: i64 = 50_000;
/// Wait before reconnecting after the listener's connection failed.
const RECONNECT: Duration = Duration::from_secs(1);
/// How long a stream found in no row stays "not found" without another read.
pub const ABSENT_FOR: Duration = Duration::from_secs(1);
/// Most ids remembered as read.
const READS_HELD: u64 = 100_000;

/// Streams read on demand: a single-flight read per id, its outcome held for [`ABSENT_FOR`]
/// (a found stream is in the `StreamTable` from then on; a missing one answers "not found"
/// without a read).
#[derive(Debug)]
pub struct StreamReads {
    /// id → whether its row existed.
    read: moka::future::Cache<String, bool>,
}

impl Default for StreamReads {
    fn default() -> Self {
        Self {
            read: moka::future::Cache::builder()
                .max_capacity(READS_HELD)
                .time_to_live(ABSENT_FOR)
                .build(),
        }
    }
}

impl StreamReads {
    /// Makes sure memory holds stream `id` (which it did not, a moment ago) if the database
    /// does, on PostgreSQL (where other replicas create streams); a no-op on SQLite. A failed
    /// read is not remembered: the request answers from memory, as during an outage.
    pub async fn hold(&self, state: &Arc<AppState>, id: &str) {
        if state.db.backend() != Backend::Postgres {
            return;
        }
        let state = state.clone();
        let owned = id.to_string();
        let read = self
            .read
            .try_get_with(id.to_string(), async move {
                let db = state.db.clone();
                let key = owned.clone();
                let row = tokio::task::spawn_blocking(move || db.get_stream(&key))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                Ok::<bool, String>(match row {
                    Some(row) => state.streams.adopt(&row).is_some(),
                    None => false,
                })
            })
            .await;
        if let Err(e) = read {
            tracing::debug!(stream = %id, error = %e, "cannot read a stream this replica does not hold");
        }
    }
}

/// Starts following other replicas' changes and heartbeating in the registry, on
/// PostgreSQL; stops when `state` is dropped. Call from within the runtime (a policy reload
/// started by another replica's notification persists its version on it).
pub fn follow(state: &Arc<AppState>) {
    if state.db.backend() != Backend::Postgres {
        return;
    }
    let weak = Arc::downgrade(state);
    let since = state.clock.now_ms();
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("livesteer-replicas".into())
        .spawn(move || {
            let _in_runtime = runtime.enter();
            run(weak, since)
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start following other replicas");
    }
}

/// What the follower remembers between steps.
struct Follower {
    listener: Option<Listener>,
    last_catch_up: Option<Instant>,
    last_heartbeat: Option<Instant>,
    started_ms: i64,
    newest_stream_ms: i64,
    newest_room_ms: i64,
}

fn run(state: Weak<AppState>, started_ms: i64) {
    let mut f = Follower {
        listener: None,
        last_catch_up: None,
        last_heartbeat: None,
        started_ms,
        newest_stream_ms: started_ms,
        newest_room_ms: started_ms,
    };
    let mut failing = false;
    loop {
        std::thread::sleep(if failing { RECONNECT } else { POLL });
        let Some(state) = state.upgrade() else { return };
        match step(&state, &mut f) {
            Ok(()) => {
                if failing {
                    tracing::info!("following other replicas again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot follow other replicas; retrying");
                }
                failing = true;
                f.listener = None;
                f.last_catch_up = None;
            }
        }
    }
}

fn step(state: &AppState, f: &mut Follower) -> Result<(), StoreError> {
    if !state.cluster.has_left()
        && f.last_heartbeat
            .is_none_or(|t| t.elapsed() >= crate::cluster::HEARTBEAT_EVERY)
    {
        let now = state.clock.now_ms();
        let live = state.db.replica_heartbeat(
            state.cluster.me(),
            f.started_ms,
            now,
            now - crate::cluster::REPLICA_TTL_MS,
        )?;
        state.cluster.set_live(live);
        f.last_heartbeat = Some(Instant::now());
    }
    if f.listener.is_none() {
        f.listener = state.db.listen()?;
    }
    let Some(l) = f.listener.as_mut() else {
        return Ok(());
    };
    let mut ids: Vec<String> = Vec::new();
    let mut anchors: Vec<String> = Vec::new();
    let (mut seen, mut seen_rooms) = (HashSet::<String>::new(), HashSet::<String>::new());
    let (mut drains, mut policy) = (false, None);
    for change in l.changes()? {
        match change {
            Change::Stream(id, updated_ms) => {
                if !state.streams.holds(&id, updated_ms) && seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
            Change::Room(anchor, updated_ms) => {
                if !state.rooms.holds(&anchor, updated_ms) && seen_rooms.insert(anchor.clone()) {
                    anchors.push(anchor);
                }
            }
            Change::Drains => drains = true,
            Change::Policy(version) => policy = Some(version),
        }
    }
    if !ids.is_empty() {
        let rows = state.db.streams_by_ids(&ids)?;
        merge_streams(state, &rows, &mut f.newest_stream_ms);
    }
    if !anchors.is_empty() {
        let rows = state.db.rooms_by_anchor(&anchors)?;
        merge_rooms(state, &rows, &mut f.newest_room_ms);
    }
    if drains {
        follow_drains(state)?;
    }
    if let Some(version) = policy {
        follow_policy(state, &version);
    }
    if f.last_catch_up
        .is_none_or(|t| t.elapsed() >= CATCH_UP_EVERY)
    {
        // After the listener is set up, so nothing committed meanwhile is missed.
        let rows = state.db.streams_updated_since(
            f.newest_stream_ms.saturating_sub(OVERLAP_MS),
            CATCH_UP_LIMIT,
        )?;
        merge_streams(state, &rows, &mut f.newest_stream_ms);
        let rows = state
            .db
            .rooms_updated_since(f.newest_room_ms.saturating_sub(OVERLAP_MS), CATCH_UP_LIMIT)?;
        merge_rooms(state, &rows, &mut f.newest_room_ms);
        follow_drains(state)?;
        if let Some(latest) = state.db.latest_policy_version()? {
            follow_policy(state, &latest.version);
        }
        f.last_catch_up = Some(Instant::now());
    }
    Ok(())
}

fn merge_streams(state: &AppState, rows: &[StreamRow], newest_ms: &mut i64) {
    let mut taken = 0;
    for row in rows {
        *newest_ms = (*newest_ms).max(row.updated_ms);
        if state.streams.merge(row) {
            taken += 1;
        }
    }
    if taken > 0 {
        tracing::debug!(streams = taken, "stream changes from other replicas");
    }
}

fn merge_rooms(state: &AppState, rows: &[RoomRow], newest_ms: &mut i64) {
    for row in rows {
        *newest_ms = (*newest_ms).max(row.updated_ms);
    }
    let catalog = state.catalog.load();
    let taken = state
        .rooms
        .merge(rows, &catalog.policy.rooms, state.clock.now_ms());
    if taken > 0 {
        tracing::debug!(rooms = taken, "room changes from other replicas");
    }
}

/// Applies the stored drains that differ from what the engine holds.
fn follow_drains(state: &AppState) -> Result<(), StoreError> {
    let stored = state.db.drains()?;
    let changed: Vec<(String, bool)> = {
        let engine = state.engine.lock().unwrap_or_else(|e| e.into_inner());
        stored
            .into_iter()
            .filter(|(p, d)| engine.drained().contains(p) != *d)
            .collect()
    };
    if !changed.is_empty() {
        tracing::info!(drains = ?changed, "drains from other replicas");
        state.apply_drains(&changed);
    }
    Ok(())
}

/// Another replica loaded `version`: reload this replica's files if they changed.
fn follow_policy(state: &AppState, version: &str) {
    if state.catalog.load().policy.version == version {
        return;
    }
    match state.reload(false) {
        Ok(Some(v)) if v == version => {
            tracing::info!(version = %v, "policy reloaded after another replica")
        }
        Ok(Some(v)) => {
            tracing::warn!(version = %v, other = %version, "policy reloaded after another replica, to a different version: this replica's files differ")
        }
        Ok(None) => {}
        Err(_) => {}
    }
}
