//! Service nodes registered through heartbeats (the directory's record of them).

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::service_nodes;
use super::{Db, StoreError, per_backend};

/// A row of `service_nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = service_nodes)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct NodeRow {
    pub id: String,
    /// `chat`, `im`, `api`, `upload`, `static`, `pay`.
    pub kind: String,
    pub region: String,
    /// JSON array of URLs.
    pub endpoints: String,
    /// JSON array of addresses.
    pub ips: String,
    pub capacity: i64,
    pub current_load: i64,
    pub version: String,
    /// 1 when draining.
    pub draining: i32,
    /// Signed time of the last heartbeat, unix milliseconds.
    pub last_seen_ms: i64,
    /// When this replica applied it, unix milliseconds (other replicas poll on it).
    pub updated_ms: i64,
    /// The time the last applied heartbeat was signed at, unix milliseconds (0 for rows
    /// written before it was recorded); a heartbeat is applied only when signed later.
    pub signed_ms: i64,
}

impl Db {
    /// Upserts nodes in one transaction. A stored row whose heartbeat was signed later
    /// (`signed_ms`) is kept, so a delayed write never moves a node back in time.
    pub fn save_nodes(&self, rows: &[NodeRow]) -> Result<usize, StoreError> {
        const OP: &str = "save service nodes";
        if rows.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn(OP)?;
        super::write_transaction!(&mut *conn, |c| {
            let mut n = 0;
            // One statement per row: SQLite's diesel backend has no multi-row upsert, and
            // node batches are small (one row per node per flush interval).
            for row in rows {
                let upsert = diesel::insert_into(service_nodes::table)
                    .values(row)
                    .on_conflict(service_nodes::id)
                    .do_update()
                    .set((
                        service_nodes::kind.eq(excluded(service_nodes::kind)),
                        service_nodes::region.eq(excluded(service_nodes::region)),
                        service_nodes::endpoints.eq(excluded(service_nodes::endpoints)),
                        service_nodes::ips.eq(excluded(service_nodes::ips)),
                        service_nodes::capacity.eq(excluded(service_nodes::capacity)),
                        service_nodes::current_load.eq(excluded(service_nodes::current_load)),
                        service_nodes::version.eq(excluded(service_nodes::version)),
                        service_nodes::draining.eq(excluded(service_nodes::draining)),
                        service_nodes::last_seen_ms.eq(excluded(service_nodes::last_seen_ms)),
                        service_nodes::updated_ms.eq(excluded(service_nodes::updated_ms)),
                        service_nodes::signed_ms.eq(excluded(service_nodes::signed_ms)),
                    ));
                let newer = service_nodes::signed_ms.le(excluded(service_nodes::signed_ms));
                n += diesel::query_dsl::methods::FilterDsl::filter(upsert, newer).execute(c)?;
            }
            Ok(n)
        })
        .map_err(StoreError::query(OP))
    }

    /// Every stored node.
    pub fn all_nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.nodes_updated_since(i64::MIN)
    }

    /// Nodes whose row changed at or after `since_ms`.
    pub fn nodes_updated_since(&self, since_ms: i64) -> Result<Vec<NodeRow>, StoreError> {
        const OP: &str = "load service nodes";
        let mut conn = self.conn(OP)?;
        service_nodes::table
            .filter(service_nodes::updated_ms.ge(since_ms))
            .select(NodeRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }

    /// Deletes nodes not heard from since `cutoff_ms`; returns how many.
    pub fn delete_nodes_unseen_since(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        const OP: &str = "delete stale service nodes";
        let mut conn = self.conn(OP)?;
        per_backend!(&mut *conn, |c| {
            diesel::delete(service_nodes::table.filter(service_nodes::last_seen_ms.lt(cutoff_ms)))
                .execute(c)
        })
        .map_err(StoreError::query(OP))
    }
}
