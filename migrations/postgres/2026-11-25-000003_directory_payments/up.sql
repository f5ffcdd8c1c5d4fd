-- Service directory and payment ledger (PostgreSQL). Mirror of
-- migrations/sqlite/2026-11-25-000003_directory_payments.

-- Nodes that registered through heartbeats (static nodes live in the policy). Written behind
-- the heartbeat handler; reloaded at start and polled by other replicas (updated_ms).
CREATE TABLE service_nodes (
    id           TEXT   NOT NULL PRIMARY KEY,
    kind         TEXT   NOT NULL,                     -- chat | im | api | upload | static | pay
    region       TEXT   NOT NULL,
    endpoints    TEXT   NOT NULL,                     -- JSON array of URLs
    ips          TEXT   NOT NULL,                     -- JSON array of addresses (HTTPDNS answers)
    capacity     BIGINT NOT NULL,
    current_load BIGINT NOT NULL,
    version      TEXT   NOT NULL DEFAULT '',
    draining     INTEGER NOT NULL DEFAULT 0,          -- 1 when the node asked for no new clients
    last_seen_ms BIGINT NOT NULL,                     -- signed time of the last heartbeat
    updated_ms   BIGINT NOT NULL
);

CREATE INDEX service_nodes_updated_ms_idx ON service_nodes (updated_ms);

-- Completed payments synced from the payment centres: one row per (centre, payment id),
-- written in the request's transaction before the centre is answered.
CREATE TABLE payments (
    centre       TEXT   NOT NULL,
    payment_id   TEXT   NOT NULL,
    user_id      TEXT   NOT NULL,
    amount_minor BIGINT NOT NULL,                     -- in the currency's minor unit
    currency     TEXT   NOT NULL,                     -- ISO 4217, upper case
    provider     TEXT   NOT NULL,                     -- payment provider (apple, google, alipay, ...)
    status       TEXT   NOT NULL,
    created_ms   BIGINT NOT NULL,                     -- when the centre completed it
    received_ms  BIGINT NOT NULL,                     -- when livesteer stored it
    PRIMARY KEY (centre, payment_id)
);

CREATE INDEX payments_centre_created_idx ON payments (centre, created_ms);

-- Records refused because a different record is stored under the same (centre, payment id).
CREATE TABLE payment_conflicts (
    id          SERIAL  NOT NULL PRIMARY KEY,         -- INTEGER (rowid alias) on SQLite
    centre      TEXT    NOT NULL,
    payment_id  TEXT    NOT NULL,
    record      TEXT    NOT NULL,                     -- the refused record, as JSON
    received_ms BIGINT  NOT NULL
);

CREATE INDEX payment_conflicts_centre_idx ON payment_conflicts (centre, payment_id);
