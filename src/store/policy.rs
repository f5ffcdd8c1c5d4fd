//! Policy versions.

use diesel::prelude::*;

use super::models::NewPolicyVersion;
use super::schema::policy_versions;
use super::{Db, DbConn, PolicyVersionRow, StoreError, write_transaction};

impl Db {
    /// Records that the policy set `version` (a content hash) made of `files` was loaded
    /// at `loaded_ms`, unless the latest recorded version is the same. Returns true when
    /// a row was inserted. Safe against replicas recording at the same time.
    pub fn record_policy_version(
        &self,
        version: &str,
        files: &[String],
        loaded_ms: i64,
    ) -> Result<bool, StoreError> {
        const OP: &str = "record policy version";
        let files =
            serde_json::to_string(files).map_err(|cause| StoreError::Json { op: OP, cause })?;
        let new = NewPolicyVersion {
            version,
            files: &files,
            loaded_ms,
        };
        let mut conn = self.conn(OP)?;
        let is_postgres = matches!(*conn, DbConn::Postgres(_));
        // Read, then insert, under a write lock: BEGIN IMMEDIATE on SQLite; on PostgreSQL
        // an EXCLUSIVE table lock (plain reads still proceed) held to commit.
        let inserted = write_transaction!(&mut *conn, |c| {
            if is_postgres {
                diesel::sql_query("LOCK TABLE policy_versions IN EXCLUSIVE MODE").execute(c)?;
            }
            let latest: Option<String> = policy_versions::table
                .order(policy_versions::id.desc())
                .select(policy_versions::version)
                .first(c)
                .optional()?;
            if latest.as_deref() == Some(version) {
                return Ok(false);
            }
            diesel::insert_into(policy_versions::table)
                .values(&new)
                .execute(c)?;
            Ok(true)
        })
        .map_err(StoreError::query(OP))?;
        // Other replicas reload their files when this arrives, after the commit.
        if inserted && let DbConn::Postgres(pg) = &mut *conn {
            super::changes::notify_control(pg, &super::changes::policy_payload(version))
                .map_err(StoreError::query(OP))?;
        }
        Ok(inserted)
    }

    /// The most recently recorded policy version, if any.
    pub fn latest_policy_version(&self) -> Result<Option<PolicyVersionRow>, StoreError> {
        const OP: &str = "get latest policy version";
        let mut conn = self.conn(OP)?;
        policy_versions::table
            .order(policy_versions::id.desc())
            .select(PolicyVersionRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::query(OP))
    }
}
