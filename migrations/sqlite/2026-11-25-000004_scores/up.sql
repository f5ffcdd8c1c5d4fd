-- Scoring windows per replica (SQLite). Mirror of migrations/postgres/2026-11-25-000004_scores.
-- Each replica writes only the windows it built from the signals it received; every replica
-- reads the others' rows as remote evidence, so nothing is counted twice.

CREATE TABLE score_windows (
    replica    TEXT   NOT NULL,          -- the instance that built the window
    kind       TEXT   NOT NULL,          -- 'delivery' (key = region), 'ingest' (key = anchor), 'ingest_region' (key = region)
    provider   TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    data       TEXT   NOT NULL,          -- the decayed sums, JSON
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (replica, kind, provider, key)
);

CREATE INDEX score_windows_updated_idx ON score_windows (updated_ms);
