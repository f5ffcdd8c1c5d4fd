-- The signed time of each node's last applied heartbeat: a heartbeat is applied only when
-- signed strictly later, so a replay never extends a node's health (0: not known yet).
ALTER TABLE service_nodes ADD COLUMN signed_ms BIGINT NOT NULL DEFAULT 0;
