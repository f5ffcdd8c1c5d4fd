DROP INDEX streams_updated_ms_idx;
