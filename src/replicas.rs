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

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::catalog::{Reload, SharedCatalog};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::rooms::Rooms;
use crate::scorer::Scorer;
use crate::store::{Backend, Change, Db, Listener, RoomRow, StoreError, StreamRow};
use crate::streams::StreamTable;

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
    pub async fn hold(&self, db: &Db, streams: &Arc<StreamTable>, id: &str) {
        if db.backend() != Backend::Postgres {
            return;
        }
        let (db, streams) = (db.clone(), streams.clone());
        let owned = id.to_string();
        let read = self
            .read
            .try_get_with(id.to_string(), async move {
                let key = owned.clone();
                let row = db
                    .call(move |db| db.get_stream(&key))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<bool, String>(match row {
                    Some(row) => streams.adopt(&row).is_some(),
                    None => false,
                })
            })
            .await;
        if let Err(e) = read {
            tracing::debug!(stream = %id, error = %e, "cannot read a stream this replica does not hold");
        }
    }
}

/// What following other replicas reads and changes: narrow handles on the database, the
/// streams, the rooms, the scorer (drains), the catalog and its reload, the cluster and the
/// clock.
pub struct Following {
    pub db: Db,
    pub streams: Arc<StreamTable>,
    pub rooms: Arc<Rooms>,
    pub scorer: Arc<Scorer>,
    pub catalog: SharedCatalog,
    pub reload: Arc<dyn Reload>,
    pub cluster: Arc<Cluster>,
    pub clock: Arc<dyn Clock>,
}

/// Starts following other replicas' changes and heartbeating in the registry, on
/// PostgreSQL; stops when `state` is dropped. Call from within the runtime (a policy reload
/// started by another replica's notification persists its version on it).
pub fn follow(state: &Arc<Following>) {
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
    /// Notified changes not read yet (a read failed: they are retried at the next poll, and
    /// the listener, which lost nothing, is kept).
    streams: Vec<String>,
    rooms: Vec<String>,
    drains: bool,
    policy: Option<String>,
}

/// Why a step failed.
enum Failed {
    /// The listener's connection: reconnect (after [`RECONNECT`]) and catch up.
    Listener(StoreError),
    /// A read on a pooled connection (the pool busy or the database away): retried at the next
    /// poll, with what was notified kept.
    Read(StoreError),
}

fn run(state: Weak<Following>, started_ms: i64) {
    let mut f = Follower {
        listener: None,
        last_catch_up: None,
        last_heartbeat: None,
        started_ms,
        newest_stream_ms: started_ms,
        newest_room_ms: started_ms,
        streams: Vec::new(),
        rooms: Vec::new(),
        drains: false,
        policy: None,
    };
    let mut failing = false;
    let mut lost = false;
    loop {
        std::thread::sleep(if lost { RECONNECT } else { POLL });
        let Some(state) = state.upgrade() else { return };
        heartbeat(&state, &mut f);
        match step(&state, &mut f) {
            Ok(()) => {
                if failing {
                    tracing::info!("following other replicas again");
                }
                failing = false;
                lost = false;
            }
            Err(failed) => {
                let (e, listener_lost) = match failed {
                    Failed::Listener(e) => (e, true),
                    Failed::Read(e) => (e, false),
                };
                if !failing {
                    tracing::warn!(error = %e, "cannot follow other replicas; retrying");
                }
                failing = true;
                lost = listener_lost;
                if listener_lost {
                    f.listener = None;
                    f.last_catch_up = None;
                }
            }
        }
    }
}

/// Renews this replica's heartbeat and reads the live set, every `cluster::HEARTBEAT_EVERY`;
/// a failure keeps the live set known and is retried at the next poll.
fn heartbeat(state: &Following, f: &mut Follower) {
    if state.cluster.has_left()
        || f.last_heartbeat
            .is_some_and(|t| t.elapsed() < crate::cluster::HEARTBEAT_EVERY)
    {
        return;
    }
    let now = state.clock.now_ms();
    match state.db.replica_heartbeat(
        state.cluster.me(),
        f.started_ms,
        now,
        now - crate::cluster::REPLICA_TTL_MS,
    ) {
        Ok(live) => {
            state.cluster.set_live(live);
            f.last_heartbeat = Some(Instant::now());
        }
        Err(e) => tracing::debug!(error = %e, "replica heartbeat failed; retrying"),
    }
}

fn step(state: &Following, f: &mut Follower) -> Result<(), Failed> {
    if f.listener.is_none() {
        f.listener = state.db.listen().map_err(Failed::Listener)?;
    }
    let Some(l) = f.listener.as_mut() else {
        return Ok(());
    };
    for change in l.changes().map_err(Failed::Listener)? {
        match change {
            Change::Stream(id, updated_ms) => {
                if !state.streams.holds(&id, updated_ms) {
                    f.streams.push(id);
                }
            }
            // Read even when this replica wrote a row with that stamp: two replicas may stamp
            // their rows of one room alike (each one past the last it merged).
            Change::Room(anchor, _) => f.rooms.push(anchor),
            Change::Drains => f.drains = true,
            Change::Policy(version) => f.policy = Some(version),
        }
    }
    if !f.streams.is_empty() {
        let mut ids = std::mem::take(&mut f.streams);
        ids.sort();
        ids.dedup();
        match state.db.streams_by_ids(&ids) {
            Ok(rows) => merge_streams(state, &rows, &mut f.newest_stream_ms),
            Err(e) => {
                f.streams = ids;
                return Err(Failed::Read(e));
            }
        }
    }
    if !f.rooms.is_empty() {
        let mut anchors = std::mem::take(&mut f.rooms);
        anchors.sort();
        anchors.dedup();
        match state.db.rooms_by_anchor(&anchors) {
            Ok(rows) => merge_rooms(state, &rows, &mut f.newest_room_ms),
            Err(e) => {
                f.rooms = anchors;
                return Err(Failed::Read(e));
            }
        }
    }
    if f.drains {
        follow_drains(state).map_err(Failed::Read)?;
        f.drains = false;
    }
    if let Some(version) = f.policy.take() {
        follow_policy(state, &version);
    }
    if f.last_catch_up
        .is_none_or(|t| t.elapsed() >= CATCH_UP_EVERY)
    {
        // After the listener is set up, so nothing committed meanwhile is missed.
        let rows = state
            .db
            .streams_updated_since(
                f.newest_stream_ms.saturating_sub(OVERLAP_MS),
                CATCH_UP_LIMIT,
            )
            .map_err(Failed::Read)?;
        merge_streams(state, &rows, &mut f.newest_stream_ms);
        let rows = state
            .db
            .rooms_updated_since(f.newest_room_ms.saturating_sub(OVERLAP_MS), CATCH_UP_LIMIT)
            .map_err(Failed::Read)?;
        merge_rooms(state, &rows, &mut f.newest_room_ms);
        follow_drains(state).map_err(Failed::Read)?;
        if let Some(latest) = state.db.latest_policy_version().map_err(Failed::Read)? {
            follow_policy(state, &latest.version);
        }
        f.last_catch_up = Some(Instant::now());
    }
    Ok(())
}

fn merge_streams(state: &Following, rows: &[StreamRow], newest_ms: &mut i64) {
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

fn merge_rooms(state: &Following, rows: &[RoomRow], newest_ms: &mut i64) {
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
fn follow_drains(state: &Following) -> Result<(), StoreError> {
    let changed = state.scorer.drains_to_apply(state.db.drains()?);
    if !changed.is_empty() {
        tracing::info!(drains = ?changed, "drains from other replicas");
        state.scorer.apply_drains(&changed);
    }
    Ok(())
}

/// Another replica loaded `version`: reload this replica's files if they changed.
fn follow_policy(state: &Following, version: &str) {
    if state.catalog.load().policy.version == version {
        return;
    }
    match state.reload.reload(false) {
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
