//! Cluster mode: run-time drains (`provider_drains`) and the replicas' registry (`replicas`).
//!
//! A drain is committed before the admin is answered and, on PostgreSQL, notified on
//! [`super::CONTROL_CHANNEL`] in the same transaction, so every replica applies it. Each
//! replica renews its `replicas` row every second; the live replicas are those whose heartbeat
//! is younger than the registry's TTL (`cluster`).

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::{provider_drains, replicas};
use super::{Db, DbConn, StoreError, per_backend, write_transaction};

impl Db {
    /// Stores a run-time drain (or undrain) of `provider`, notifying the other replicas.
    pub fn save_drain(&self, provider: &str, drained: bool, now_ms: i64) -> Result<(), StoreError> {
        const OP: &str = "save drain";
        let mut conn = self.conn(OP)?;
        write_transaction!(&mut *conn, |c| {
            diesel::insert_into(provider_drains::table)
                .values((
                    provider_drains::provider.eq(provider),
                    provider_drains::drained.eq(i32::from(drained)),
                    provider_drains::updated_ms.eq(now_ms),
                ))
                .on_conflict(provider_drains::provider)
                .do_update()
                .set((
                    provider_drains::drained.eq(excluded(provider_drains::drained)),
                    provider_drains::updated_ms.eq(excluded(provider_drains::updated_ms)),
                ))
                .execute(c)?;
            Ok(())
        })
        .map_err(StoreError::query(OP))?;
        // After the commit: other replicas read the row when this arrives.
        if let DbConn::Postgres(pg) = &mut *conn {
            super::changes::notify_control(pg, super::changes::DRAINS)
                .map_err(StoreError::query(OP))?;
        }
        Ok(())
    }

    /// Every stored run-time drain, as (provider, drained).
    pub fn drains(&self) -> Result<Vec<(String, bool)>, StoreError> {
        const OP: &str = "load drains";
        let mut conn = self.conn(OP)?;
        provider_drains::table
            .order(provider_drains::provider.asc())
            .select((provider_drains::provider, provider_drains::drained))
            .load::<(String, i32)>(&mut *conn)
            .map(|rows| rows.into_iter().map(|(p, d)| (p, d != 0)).collect())
            .map_err(StoreError::query(OP))
    }

    /// Renews this replica's heartbeat (registering it the first time), and returns the ids of
    /// the replicas whose heartbeat is at or after `live_since_ms`, in id order.
    pub fn replica_heartbeat(
        &self,
        id: &str,
        started_ms: i64,
        now_ms: i64,
        live_since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        const OP: &str = "replica heartbeat";
        let mut conn = self.conn(OP)?;
        per_backend!(&mut *conn, |c| {
            diesel::insert_into(replicas::table)
                .values((
                    replicas::id.eq(id),
                    replicas::started_ms.eq(started_ms),
                    replicas::heartbeat_ms.eq(now_ms),
                ))
                .on_conflict(replicas::id)
                .do_update()
                .set(replicas::heartbeat_ms.eq(excluded(replicas::heartbeat_ms)))
                .execute(c)
                .and_then(|_| {
                    replicas::table
                        .filter(replicas::heartbeat_ms.ge(live_since_ms))
                        .order(replicas::id.asc())
                        .select(replicas::id)
                        .load::<String>(c)
                })
        })
        .map_err(StoreError::query(OP))
    }

    /// Removes a replica from the registry (a graceful stop; its share is re-divided at once).
    pub fn forget_replica(&self, id: &str) -> Result<bool, StoreError> {
        const OP: &str = "forget replica";
        let mut conn = self.conn(OP)?;
        diesel::delete(replicas::table.find(id))
            .execute(&mut *conn)
            .map(|n| n > 0)
            .map_err(StoreError::query(OP))
    }

    /// Removes registry rows whose heartbeat is older than `before_ms`; returns how many.
    pub fn forget_dead_replicas(&self, before_ms: i64) -> Result<usize, StoreError> {
        const OP: &str = "forget dead replicas";
        let mut conn = self.conn(OP)?;
        diesel::delete(replicas::table.filter(replicas::heartbeat_ms.lt(before_ms)))
            .execute(&mut *conn)
            .map_err(StoreError::query(OP))
    }
}
