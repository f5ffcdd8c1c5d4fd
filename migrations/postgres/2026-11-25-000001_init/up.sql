-- livesteer initial schema (PostgreSQL). Mirror of migrations/sqlite/2026-11-25-000001_init.
-- Timestamps are unix milliseconds in BIGINT columns named *_ms.

CREATE TABLE anchors (
    id         TEXT   NOT NULL PRIMARY KEY,
    region     TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE streams (
    id         TEXT   NOT NULL PRIMARY KEY,               -- the stream key
    anchor_id  TEXT   NOT NULL REFERENCES anchors (id),
    region     TEXT   NOT NULL,
    providers  TEXT   NOT NULL,                           -- JSON array of provider ids, primary first
    state      TEXT   NOT NULL,                           -- 'live' | 'ended' | ...
    reason     TEXT   NOT NULL DEFAULT '',
    started_ms BIGINT NOT NULL,
    ended_ms   BIGINT,
    updated_ms BIGINT NOT NULL
);

CREATE INDEX streams_anchor_id_idx ON streams (anchor_id);
CREATE INDEX streams_state_idx ON streams (state);

CREATE TABLE policy_versions (
    id        SERIAL NOT NULL PRIMARY KEY,                -- INTEGER (rowid alias) on SQLite
    version   TEXT   NOT NULL,                            -- content hash
    files     TEXT   NOT NULL,                            -- JSON array of file names
    loaded_ms BIGINT NOT NULL
);

CREATE TABLE job_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_ms BIGINT NOT NULL
);
