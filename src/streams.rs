//! Streams in memory, committed before they are acknowledged.
//!
//! Creating or ending a stream commits its row first ([`StreamWriter`], one group-commit
//! transaction for every request that arrives meanwhile, see `writebehind`), then changes
//! memory, then answers: what the app was told exists survives a crash, and a failed commit
//! changes nothing. Reads (play, steering, manifests) come from memory only.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::{Db, StoreError, StreamRow};
use crate::writebehind::{Persist, WriteBehind};
use serde::Serialize;

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    Live,
    Ended,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Live => "live",
            StreamState::Ended => "ended",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(StreamState::Live),
            "ended" => Some(StreamState::Ended),
            _ => None,
        }
    }
}

/// One stream: its key, its anchor and the providers it is pushed to (primary first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stream {
    pub id: String,
    pub anchor_id: String,
    pub region: String,
    pub providers: Vec<String>,
    pub state: StreamState,
    pub reason: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub updated_ms: i64,
}

impl Stream {
    /// This stream as ended at `now_ms` for `reason` (a value; nothing is stored).
    pub fn ended(&self, now_ms: i64, reason: &str) -> Stream {
        let mut s = self.clone();
        s.state = StreamState::Ended;
        s.ended_ms = Some(now_ms);
        s.updated_ms = now_ms;
        s.reason = reason.to_string();
        s
    }

    /// The row that stores it.
    pub fn to_row(&self) -> StreamRow {
        StreamRow {
            id: self.id.clone(),
            anchor_id: self.anchor_id.clone(),
            region: self.region.clone(),
            providers: StreamRow::encode_providers(&self.providers),
            state: self.state.as_str().to_string(),
            reason: self.reason.clone(),
            started_ms: self.started_ms,
            ended_ms: self.ended_ms,
            updated_ms: self.updated_ms,
        }
    }

    /// A stored row; `None` for a state this version does not know.
    pub fn from_row(row: &StreamRow) -> Option<Stream> {
        Some(Stream {
            id: row.id.clone(),
            anchor_id: row.anchor_id.clone(),
            region: row.region.clone(),
            providers: row.provider_ids(),
            state: StreamState::parse(&row.state)?,
            reason: row.reason.clone(),
            started_ms: row.started_ms,
            ended_ms: row.ended_ms,
            updated_ms: row.updated_ms,
        })
    }
}

/// Live and recently ended streams, by key.
#[derive(Debug, Default)]
pub struct StreamTable {
    inner: RwLock<foldhash::HashMap<String, Arc<Stream>>>,
}

/// Whether `cur`, ended, must stay so against a newer live `row`: a stream moved on one replica
/// while another ended it is ended.
fn ends_stay(cur: &Stream, row: &Stream) -> bool {
    cur.state == StreamState::Ended && row.state != StreamState::Ended
}

impl StreamTable {
    /// A stream by key.
    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.read().get(id).cloned()
    }

    /// Inserts or replaces a stream.
    pub fn put(&self, stream: Stream) -> Arc<Stream> {
        let s = Arc::new(stream);
        self.write().insert(s.id.clone(), s.clone());
        s
    }

    /// Replaces a live stream with a newer version of it (its push targets moved); `None` when
    /// memory holds it ended by now (an ended stream stays ended).
    pub fn replace_live(&self, stream: Stream) -> Option<Arc<Stream>> {
        let mut map = self.write();
        if map
            .get(&stream.id)
            .is_some_and(|cur| cur.state == StreamState::Ended)
        {
            return None;
        }
        let s = Arc::new(stream);
        map.insert(s.id.clone(), s.clone());
        Some(s)
    }

    /// Marks a stream ended; `None` if unknown, the stream as it was if already ended.
    pub fn end(&self, id: &str, now_ms: i64, reason: &str) -> Option<(Arc<Stream>, bool)> {
        let mut map = self.write();
        let cur = map.get(id)?.clone();
        if cur.state == StreamState::Ended {
            return Some((cur, false));
        }
        let s = Arc::new(cur.ended(now_ms, reason));
        map.insert(id.to_string(), s.clone());
        Some((s, true))
    }

    /// Takes a stored row a request asked for and memory did not hold (another replica wrote
    /// it before this one heard of it), ended or not, unless memory holds the same or a newer
    /// change by now. Returns the stream as memory holds it.
    pub fn adopt(&self, row: &StreamRow) -> Option<Arc<Stream>> {
        let s = Stream::from_row(row)?;
        let mut map = self.write();
        if let Some(cur) = map.get(&s.id)
            && (cur.updated_ms >= s.updated_ms || ends_stay(cur, &s))
        {
            return Some(cur.clone());
        }
        let s = Arc::new(s);
        map.insert(s.id.clone(), s.clone());
        Some(s)
    }

    /// Takes a stored row another replica wrote: replaces what memory holds only when the row's
    /// change is newer (a live stream this replica has not seen, or the end of one it holds).
    /// An ended stream memory does not hold stays out, as at start. Returns whether memory
    /// changed.
    pub fn merge(&self, row: &StreamRow) -> bool {
        let Some(s) = Stream::from_row(row) else {
            return false;
        };
        let mut map = self.write();
        match map.get(&s.id) {
            Some(cur) if cur.updated_ms >= s.updated_ms || ends_stay(cur, &s) => return false,
            None if s.state == StreamState::Ended => return false,
            _ => {}
        }
        map.insert(s.id.clone(), Arc::new(s));
        true
    }

    /// Whether memory holds the stream at a change as new as `updated_ms` or newer.
    pub fn holds(&self, id: &str, updated_ms: i64) -> bool {
        self.read()
            .get(id)
            .is_some_and(|s| s.updated_ms >= updated_ms)
    }

    /// Drops ended streams that ended before `cutoff_ms`; returns how many.
    pub fn sweep_ended(&self, cutoff_ms: i64) -> usize {
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, s| s.state != StreamState::Ended || s.ended_ms.unwrap_or(0) >= cutoff_ms);
        before - map.len()
    }

    /// Counts by state.
    pub fn counts(&self) -> HashMap<StreamState, usize> {
        let mut out = HashMap::new();
        for s in self.read().values() {
            *out.entry(s.state).or_insert(0) += 1;
        }
        out
    }

    /// Every live stream (what the probes visit).
    pub fn live(&self) -> Vec<Arc<Stream>> {
        self.read()
            .values()
            .filter(|s| s.state == StreamState::Live)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, foldhash::HashMap<String, Arc<Stream>>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, foldhash::HashMap<String, Arc<Stream>>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Persist for StreamRow {
    const TABLE: &'static str = "streams";
    fn key(&self) -> &str {
        &self.id
    }
    fn stamp(&self) -> i64 {
        self.updated_ms
    }
    fn save(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
        db.save_streams(rows)
    }
    fn save_durably(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
        db.save_streams_durably(rows)
    }
}

/// The streams' writer: creates and ends are committed before they are acknowledged
/// ([`WriteBehind::commit`], group commit).
pub type StreamWriter = WriteBehind<StreamRow>;

#[cfg(test)]
mod tests {
    use super::*;

    fn live(providers: &[&str], updated_ms: i64) -> Stream {
        Stream {
            id: "s1".into(),
            anchor_id: "a1".into(),
            region: "tw".into(),
            providers: providers.iter().map(|p| p.to_string()).collect(),
            state: StreamState::Live,
            reason: String::new(),
            started_ms: 1_000,
            ended_ms: None,
            updated_ms,
        }
    }

    /// A move replaces a live stream, from a request or from another replica's row; nothing
    /// makes an ended stream live again.
    #[test]
    fn a_moved_stream_replaces_a_live_one_and_never_an_ended_one() {
        let t = StreamTable::default();
        t.put(live(&["a", "b"], 1_000));
        let moved = t.replace_live(live(&["c", "b"], 2_000)).unwrap();
        assert_eq!(moved.providers, ["c", "b"]);
        assert!(t.merge(&live(&["d", "b"], 3_000).to_row()));
        assert_eq!(t.get("s1").unwrap().providers, ["d", "b"]);

        t.end("s1", 4_000, "ended by the app").unwrap();
        assert!(t.replace_live(live(&["e", "b"], 5_000)).is_none());
        assert!(!t.merge(&live(&["e", "b"], 5_000).to_row()));
        let adopted = t.adopt(&live(&["e", "b"], 5_000).to_row()).unwrap();
        assert_eq!(adopted.state, StreamState::Ended);
        let now = t.get("s1").unwrap();
        assert_eq!(
            (now.state, now.providers.clone()),
            (StreamState::Ended, vec!["d".to_string(), "b".to_string()])
        );
    }
}
