//! The one diesel schema for both backends.
//!
//! Kept by hand in step with `migrations/sqlite` and `migrations/postgres`
//! (see `migrations/README.md`). Only portable column types: `Text`, `BigInt`
//! (unix milliseconds in `*_ms` columns) and `Integer` (the `policy_versions` key:
//! `SERIAL` on PostgreSQL, a rowid alias on SQLite).

diesel::table! {
    /// Anchors (broadcasters) that have pushed at least one stream.
    anchors (id) {
        id -> Text,
        region -> Nullable<Text>,
        created_ms -> BigInt,
        updated_ms -> BigInt,
    }
}

diesel::table! {
    /// Streams, keyed by the stream key.
    streams (id) {
        id -> Text,
        anchor_id -> Text,
        region -> Text,
        /// JSON array of provider ids pushed to, primary first.
        providers -> Text,
        /// `live`, `ended`, …
        state -> Text,
        reason -> Text,
        started_ms -> BigInt,
        ended_ms -> Nullable<BigInt>,
        updated_ms -> BigInt,
    }
}

diesel::table! {
    /// Every distinct policy set that was loaded, in load order.
    policy_versions (id) {
        id -> Integer,
        /// Content hash of the policy files.
        version -> Text,
        /// JSON array of file names.
        files -> Text,
        loaded_ms -> BigInt,
    }
}

diesel::table! {
    /// Leases so that one replica runs each cron job.
    job_leases (name) {
        name -> Text,
        holder -> Text,
        expires_ms -> BigInt,
    }
}

diesel::joinable!(streams -> anchors (anchor_id));

diesel::allow_tables_to_appear_in_same_query!(anchors, streams, policy_versions, job_leases);
