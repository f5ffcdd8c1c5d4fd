//! Following the other replicas sharing a PostgreSQL database: stream creates and ends.
//!
//! Every replica listens on `store::STREAMS_CHANNEL`; a committed create or end notifies it
//! (`id@updated_ms`), and a replica that does not hold that change reads the rows and merges
//! them into its `StreamTable` (a live stream it had not seen, the end of one it holds), so a
//! stream created on one replica plays on every replica, and an ended one answers 410, within a
//! poll interval ([`POLL`]) of its commit. Notifications are not stored, so a replica catches up
//! by `updated_ms` when it (re)connects and every [`CATCH_UP_EVERY`], reading
//! [`OVERLAP_MS`] before the newest change it saw (replicas' clocks differ a little).
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
//! `StreamTable::adopt`).

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::state::AppState;
use crate::store::{Backend, StoreError, StreamListener, StreamRow};

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

/// Starts following other replicas' stream changes, on PostgreSQL; stops when `state` is
/// dropped.
pub fn follow_streams(state: &Arc<AppState>) {
    if state.db.backend() != Backend::Postgres {
        return;
    }
    let weak = Arc::downgrade(state);
    let since = state.clock.now_ms();
    let spawned = std::thread::Builder::new()
        .name("livesteer-replicas".into())
        .spawn(move || run(weak, since));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start following other replicas");
    }
}

fn run(state: Weak<AppState>, mut newest_ms: i64) {
    let mut listener: Option<StreamListener> = None;
    let mut last_catch_up: Option<Instant> = None;
    let mut failing = false;
    loop {
        std::thread::sleep(if failing { RECONNECT } else { POLL });
        let Some(state) = state.upgrade() else { return };
        let result = step(&state, &mut listener, &mut last_catch_up, &mut newest_ms);
        match result {
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
                listener = None;
                last_catch_up = None;
            }
        }
    }
}

fn step(
    state: &AppState,
    listener: &mut Option<StreamListener>,
    last_catch_up: &mut Option<Instant>,
    newest_ms: &mut i64,
) -> Result<(), StoreError> {
    if listener.is_none() {
        *listener = state.db.listen_streams()?;
    }
    let Some(l) = listener.as_mut() else {
        return Ok(());
    };
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for (id, updated_ms) in l.changes()? {
        if !state.streams.holds(&id, updated_ms) && seen.insert(id.clone()) {
            ids.push(id);
        }
    }
    if !ids.is_empty() {
        let rows = state.db.streams_by_ids(&ids)?;
        merge(state, &rows, newest_ms);
    }
    if last_catch_up.is_none_or(|t| t.elapsed() >= CATCH_UP_EVERY) {
        // After the listener is set up, so nothing committed meanwhile is missed.
        let rows = state
            .db
            .streams_updated_since(newest_ms.saturating_sub(OVERLAP_MS), CATCH_UP_LIMIT)?;
        merge(state, &rows, newest_ms);
        *last_catch_up = Some(Instant::now());
    }
    Ok(())
}

fn merge(state: &AppState, rows: &[StreamRow], newest_ms: &mut i64) {
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
