//! Changes other replicas made, on PostgreSQL: `LISTEN`/`NOTIFY` for streams, and the reads a
//! replica catches up with.
//!
//! [`Db::save_streams`] notifies [`STREAMS_CHANNEL`] in the same transaction with what it
//! wrote (`id@updated_ms`, comma-separated, in chunks under PostgreSQL's 8000-byte payload
//! limit), so the
//! notification is delivered exactly when the rows are committed. A [`StreamListener`] holds its
//! own connection (not a pooled one: `LISTEN` belongs to a session) and reads the
//! notifications without blocking. Notifications are not stored: a replica that was
//! disconnected catches up with [`Db::streams_updated_since`].

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::streams;
use super::target::Target;
use super::{Db, StoreError, StreamRow};

/// The channel stream changes are notified on.
pub const STREAMS_CHANNEL: &str = "livesteer_streams";

/// Changes per notification: `id@updated_ms` is under 50 bytes, so 150 stay under 8000.
const CHANGES_PER_NOTIFY: usize = 150;

/// Notifies the streams written in the current transaction, as `id@updated_ms` pairs.
pub(super) fn notify_streams(c: &mut PgConnection, rows: &[StreamRow]) -> QueryResult<()> {
    for chunk in rows.chunks(CHANGES_PER_NOTIFY) {
        let changes: Vec<String> = chunk
            .iter()
            .map(|r| format!("{}@{}", r.id, r.updated_ms))
            .collect();
        diesel::sql_query(format!("SELECT pg_notify('{STREAMS_CHANNEL}', $1)"))
            .bind::<Text, _>(changes.join(","))
            .execute(c)?;
    }
    Ok(())
}

/// A connection listening on [`STREAMS_CHANNEL`].
pub struct StreamListener {
    conn: PgConnection,
}

impl std::fmt::Debug for StreamListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamListener").finish_non_exhaustive()
    }
}

impl StreamListener {
    /// The changes notified since the last call, as (stream id, `updated_ms`), without
    /// waiting (empty when none). An error means the connection is lost: open a new listener
    /// and catch up.
    pub fn changes(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        const OP: &str = "read stream notifications";
        let mut out = Vec::new();
        for n in self.conn.notifications_iter() {
            let n = n.map_err(StoreError::query(OP))?;
            for change in n.payload.split(',') {
                if let Some((id, ms)) = change.split_once('@')
                    && let Ok(ms) = ms.parse()
                {
                    out.push((id.to_string(), ms));
                }
            }
        }
        Ok(out)
    }
}

impl Db {
    /// A new connection listening for stream changes; `None` on SQLite (one node, nothing to
    /// hear).
    pub fn listen_streams(&self) -> Result<Option<StreamListener>, StoreError> {
        const OP: &str = "listen for stream changes";
        let Target::Postgres { url } = &*self.target else {
            return Ok(None);
        };
        let mut conn = PgConnection::establish(url).map_err(|cause| StoreError::Connect {
            backend: self.backend,
            url: self.location.to_string(),
            cause,
        })?;
        diesel::sql_query(format!("LISTEN {STREAMS_CHANNEL}"))
            .execute(&mut conn)
            .map_err(StoreError::query(OP))?;
        Ok(Some(StreamListener { conn }))
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
