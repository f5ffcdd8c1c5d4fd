ALTER TABLE service_nodes DROP COLUMN signed_ms;
