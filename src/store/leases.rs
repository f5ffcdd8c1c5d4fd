//! Job leases: one replica runs each cron job.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::schema::job_leases;
use super::{Db, StoreError, per_backend};

impl Db {
    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`. Succeeds
    /// when the lease is free, expired (`expires_ms <= now_ms`) or already held by
    /// `holder`; returns false when another holder has it.
    ///
    /// Atomic: one conditional upsert (`INSERT … ON CONFLICT (name) DO UPDATE … WHERE
    /// expired OR same holder`), whose affected-row count says whether it was taken.
    pub fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "acquire lease";
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let mut conn = self.conn(OP)?;
        per_backend!(&mut *conn, |c| {
            let upsert = diesel::insert_into(job_leases::table)
                .values((
                    job_leases::name.eq(name),
                    job_leases::holder.eq(holder),
                    job_leases::expires_ms.eq(expires_ms),
                ))
                .on_conflict(job_leases::name)
                .do_update()
                .set((
                    job_leases::holder.eq(excluded(job_leases::holder)),
                    job_leases::expires_ms.eq(excluded(job_leases::expires_ms)),
                ));
            let takeable = job_leases::expires_ms
                .le(now_ms)
                .or(job_leases::holder.eq(holder));
            diesel::query_dsl::methods::FilterDsl::filter(upsert, takeable).execute(c)
        })
        .map(|n| n > 0)
        .map_err(StoreError::query(OP))
    }

    /// Gives the lease `name` up if `holder` has it; returns whether it did.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        const OP: &str = "release lease";
        let mut conn = self.conn(OP)?;
        diesel::delete(
            job_leases::table
                .filter(job_leases::name.eq(name))
                .filter(job_leases::holder.eq(holder)),
        )
        .execute(&mut *conn)
        .map(|n| n > 0)
        .map_err(StoreError::query(OP))
    }

    /// The current holder of the lease `name` and when it expires, if the row exists
    /// (it may have expired).
    pub fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        const OP: &str = "get lease";
        let mut conn = self.conn(OP)?;
        job_leases::table
            .find(name)
            .select((job_leases::holder, job_leases::expires_ms))
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::query(OP))
    }
}
