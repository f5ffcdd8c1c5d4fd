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

diesel::table! {
    /// Room online state per anchor (see `rooms`).
    rooms (anchor_id) {
        anchor_id -> Text,
        /// `offline`, `starting`, `live`, `stalled`.
        state -> Text,
        since_ms -> BigInt,
        region -> Text,
        stream_id -> Nullable<Text>,
        /// JSON array of the provider ids carrying the stream.
        providers -> Text,
        chat_connected -> Integer,
        health_pct -> Integer,
        updated_ms -> BigInt,
        /// The room's whole record as JSON (`rooms::Room`), for other replicas to follow;
        /// empty in rows written before cluster mode.
        record -> Text,
    }
}

diesel::table! {
    /// Service nodes registered through heartbeats (static nodes live in the policy).
    service_nodes (id) {
        id -> Text,
        /// `chat`, `im`, `api`, `upload`, `static`, `pay`.
        kind -> Text,
        region -> Text,
        /// JSON array of URLs.
        endpoints -> Text,
        /// JSON array of addresses for HTTPDNS answers.
        ips -> Text,
        capacity -> BigInt,
        current_load -> BigInt,
        version -> Text,
        /// 1 when the node asked for no new clients.
        draining -> Integer,
        last_seen_ms -> BigInt,
        updated_ms -> BigInt,
        /// Signed time of the last applied heartbeat (0: not known).
        signed_ms -> BigInt,
    }
}

diesel::table! {
    /// Completed payments synced from payment centres, one per (centre, payment id).
    payments (centre, payment_id) {
        centre -> Text,
        payment_id -> Text,
        user_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        provider -> Text,
        status -> Text,
        created_ms -> BigInt,
        received_ms -> BigInt,
    }
}

diesel::table! {
    /// Payment records refused because another record holds their (centre, payment id).
    payment_conflicts (id) {
        id -> Integer,
        centre -> Text,
        payment_id -> Text,
        /// The refused record, as JSON.
        record -> Text,
        received_ms -> BigInt,
    }
}

diesel::table! {
    /// Scoring windows, one per (replica, kind, provider, key).
    score_windows (replica, kind, provider, key) {
        replica -> Text,
        kind -> Text,
        provider -> Text,
        key -> Text,
        data -> Text,
        updated_ms -> BigInt,
    }
}

diesel::table! {
    /// Providers drained (or undrained) at run time by an admin, one row per provider.
    provider_drains (provider) {
        provider -> Text,
        /// 1: drained.
        drained -> Integer,
        updated_ms -> BigInt,
    }
}

diesel::table! {
    /// The replicas sharing this database, each renewing its heartbeat.
    replicas (id) {
        id -> Text,
        started_ms -> BigInt,
        heartbeat_ms -> BigInt,
    }
}

diesel::joinable!(streams -> anchors (anchor_id));

diesel::allow_tables_to_appear_in_same_query!(
    anchors,
    streams,
    policy_versions,
    job_leases,
    rooms,
    service_nodes,
    payments,
    payment_conflicts,
    score_windows,
    provider_drains,
    replicas
);
