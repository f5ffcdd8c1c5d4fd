-- Cluster mode: a room's whole record, so other replicas can follow it; run-time drains;
-- the replicas' registry.
ALTER TABLE rooms ADD COLUMN record TEXT NOT NULL DEFAULT '';
CREATE INDEX rooms_updated_ms_idx ON rooms (updated_ms);

CREATE TABLE provider_drains (
    provider TEXT PRIMARY KEY NOT NULL,
    drained INTEGER NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE replicas (
    id TEXT PRIMARY KEY NOT NULL,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
