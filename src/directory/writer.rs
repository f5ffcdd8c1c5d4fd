//! Registered nodes written behind the request (see `writebehind`): coalesced by node id, the
//! latest heartbeat winning, so replicas and restarts see what heartbeats said.

use crate::store::{Db, NodeRow, StoreError};
use crate::writebehind::{Persist, WriteBehind};

impl Persist for NodeRow {
    const TABLE: &'static str = "service_nodes";
    fn key(&self) -> &str {
        &self.id
    }
    fn stamp(&self) -> i64 {
        self.signed_ms
    }
    fn save(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
        db.save_nodes(rows)
    }
}

/// Service nodes written behind the request.
pub type NodeWriter = WriteBehind<NodeRow>;
