-- Replicas catch up on stream changes by updated_ms.
CREATE INDEX streams_updated_ms_idx ON streams (updated_ms);
