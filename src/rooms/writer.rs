//! Room rows written behind the request (see `writebehind`): coalesced by anchor, the newer
//! change winning.

use crate::store::{Db, RoomRow, StoreError};
use crate::writebehind::{Persist, WriteBehind};

impl Persist for RoomRow {
    const TABLE: &'static str = "rooms";
    fn key(&self) -> &str {
        &self.anchor_id
    }
    fn stamp(&self) -> i64 {
        self.updated_ms
    }
    fn save(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
        db.save_rooms(rows)
    }
}

/// Room states written behind the request.
pub type RoomWriter = WriteBehind<RoomRow>;
