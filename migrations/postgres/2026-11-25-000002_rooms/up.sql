-- Room online state per anchor (PostgreSQL). Mirror of migrations/sqlite/2026-11-25-000002_rooms.
-- Written behind the request by rooms::RoomWriter; read at start so states survive a restart.

CREATE TABLE rooms (
    anchor_id      TEXT    NOT NULL PRIMARY KEY,
    state          TEXT    NOT NULL,                      -- 'offline' | 'starting' | 'live' | 'stalled'
    since_ms       BIGINT  NOT NULL,                      -- when the room entered its state
    region         TEXT    NOT NULL DEFAULT '',
    stream_id      TEXT,                                  -- the stream last seen for the anchor
    providers      TEXT    NOT NULL DEFAULT '[]',         -- JSON array of provider ids carrying it
    chat_connected INTEGER NOT NULL DEFAULT 0,            -- 1 when the chat room was connected
    health_pct     INTEGER NOT NULL DEFAULT 0,            -- 0..100
    updated_ms     BIGINT  NOT NULL
);

CREATE INDEX rooms_state_idx ON rooms (state);
