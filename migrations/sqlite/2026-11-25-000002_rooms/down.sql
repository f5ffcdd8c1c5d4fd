DROP INDEX rooms_state_idx;
DROP TABLE rooms;
