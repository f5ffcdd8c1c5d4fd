//! Scoring windows (`score_windows`): each replica saves the windows it built; every replica
//! loads the others'.

use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::Serialize;

use super::schema::score_windows;
use super::{Db, DbConn, StoreError};

/// Rows per multi-row `INSERT` on PostgreSQL (6 binds each).
const SAVE_CHUNK: usize = 1000;

/// A row of `score_windows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable)]
#[diesel(table_name = score_windows)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ScoreWindowRow {
    /// The instance that built the window.
    pub replica: String,
    /// `delivery`, `ingest` or `ingest_region`.
    pub kind: String,
    pub provider: String,
    /// Region id or anchor id, by kind.
    pub key: String,
    /// The window's sums, JSON.
    pub data: String,
    /// Unix milliseconds.
    pub updated_ms: i64,
}

impl Db {
    /// Replaces this replica's windows by `rows` (all of one replica) in one transaction:
    /// upserts them and deletes the replica's rows not among them.
    pub fn save_score_windows(
        &self,
        replica: &str,
        rows: &[ScoreWindowRow],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        const OP: &str = "save score windows";
        macro_rules! upsert {
            ($c:expr, $values:expr) => {
                diesel::insert_into(score_windows::table)
                    .values($values)
                    .on_conflict((
                        score_windows::replica,
                        score_windows::kind,
                        score_windows::provider,
                        score_windows::key,
                    ))
                    .do_update()
                    .set((
                        score_windows::data.eq(excluded(score_windows::data)),
                        score_windows::updated_ms.eq(excluded(score_windows::updated_ms)),
                    ))
                    .execute($c)
            };
        }
        macro_rules! prune {
            ($c:expr) => {
                diesel::delete(
                    score_windows::table
                        .filter(score_windows::replica.eq(replica))
                        .filter(score_windows::updated_ms.lt(now_ms)),
                )
                .execute($c)
            };
        }
        let mut conn = self.conn(OP)?;
        match &mut *conn {
            DbConn::Postgres(pg) => pg.transaction(|c| {
                let mut n = 0;
                for chunk in rows.chunks(SAVE_CHUNK) {
                    n += upsert!(c, chunk)?;
                }
                prune!(c)?;
                Ok(n)
            }),
            DbConn::Sqlite(lite) => lite.immediate_transaction(|c| {
                let mut n = 0;
                for row in rows {
                    n += upsert!(c, row)?;
                }
                prune!(c)?;
                Ok(n)
            }),
        }
        .map_err(StoreError::query(OP))
    }

    /// Windows of every replica but `except`, saved at or after `since_ms`.
    pub fn load_score_windows(
        &self,
        except: &str,
        since_ms: i64,
    ) -> Result<Vec<ScoreWindowRow>, StoreError> {
        const OP: &str = "load score windows";
        let mut conn = self.conn(OP)?;
        score_windows::table
            .filter(score_windows::replica.ne(except))
            .filter(score_windows::updated_ms.ge(since_ms))
            .select(ScoreWindowRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }

    /// Drops windows of any replica not saved since `before_ms` (replicas long gone).
    pub fn forget_score_windows(&self, before_ms: i64) -> Result<usize, StoreError> {
        const OP: &str = "forget score windows";
        let mut conn = self.conn(OP)?;
        diesel::delete(score_windows::table.filter(score_windows::updated_ms.lt(before_ms)))
            .execute(&mut *conn)
            .map_err(StoreError::query(OP))
    }
}
