DROP TABLE replicas;
DROP TABLE provider_drains;
DROP INDEX rooms_updated_ms_idx;
ALTER TABLE rooms DROP COLUMN record;
