//! Anchors and streams.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::{anchors, streams};
use super::{AnchorRow, Db, DbConn, StoreError, StreamRow, per_backend};

/// Rows per multi-row `INSERT` on PostgreSQL in [`Db::save_streams`] (9 binds each, well
/// under the 65535-bind limit).
const SAVE_CHUNK: usize = 500;

/// The state [`Db::end_stream`] sets.
pub const STATE_ENDED: &str = "ended";

impl Db {
    /// Inserts the anchor or, when it exists, sets `updated_ms` and (when `region` is
    /// given) its region; `created_ms` keeps its first value.
    pub fn upsert_anchor(
        &self,
        id: &str,
        region: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const OP: &str = "upsert anchor";
        let mut conn = self.conn(OP)?;
        let row = AnchorRow {
            id: id.to_string(),
            region: region.map(str::to_string),
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        per_backend!(&mut *conn, |c| {
            let insert = diesel::insert_into(anchors::table)
                .values(&row)
                .on_conflict(anchors::id)
                .do_update();
            match region {
                Some(region) => insert
                    .set((anchors::region.eq(region), anchors::updated_ms.eq(now_ms)))
                    .execute(c),
                None => insert.set(anchors::updated_ms.eq(now_ms)).execute(c),
            }
        })
        .map(drop)
        .map_err(StoreError::query(OP))
    }

    /// The anchor, if known.
    pub fn get_anchor(&self, id: &str) -> Result<Option<AnchorRow>, StoreError> {
        const OP: &str = "get anchor";
        let mut conn = self.conn(OP)?;
        anchors::table
            .find(id)
            .select(AnchorRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::query(OP))
    }

    /// Upserts a batch of streams in one transaction: each row is inserted, or on a
    /// conflicting id every column is overwritten, unless the stored row is newer
    /// (`updated_ms` greater than the row's), so replaying a batch, or saving an older
    /// snapshot after a newer one, changes nothing. Anchors referenced by the rows are
    /// created when missing (region taken from the stream; existing anchors are left
    /// as they are). A batch naming the same id twice keeps the newer row (the later
    /// one on a tie). Returns the number of stream rows inserted or updated.
    ///
    /// Made for the writer task: idempotent, and all or nothing.
    pub fn save_streams(&self, rows: &[StreamRow]) -> Result<usize, StoreError> {
        self.save_streams_with(rows, false)
    }

    /// As [`Db::save_streams`], and durable when it returns: on SQLite the transaction runs
    /// with `synchronous = FULL` (the WAL is synced at commit), so it survives a power loss
    /// as well as a crash; PostgreSQL commits durably by default. For changes a caller is
    /// told are stored (a group commit of stream creates and ends).
    pub fn save_streams_durably(&self, rows: &[StreamRow]) -> Result<usize, StoreError> {
        self.save_streams_with(rows, true)
    }

    fn save_streams_with(&self, rows: &[StreamRow], durable: bool) -> Result<usize, StoreError> {
        const OP: &str = "save streams";
        if rows.is_empty() {
            return Ok(0);
        }
        // PostgreSQL refuses a statement that upserts the same key twice, so keep one row
        // per id: the newest (the later one on a tie), as sequential saves would.
        let rows = newest_per_id(rows);
        let rows: &[StreamRow] = &rows;

        let mut anchors_seen: BTreeMap<&str, AnchorRow> = BTreeMap::new();
        for row in rows {
            anchors_seen
                .entry(&row.anchor_id)
                .or_insert_with(|| AnchorRow {
                    id: row.anchor_id.clone(),
                    region: Some(row.region.clone()),
                    created_ms: row.started_ms,
                    updated_ms: row.updated_ms,
                });
        }
        let new_anchors: Vec<AnchorRow> = anchors_seen.into_values().collect();

        // One statement per chunk on PostgreSQL; one per row on SQLite, whose diesel
        // backend has no multi-row upsert (its prepared statement is cached, so this is
        // cheap inside the transaction).
        macro_rules! upsert {
            ($c:expr, $values:expr) => {{
                let upsert = diesel::insert_into(streams::table)
                    .values($values)
                    .on_conflict(streams::id)
                    .do_update()
                    .set((
                        streams::anchor_id.eq(excluded(streams::anchor_id)),
                        streams::region.eq(excluded(streams::region)),
                        streams::providers.eq(excluded(streams::providers)),
                        streams::state.eq(excluded(streams::state)),
                        streams::reason.eq(excluded(streams::reason)),
                        streams::started_ms.eq(excluded(streams::started_ms)),
                        streams::ended_ms.eq(excluded(streams::ended_ms)),
                        streams::updated_ms.eq(excluded(streams::updated_ms)),
                    ));
                let not_older = streams::updated_ms.le(excluded(streams::updated_ms));
                // An ended stream is never made live again (a stream moved on one replica
                // while another ended it stays ended).
                let stays_ended = streams::state
                    .ne(STATE_ENDED)
                    .or(excluded(streams::state).eq(STATE_ENDED));
                diesel::query_dsl::methods::FilterDsl::filter(upsert, not_older.and(stays_ended))
                    .execute($c)
            }};
        }

        let mut conn = self.conn(OP)?;
        let full_sync = durable && matches!(&*conn, DbConn::Sqlite(_));
        if full_sync {
            (*conn)
                .batch_execute("PRAGMA synchronous = FULL")
                .map_err(StoreError::query(OP))?;
        }
        let result = match &mut *conn {
            DbConn::Postgres(pg) => pg.transaction(|c| {
                for chunk in new_anchors.chunks(SAVE_CHUNK) {
                    diesel::insert_into(anchors::table)
                        .values(chunk)
                        .on_conflict(anchors::id)
                        .do_nothing()
                        .execute(c)?;
                }
                let mut written = 0;
                for chunk in rows.chunks(SAVE_CHUNK) {
                    written += upsert!(c, chunk)?;
                }
                // Delivered to other replicas when this transaction commits.
                super::changes::notify_streams(c, rows)?;
                Ok(written)
            }),
            DbConn::Sqlite(lite) => lite.immediate_transaction(|c| {
                for anchor in &new_anchors {
                    diesel::insert_into(anchors::table)
                        .values(anchor)
                        .on_conflict(anchors::id)
                        .do_nothing()
                        .execute(c)?;
                }
                let mut written = 0;
                for row in rows {
                    written += upsert!(c, row)?;
                }
                Ok(written)
            }),
        }
        .map_err(StoreError::query(OP));
        if full_sync {
            // Back to the pool's setting; a failure here leaves the connection safer, not worse.
            let _ = (*conn).batch_execute("PRAGMA synchronous = NORMAL");
        }
        result
    }

    /// The stream with this key, if stored.
    pub fn get_stream(&self, id: &str) -> Result<Option<StreamRow>, StoreError> {
        const OP: &str = "get stream";
        let mut conn = self.conn(OP)?;
        streams::table
            .find(id)
            .select(StreamRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::query(OP))
    }

    /// Up to `limit` streams in `state` (e.g. `live`, to reload them at start), oldest
    /// start first.
    pub fn streams_in_state(&self, state: &str, limit: i64) -> Result<Vec<StreamRow>, StoreError> {
        const OP: &str = "list streams in state";
        let mut conn = self.conn(OP)?;
        streams::table
            .filter(streams::state.eq(state))
            .order((streams::started_ms.asc(), streams::id.asc()))
            .limit(limit.max(0))
            .select(StreamRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }

    /// Marks the stream `ended` at `ended_ms` (also its `updated_ms`); the reason is
    /// kept. Returns false when the stream is unknown or already ended.
    pub fn end_stream(&self, id: &str, ended_ms: i64) -> Result<bool, StoreError> {
        const OP: &str = "end stream";
        let mut conn = self.conn(OP)?;
        diesel::update(
            streams::table
                .find(id)
                .filter(streams::state.ne(STATE_ENDED)),
        )
        .set((
            streams::state.eq(STATE_ENDED),
            streams::ended_ms.eq(Some(ended_ms)),
            streams::updated_ms.eq(ended_ms),
        ))
        .execute(&mut *conn)
        .map(|n| n > 0)
        .map_err(StoreError::query(OP))
    }
}

/// The rows with one row per id: the one with the greatest `updated_ms`, the later one
/// on a tie, at the position of the id's first row. Borrows when ids are already unique.
fn newest_per_id(rows: &[StreamRow]) -> Cow<'_, [StreamRow]> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut kept: Vec<&StreamRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match position.get(row.id.as_str()) {
            Some(&at) => {
                if row.updated_ms >= kept[at].updated_ms {
                    kept[at] = row;
                }
            }
            None => {
                position.insert(&row.id, kept.len());
                kept.push(row);
            }
        }
    }
    if kept.len() == rows.len() {
        Cow::Borrowed(rows)
    } else {
        Cow::Owned(kept.into_iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, updated_ms: i64, reason: &str) -> StreamRow {
        StreamRow {
            id: id.into(),
            anchor_id: "a".into(),
            region: "eu".into(),
            providers: "[]".into(),
            state: "live".into(),
            reason: reason.into(),
            started_ms: 0,
            ended_ms: None,
            updated_ms,
        }
    }

    #[test]
    fn newest_per_id_keeps_the_newest_then_the_last() {
        let unique = [row("a", 1, ""), row("b", 1, "")];
        assert!(matches!(newest_per_id(&unique), Cow::Borrowed(_)));

        let rows = [
            row("a", 5, "a-new"),
            row("b", 1, "b-first"),
            row("a", 3, "a-old"),
            row("b", 1, "b-last"),
            row("c", 1, "c"),
        ];
        let kept: Vec<(String, String)> = newest_per_id(&rows)
            .iter()
            .map(|r| (r.id.clone(), r.reason.clone()))
            .collect();
        let want = [("a", "a-new"), ("b", "b-last"), ("c", "c")];
        assert_eq!(kept, want.map(|(i, r)| (i.to_string(), r.to_string())));
    }
}
