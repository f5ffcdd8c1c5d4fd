//! Room states (`rooms`): written behind the request by `rooms::RoomWriter`, read at start.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::Serialize;

use super::schema::rooms;
use super::{Db, DbConn, StoreError};

/// Rows per multi-row `INSERT` on PostgreSQL (10 binds each).
const SAVE_CHUNK: usize = 500;

/// A row of `rooms`: one anchor's room state.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = rooms)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct RoomRow {
    /// The anchor.
    pub anchor_id: String,
    /// `offline`, `starting`, `live` or `stalled`.
    pub state: String,
    /// When the room entered its state, unix milliseconds.
    pub since_ms: i64,
    /// Region of the anchor's stream (empty when unknown).
    pub region: String,
    /// The stream last seen for the anchor.
    pub stream_id: Option<String>,
    /// JSON array of the provider ids carrying the stream.
    pub providers: String,
    /// 1 when the chat room was connected.
    pub chat_connected: i32,
    /// Health figure, 0 to 100.
    pub health_pct: i32,
    /// Last change, unix milliseconds; a save older than the stored row is ignored.
    pub updated_ms: i64,
    /// The whole record as JSON (`rooms::Room`), what other replicas merge; empty in rows
    /// written before cluster mode.
    pub record: String,
}

impl RoomRow {
    /// The provider ids; an unreadable column gives an empty list.
    pub fn provider_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.providers).unwrap_or_else(|error| {
            tracing::warn!(%error, value = %self.providers, "unreadable providers in a room row");
            Vec::new()
        })
    }
}

impl Db {
    /// Upserts a batch of room rows in one transaction. A stored row with a greater
    /// `updated_ms` is kept (replays and stale snapshots change nothing); a batch naming an
    /// anchor twice keeps the newer row. Returns the rows inserted or updated.
    pub fn save_rooms(&self, rows: &[RoomRow]) -> Result<usize, StoreError> {
        const OP: &str = "save rooms";
        if rows.is_empty() {
            return Ok(0);
        }
        let mut newest: HashMap<&str, &RoomRow> = HashMap::with_capacity(rows.len());
        for row in rows {
            match newest.get(row.anchor_id.as_str()) {
                Some(prev) if prev.updated_ms > row.updated_ms => {}
                _ => {
                    newest.insert(&row.anchor_id, row);
                }
            }
        }
        let mut rows: Vec<RoomRow> = newest.into_values().cloned().collect();
        rows.sort_by(|a, b| a.anchor_id.cmp(&b.anchor_id));

        macro_rules! upsert {
            ($c:expr, $values:expr) => {{
                let upsert = diesel::insert_into(rooms::table)
                    .values($values)
                    .on_conflict(rooms::anchor_id)
                    .do_update()
                    .set((
                        rooms::state.eq(excluded(rooms::state)),
                        rooms::since_ms.eq(excluded(rooms::since_ms)),
                        rooms::region.eq(excluded(rooms::region)),
                        rooms::stream_id.eq(excluded(rooms::stream_id)),
                        rooms::providers.eq(excluded(rooms::providers)),
                        rooms::chat_connected.eq(excluded(rooms::chat_connected)),
                        rooms::health_pct.eq(excluded(rooms::health_pct)),
                        rooms::updated_ms.eq(excluded(rooms::updated_ms)),
                        rooms::record.eq(excluded(rooms::record)),
                    ));
                let not_older = rooms::updated_ms.le(excluded(rooms::updated_ms));
                diesel::query_dsl::methods::FilterDsl::filter(upsert, not_older).execute($c)
            }};
        }

        let mut conn = self.conn(OP)?;
        match &mut *conn {
            DbConn::Postgres(pg) => pg.transaction(|c| {
                let mut written = 0;
                for chunk in rows.chunks(SAVE_CHUNK) {
                    written += upsert!(c, chunk)?;
                }
                // Delivered to other replicas when this transaction commits.
                super::changes::notify_rooms(c, &rows)?;
                Ok(written)
            }),
            DbConn::Sqlite(lite) => lite.immediate_transaction(|c| {
                let mut written = 0;
                for row in &rows {
                    written += upsert!(c, row)?;
                }
                Ok(written)
            }),
        }
        .map_err(StoreError::query(OP))
    }

    /// One anchor's room, if stored.
    pub fn get_room(&self, anchor_id: &str) -> Result<Option<RoomRow>, StoreError> {
        const OP: &str = "get room";
        let mut conn = self.conn(OP)?;
        rooms::table
            .find(anchor_id)
            .select(RoomRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::query(OP))
    }

    /// Up to `limit` rooms changed at or after `since_ms`, oldest change first (the catch-up
    /// of replicas following each other).
    pub fn rooms_updated_since(
        &self,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<RoomRow>, StoreError> {
        const OP: &str = "load changed rooms";
        let mut conn = self.conn(OP)?;
        rooms::table
            .filter(rooms::updated_ms.ge(since_ms))
            .order((rooms::updated_ms.asc(), rooms::anchor_id.asc()))
            .limit(limit.max(0))
            .select(RoomRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }

    /// The rooms of these anchors that are stored.
    pub fn rooms_by_anchor(&self, anchors: &[String]) -> Result<Vec<RoomRow>, StoreError> {
        const OP: &str = "load rooms by anchor";
        let mut conn = self.conn(OP)?;
        let mut out = Vec::with_capacity(anchors.len());
        for chunk in anchors.chunks(500) {
            out.extend(
                rooms::table
                    .filter(rooms::anchor_id.eq_any(chunk))
                    .select(RoomRow::as_select())
                    .load(&mut *conn)
                    .map_err(StoreError::query(OP))?,
            );
        }
        Ok(out)
    }

    /// Up to `limit` rooms in any state but `offline` (what is reloaded at start), by anchor.
    pub fn rooms_not_offline(&self, limit: i64) -> Result<Vec<RoomRow>, StoreError> {
        const OP: &str = "list rooms not offline";
        let mut conn = self.conn(OP)?;
        rooms::table
            .filter(rooms::state.ne("offline"))
            .order(rooms::anchor_id.asc())
            .limit(limit.max(0))
            .select(RoomRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }
}
