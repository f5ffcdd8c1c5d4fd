//! Changes other replicas made, on PostgreSQL: `LISTEN`/`NOTIFY`, and the reads a replica
//! catches up with.
//!
//! Three channels. Streams and rooms are notified in the transaction that wrote them, so a
//! notification is delivered exactly when its rows are committed; drains and policy versions
//! right after their commit, on the same connection:
//! - [`STREAMS_CHANNEL`]: [`Db::save_streams`] sends what it wrote as `id@updated_ms`,
//!   comma-separated, in chunks under PostgreSQL's 8000-byte payload limit;
//! - [`ROOMS_CHANNEL`]: [`Db::save_rooms`] sends `anchor_id@updated_ms` the same way;
//! - [`CONTROL_CHANNEL`]: `drains` when a run-time drain is stored ([`Db::save_drain`]),
//!   `policy:<version>` when a replica loaded a policy version ([`Db::record_policy_version`]).
//!
//! A [`Listener`] holds its own connection (not a pooled one: `LISTEN` belongs to a session)
//! and reads the notifications without blocking. Notifications are not stored: a replica that
//! was disconnected catches up with [`Db::streams_updated_since`], [`Db::rooms_updated_since`],
//! [`Db::drains`] and [`Db::latest_policy_version`].

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::streams;
use super::target::Target;
use super::{Db, RoomRow, StoreError, StreamRow};

/// The channel stream changes are notified on.
pub const STREAMS_CHANNEL: &str = "livesteer_streams";
/// The channel room changes are notified on.
pub const ROOMS_CHANNEL: &str = "livesteer_rooms";
/// The channel drains and policy loads are notified on.
pub const CONTROL_CHANNEL: &str = "livesteer_control";
/// The control payload of a stored drain.
pub(super) const DRAINS: &str = "drains";
/// The prefix of a policy load's control payload.
const POLICY_PREFIX: &str = "policy:";

/// Changes per notification: `id@updated_ms` is under 50 bytes (ids are at most 64 bytes for
/// anchors, so rooms use a smaller chunk), so this many stay under 8000 bytes.
const CHANGES_PER_NOTIFY: usize = 150;
const ROOMS_PER_NOTIFY: usize = 90;

/// One notified change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A stream row written, with its `updated_ms`.
    Stream(String, i64),
    /// A room row written (by anchor), with its `updated_ms`.
    Room(String, i64),
    /// The run-time drains changed.
    Drains,
    /// A replica loaded this policy version.
    Policy(String),
}

fn notify_pairs<'a>(
    c: &mut PgConnection,
    channel: &str,
    pairs: impl Iterator<Item = (&'a str, i64)>,
    per_notify: usize,
) -> QueryResult<()> {
    let pairs: Vec<String> = pairs.map(|(id, ms)| format!("{id}@{ms}")).collect();
    for chunk in pairs.chunks(per_notify) {
        diesel::sql_query(format!("SELECT pg_notify('{channel}', $1)"))
            .bind::<Text, _>(chunk.join(","))
            .execute(c)?;
    }
    Ok(())
}

/// Notifies the streams written in the current transaction, as `id@updated_ms` pairs.
pub(super) fn notify_streams(c: &mut PgConnection, rows: &[StreamRow]) -> QueryResult<()> {
    notify_pairs(
        c,
        STREAMS_CHANNEL,
        rows.iter().map(|r| (r.id.as_str(), r.updated_ms)),
        CHANGES_PER_NOTIFY,
    )
}

/// Notifies the rooms written in the current transaction, as `anchor_id@updated_ms` pairs.
pub(super) fn notify_rooms(c: &mut PgConnection, rows: &[RoomRow]) -> QueryResult<()> {
    notify_pairs(
        c,
        ROOMS_CHANNEL,
        rows.iter().map(|r| (r.anchor_id.as_str(), r.updated_ms)),
        ROOMS_PER_NOTIFY,
    )
}

/// Notifies `payload` on [`CONTROL_CHANNEL`] in the current transaction.
pub(super) fn notify_control(c: &mut PgConnection, payload: &str) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_notify('{CONTROL_CHANNEL}', $1)"))
        .bind::<Text, _>(payload)
        .execute(c)
        .map(drop)
}

/// The control payload of a policy load.
pub(super) fn policy_payload(version: &str) -> String {
    format!("{POLICY_PREFIX}{version}")
}

/// A connection listening on every change channel.
pub struct Listener {
    conn: PgConnection,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

fn pairs(payload: &str) -> impl Iterator<Item = (String, i64)> + '_ {
    payload.split(',').filter_map(|change| {
        let (id, ms) = change.split_once('@')?;
        Some((id.to_string(), ms.parse().ok()?))
    })
}

impl Listener {
    /// The changes notified since the last call, without waiting (empty when none). An error
    /// means the connection is lost: open a new listener and catch up.
    pub fn changes(&mut self) -> Result<Vec<Change>, StoreError> {
        const OP: &str = "read change notifications";
        let mut out = Vec::new();
        for n in self.conn.notifications_iter() {
            let n = n.map_err(StoreError::query(OP))?;
            match n.channel.as_str() {
                STREAMS_CHANNEL => {
                    out.extend(pairs(&n.payload).map(|(id, ms)| Change::Stream(id, ms)))
                }
                ROOMS_CHANNEL => out.extend(pairs(&n.payload).map(|(a, ms)| Change::Room(a, ms))),
                CONTROL_CHANNEL if n.payload == DRAINS => out.push(Change::Drains),
                CONTROL_CHANNEL => {
                    if let Some(v) = n.payload.strip_prefix(POLICY_PREFIX) {
                        out.push(Change::Policy(v.to_string()));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl Db {
    /// A new connection listening for every change; `None` on SQLite (one node, nothing to
    /// hear).
    pub fn listen(&self) -> Result<Option<Listener>, StoreError> {
        const OP: &str = "listen for changes";
        let Target::Postgres { url } = &*self.target else {
            return Ok(None);
        };
        let mut conn = PgConnection::establish(url).map_err(|cause| StoreError::Connect {
            backend: self.backend,
            url: self.location.to_string(),
            cause,
        })?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            &format!("LISTEN {STREAMS_CHANNEL}; LISTEN {ROOMS_CHANNEL}; LISTEN {CONTROL_CHANNEL};"),
        )
        .map_err(StoreError::query(OP))?;
        Ok(Some(Listener { conn }))
    }

    /// The streams with these ids that are stored.
    pub fn streams_by_ids(&self, ids: &[String]) -> Result<Vec<StreamRow>, StoreError> {
        const OP: &str = "load streams by id";
        let mut conn = self.conn(OP)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            out.extend(
                streams::table
                    .filter(streams::id.eq_any(chunk))
                    .select(StreamRow::as_select())
                    .load(&mut *conn)
                    .map_err(StoreError::query(OP))?,
            );
        }
        Ok(out)
    }

    /// Up to `limit` streams changed at or after `since_ms`, oldest change first.
    pub fn streams_updated_since(
        &self,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<StreamRow>, StoreError> {
        const OP: &str = "load changed streams";
        let mut conn = self.conn(OP)?;
        streams::table
            .filter(streams::updated_ms.ge(since_ms))
            .order((streams::updated_ms.asc(), streams::id.asc()))
            .limit(limit.max(0))
            .select(StreamRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }
}
