//! Rooms: whether each anchor's room is really live, for the app's hot and follow lists.
//!
//! A room is live when the anchor's video flows on at least one provider and (when the policy
//! says `rooms.chat_required`) the anchor's chat room is connected. Inputs are origin and CDN
//! callbacks (`callbacks`), active probes (`probes`), and chat presence (`POST
//! /v1/rooms/{anchor_id}/chat`, or a chat node's heartbeat through
//! [`Rooms::chat_presence_from_node`]). [`machine`] is the state machine; [`Rooms`] holds every
//! room in memory, answers the list queries from memory, counts and logs every transition, and
//! hands changed rows to [`writer::RoomWriter`], which persists them behind the request. At
//! start the rooms that were not offline are restored from the database; their ingest must be
//! confirmed again within `rooms.restore_confirm_ms`.
//!
//! Timers (grace periods, chat expiry) advance when an input arrives and in the `sweep_rooms`
//! job, so detection is as fine as that job's schedule (every second by default).
//!
//! **Architecture invariant:** no I/O under the table's lock, no database call on a query; the
//! clock is always passed in.

pub mod machine;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::RwLock;
use std::time::Duration;

use serde::Serialize;

use crate::metrics as m;
use crate::policy::rooms::RoomSettings;
use crate::signals::IngestSource;
use crate::store::{Db, RoomRow};

pub use machine::{Evidence, Ingest, Room, RoomState, Transition};
pub use writer::RoomWriter;

/// Longest number of rooms reloaded at start.
const RESTORE_LIMIT: i64 = 1_000_000;
/// Most rooms one chat node's heartbeat may list.
pub const MAX_ROOMS_PER_NODE: usize = 100_000;

/// One provider's observation of an anchor's stream.
#[derive(Debug, Clone, Copy)]
pub struct IngestEvent<'a> {
    pub anchor_id: &'a str,
    pub region: &'a str,
    pub stream_id: &'a str,
    pub provider: &'a str,
    pub source: IngestSource,
    pub evidence: Evidence,
}

/// One provider's ingest, as answered by the API.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IngestView {
    pub provider: String,
    /// The provider carries the stream now.
    pub carrying: bool,
    pub publishing: bool,
    pub flow_seen: bool,
    /// The last probe or stats verdict.
    pub healthy: Option<bool>,
    pub bitrate_kbps: Option<f64>,
    pub source: IngestSource,
    pub last_evidence_ms: i64,
}

/// A room, as answered by the API.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RoomView {
    pub anchor_id: String,
    pub state: RoomState,
    /// When the room entered its state (unix ms); `null` for an anchor never seen.
    pub since_ms: Option<i64>,
    /// How long it has held that state.
    pub held_ms: Option<i64>,
    pub region: String,
    pub stream_id: Option<String>,
    /// Providers carrying the stream now.
    pub providers: Vec<String>,
    /// 0 to 1: the best carrying provider's health (1: probed healthy), halved while a
    /// required chat room is disconnected; 0 when offline.
    pub health: f64,
    pub chat_connected: bool,
    pub ingest: Vec<IngestView>,
}

impl RoomView {
    /// An anchor livesteer knows nothing about: offline.
    pub fn unknown(anchor_id: &str) -> RoomView {
        RoomView {
            anchor_id: anchor_id.to_string(),
            state: RoomState::Offline,
            since_ms: None,
            held_ms: None,
            region: String::new(),
            stream_id: None,
            providers: Vec::new(),
            health: 0.0,
            chat_connected: false,
            ingest: Vec::new(),
        }
    }

    fn of(room: &Room, s: &RoomSettings, now_ms: i64) -> RoomView {
        RoomView {
            anchor_id: room.anchor_id.clone(),
            state: room.state,
            since_ms: Some(room.since_ms),
            held_ms: Some((now_ms - room.since_ms).max(0)),
            region: room.region.clone(),
            stream_id: room.stream_id.clone(),
            providers: room.carrying(s, now_ms),
            health: (room.health(s, now_ms) * 100.0).round() / 100.0,
            chat_connected: room.chat_connected(s, now_ms),
            ingest: room
                .ingest
                .iter()
                .map(|(p, i)| IngestView {
                    provider: p.clone(),
                    carrying: i.up(s, now_ms),
                    publishing: i.publishing,
                    flow_seen: i.flow_seen,
                    healthy: i.healthy,
                    bitrate_kbps: i.bitrate_kbps,
                    source: i.source,
                    last_evidence_ms: i.last_evidence_ms,
                })
                .collect(),
        }
    }
}

/// A page of `GET /v1/rooms`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub rooms: Vec<RoomView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What a list query asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `None`: every state.
    pub state: Option<RoomState>,
    pub region: Option<String>,
    /// The last anchor id of the previous page.
    pub cursor: Option<String>,
    pub limit: usize,
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepSummary {
    pub transitions: usize,
    pub forgotten: usize,
}

struct Slot {
    room: Room,
    /// What was last handed to the writer or merged from another replica
    /// ([`fingerprint`]).
    saved: Option<Fingerprint>,
    /// `updated_ms` of the row last written or merged: an older row from another replica is
    /// not merged.
    stamp: i64,
}

#[derive(Default)]
struct Inner {
    rooms: BTreeMap<String, Slot>,
    /// Chat node → rooms its last heartbeat listed.
    node_rooms: HashMap<String, BTreeSet<String>>,
    counts: [usize; 4],
}

/// Every room, in memory.
pub struct Rooms {
    inner: RwLock<Inner>,
    writer: RoomWriter,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

fn row_of(room: &Room, s: &RoomSettings, now_ms: i64) -> RoomRow {
    RoomRow {
        record: serde_json::to_string(room).unwrap_or_default(),
        ..bare_row(room, s, now_ms)
    }
}

/// [`row_of`] without the record.
fn bare_row(room: &Room, s: &RoomSettings, now_ms: i64) -> RoomRow {
    RoomRow {
        anchor_id: room.anchor_id.clone(),
        state: room.state.as_str().to_string(),
        since_ms: room.since_ms,
        region: room.region.clone(),
        stream_id: room.stream_id.clone(),
        providers: serde_json::to_string(&room.carrying(s, now_ms)).unwrap_or_else(|_| "[]".into()),
        chat_connected: i32::from(room.chat_connected(s, now_ms)),
        health_pct: (room.health(s, now_ms) * 100.0).round() as i32,
        updated_ms: now_ms,
        record: String::new(),
    }
}

/// What decides whether a room must be written again: its row without the health figure and
/// the stamp, and its record with chat nodes' times rounded down to a quarter of the chat TTL
/// (a chat node's heartbeat refreshes every room it lists; rewriting them all on every beat
/// would cost a row per room and beat, while other replicas only need the time before it is
/// a quarter TTL stale).
fn fingerprint(room: &Room, s: &RoomSettings, now_ms: i64) -> Fingerprint {
    let step = (s.chat_ttl_ms / 4).max(1);
    let mut coarse = room.clone();
    for at in coarse.chat_nodes.values_mut() {
        *at -= at.rem_euclid(step);
    }
    let row = RoomRow {
        health_pct: 0,
        updated_ms: 0,
        ..bare_row(room, s, now_ms)
    };
    (row, coarse)
}

/// See [`fingerprint`].
type Fingerprint = (RoomRow, Room);

/// `base` with what `other` observed later added: the stream (when `base` has none), a
/// provider's ingest of that stream with later evidence (or one `base` lacks), chat nodes'
/// later times and a later explicit chat word. State and timers stay `base`'s. Two replicas
/// that took inputs for one room within a flush interval of each other thus both end up with
/// both inputs, whichever row is written last; and a replica whose stall timer fired just
/// before another's evidence reached it cannot erase that evidence.
fn union(mut base: Room, other: &Room) -> Room {
    if base.stream_id.is_none() {
        base.stream_id = other.stream_id.clone();
    }
    for (p, theirs) in &other.ingest {
        if base.stream_id.as_deref() != Some(theirs.stream_id.as_str()) {
            continue;
        }
        let later = base
            .ingest
            .get(p)
            .is_none_or(|mine| mine.last_evidence_ms < theirs.last_evidence_ms);
        if later {
            base.ingest.insert(p.clone(), theirs.clone());
        }
    }
    if base.region.is_empty() {
        base.region = other.region.clone();
    }
    for (node, at) in &other.chat_nodes {
        let e = base.chat_nodes.entry(node.clone()).or_insert(*at);
        *e = (*e).max(*at);
    }
    if let Some((_, theirs)) = other.chat_explicit
        && base.chat_explicit.is_none_or(|(_, mine)| mine < theirs)
    {
        base.chat_explicit = other.chat_explicit;
    }
    base
}

impl Rooms {
    /// An empty table writing through `writer`.
    pub fn new(writer: RoomWriter) -> Rooms {
        Rooms {
            inner: RwLock::new(Inner::default()),
            writer,
        }
    }

    /// Loads the stored rooms that were not offline and starts the writer.
    pub async fn start(
        db: Db,
        flush_interval: Duration,
        s: &RoomSettings,
        now_ms: i64,
    ) -> anyhow::Result<(Rooms, tokio::task::JoinHandle<()>)> {
        let rows = db.call(|db| db.rooms_not_offline(RESTORE_LIMIT)).await?;
        let (writer, task) = RoomWriter::spawn(db, flush_interval);
        let rooms = Rooms::new(writer);
        rooms.restore(&rows, s, now_ms);
        tracing::info!(rooms = rows.len(), "room states restored");
        Ok((rooms, task))
    }

    /// Puts stored rooms back in memory. Each carrying provider must confirm its ingest within
    /// `restore_confirm_ms` (a callback or a healthy probe), or it counts as down.
    pub fn restore(&self, rows: &[RoomRow], s: &RoomSettings, now_ms: i64) {
        let mut inner = self.write();
        for row in rows {
            let Some(state) = RoomState::parse(&row.state) else {
                tracing::warn!(anchor = %row.anchor_id, state = %row.state, "skipping stored room");
                continue;
            };
            let mut room = Room::new(&row.anchor_id, row.since_ms);
            room.state = state;
            room.region = row.region.clone();
            room.stream_id = row.stream_id.clone();
            if row.chat_connected != 0 {
                room.chat_explicit = Some((true, row.updated_ms));
            }
            if let Some(stream) = &row.stream_id {
                for p in row.provider_ids() {
                    room.ingest.insert(
                        p,
                        Ingest {
                            stream_id: stream.clone(),
                            publishing: true,
                            since_ms: row.since_ms,
                            flow_seen: true,
                            healthy: None,
                            failures: 0,
                            bitrate_kbps: None,
                            source: IngestSource::Callback,
                            last_evidence_ms: row.updated_ms,
                            deadline_ms: Some(now_ms + s.restore_confirm_ms),
                        },
                    );
                }
            }
            let saved = Some(fingerprint(&room, s, now_ms));
            let stamp = row.updated_ms;
            if let Some(old) = inner
                .rooms
                .insert(row.anchor_id.clone(), Slot { room, saved, stamp })
            {
                inner.counts[old.room.state.index()] -= 1;
            }
            inner.counts[state.index()] += 1;
        }
        publish_counts(&inner.counts);
    }

    /// Applies one provider's observation and runs the machine.
    pub fn ingest(&self, s: &RoomSettings, ev: &IngestEvent<'_>, now_ms: i64) -> RoomView {
        let mut inner = self.write();
        let inner = &mut *inner;
        let slot = slot(inner, ev.anchor_id, now_ms);
        if !ev.region.is_empty() {
            slot.room.region = ev.region.to_string();
        }
        slot.room
            .observe(ev.provider, ev.stream_id, ev.source, ev.evidence, s, now_ms);
        let view = settle(inner, &self.writer, ev.anchor_id, s, now_ms);
        publish_counts(&inner.counts);
        view
    }

    /// The app's word on the anchor's chat room.
    pub fn chat(
        &self,
        s: &RoomSettings,
        anchor_id: &str,
        connected: bool,
        now_ms: i64,
    ) -> RoomView {
        let mut inner = self.write();
        let inner = &mut *inner;
        let slot = slot(inner, anchor_id, now_ms);
        slot.room.chat_explicit = Some((connected, now_ms));
        if !connected {
            slot.room.chat_nodes.clear();
        }
        let view = settle(inner, &self.writer, anchor_id, s, now_ms);
        publish_counts(&inner.counts);
        view
    }

    /// A chat node's heartbeat listing every room connected on it (for the node heartbeat,
    /// `POST /v1/nodes/heartbeat`). The rooms listed have chat presence from `node_id` until
    /// `rooms.chat_ttl_ms` passes without another heartbeat listing them; rooms the node's
    /// previous heartbeat listed and this one does not lose that node's presence at once.
    /// Ids that are not valid anchor ids are skipped, and at most [`MAX_ROOMS_PER_NODE`] are
    /// taken. Returns the number of rooms taken.
    pub fn chat_presence_from_node(
        &self,
        s: &RoomSettings,
        node_id: &str,
        anchor_ids: &[String],
        now_ms: i64,
    ) -> usize {
        let listed: BTreeSet<String> = anchor_ids
            .iter()
            .filter(|a| crate::vocab::ids::is_valid_anchor_id(a))
            .take(MAX_ROOMS_PER_NODE)
            .cloned()
            .collect();
        let mut inner = self.write();
        let inner = &mut *inner;
        let previous = inner
            .node_rooms
            .insert(node_id.to_string(), listed.clone())
            .unwrap_or_default();
        let mut touched: Vec<String> = Vec::new();
        for gone in previous.difference(&listed) {
            if let Some(slot) = inner.rooms.get_mut(gone) {
                slot.room.chat_nodes.remove(node_id);
                touched.push(gone.clone());
            }
        }
        for anchor in &listed {
            let slot = slot(inner, anchor, now_ms);
            slot.room.chat_nodes.insert(node_id.to_string(), now_ms);
            touched.push(anchor.clone());
        }
        if listed.is_empty() {
            inner.node_rooms.remove(node_id);
        }
        for anchor in &touched {
            settle(inner, &self.writer, anchor, s, now_ms);
        }
        publish_counts(&inner.counts);
        listed.len()
    }

    /// Advances every room's timers; forgets rooms offline for `forget_offline_ms` with no
    /// chat presence left (they stay stored).
    pub fn sweep(&self, s: &RoomSettings, now_ms: i64) -> SweepSummary {
        let mut inner = self.write();
        let inner = &mut *inner;
        let mut summary = SweepSummary::default();
        let anchors: Vec<String> = inner.rooms.keys().cloned().collect();
        for anchor in &anchors {
            let before = inner.rooms[anchor].room.since_ms;
            let state = inner.rooms[anchor].room.state;
            settle(inner, &self.writer, anchor, s, now_ms);
            let slot = &inner.rooms[anchor];
            if slot.room.state != state || slot.room.since_ms != before {
                summary.transitions += 1;
            }
        }
        // Expired chat-node entries.
        for slot in inner.rooms.values_mut() {
            slot.room
                .chat_nodes
                .retain(|_, at| now_ms - *at < s.chat_ttl_ms);
        }
        let forget: Vec<String> = inner
            .rooms
            .iter()
            .filter(|(_, sl)| {
                sl.room.state == RoomState::Offline
                    && now_ms - sl.room.since_ms >= s.forget_offline_ms
                    && sl.room.chat_nodes.is_empty()
                    && !matches!(sl.room.chat_explicit, Some((true, _)))
                    && !sl.room.ingest.values().any(|i| i.publishing)
            })
            .map(|(a, _)| a.clone())
            .collect();
        for a in forget {
            inner.rooms.remove(&a);
            inner.counts[RoomState::Offline.index()] -= 1;
            summary.forgotten += 1;
        }
        publish_counts(&inner.counts);
        summary
    }

    /// Takes in rooms as stored (rows read after a notification or by the catch-up). The state
    /// and timers come from the newer of the row and what this replica last wrote or merged for
    /// the anchor; the evidence is the [`union`] of both. The machine runs, and when the result
    /// differs from the row the room is written again, stamped past it, so what this replica
    /// alone had observed reaches the others too. Rows without a record (written before
    /// cluster mode) are skipped. Returns how many rooms changed.
    pub fn merge(&self, rows: &[RoomRow], s: &RoomSettings, now_ms: i64) -> usize {
        let mut inner = self.write();
        let inner = &mut *inner;
        let mut taken = 0;
        for row in rows {
            if row.record.is_empty() {
                continue;
            }
            let remote: Room = match serde_json::from_str(&row.record) {
                Ok(r) => r,
                Err(error) => {
                    tracing::warn!(anchor = %row.anchor_id, %error, "unreadable room record skipped");
                    continue;
                }
            };
            if remote.anchor_id != row.anchor_id {
                continue;
            }
            let Some(slot) = inner.rooms.get_mut(&row.anchor_id) else {
                inner.counts[remote.state.index()] += 1;
                let saved = Some(fingerprint(&remote, s, now_ms));
                let slot = Slot {
                    room: remote,
                    saved,
                    stamp: row.updated_ms,
                };
                inner.rooms.insert(row.anchor_id.clone(), slot);
                taken += 1;
                continue;
            };
            let newer = row.updated_ms > slot.stamp;
            let merged = if newer {
                union(remote.clone(), &slot.room)
            } else {
                union(slot.room.clone(), &remote)
            };
            // The row is what is stored now: when this replica holds more than it (evidence
            // the row lacks, or a state it reached later), the room is written again, stamped
            // past the row, so that it replaces it. Two replicas may stamp rows of one room
            // alike; the stored one then lacks the other's evidence until this rewrite.
            slot.stamp = slot.stamp.max(row.updated_ms);
            slot.saved = Some(fingerprint(&remote, s, now_ms));
            let changed = merged != slot.room;
            if changed {
                let (from, to) = (slot.room.state, merged.state);
                slot.room = merged;
                inner.counts[from.index()] -= 1;
                inner.counts[to.index()] += 1;
                taken += 1;
            }
            settle(inner, &self.writer, &row.anchor_id, s, now_ms);
        }
        if taken > 0 {
            publish_counts(&inner.counts);
        }
        taken
    }

    /// One room.
    pub fn get(&self, s: &RoomSettings, anchor_id: &str, now_ms: i64) -> Option<RoomView> {
        let inner = self.read();
        inner
            .rooms
            .get(anchor_id)
            .map(|sl| RoomView::of(&sl.room, s, now_ms))
    }

    /// A page of rooms in anchor id order.
    pub fn list(&self, s: &RoomSettings, q: &ListQuery, now_ms: i64) -> Page {
        let inner = self.read();
        let start = match &q.cursor {
            Some(c) => Bound::Excluded(c.as_str()),
            None => Bound::Unbounded,
        };
        let limit = q.limit.max(1);
        let mut rooms = Vec::with_capacity(limit.min(1_024));
        let mut more = false;
        for (_, sl) in inner
            .rooms
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(_, sl)| q.state.is_none_or(|st| sl.room.state == st))
            .filter(|(_, sl)| q.region.as_deref().is_none_or(|r| sl.room.region == r))
        {
            if rooms.len() == limit {
                more = true;
                break;
            }
            rooms.push(RoomView::of(&sl.room, s, now_ms));
        }
        let next_cursor = if more {
            rooms.last().map(|r| r.anchor_id.clone())
        } else {
            None
        };
        Page { rooms, next_cursor }
    }

    /// The rooms of these anchors, in the order asked; unknown anchors are offline.
    pub fn many(&self, s: &RoomSettings, anchor_ids: &[String], now_ms: i64) -> Vec<RoomView> {
        let inner = self.read();
        anchor_ids
            .iter()
            .map(|a| match inner.rooms.get(a) {
                Some(sl) => RoomView::of(&sl.room, s, now_ms),
                None => RoomView::unknown(a),
            })
            .collect()
    }

    /// Rooms in memory by state (`RoomState::ALL` order).
    pub fn counts(&self) -> [usize; 4] {
        self.read().counts
    }

    /// Waits until every change so far is written.
    pub async fn flush(&self) -> Result<(), String> {
        self.writer.flush().await
    }

    /// Changes accepted and not yet written.
    pub fn write_queue_depth(&self) -> usize {
        self.writer.depth()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn slot<'a>(inner: &'a mut Inner, anchor_id: &str, now_ms: i64) -> &'a mut Slot {
    if !inner.rooms.contains_key(anchor_id) {
        inner.counts[RoomState::Offline.index()] += 1;
    }
    inner
        .rooms
        .entry(anchor_id.to_string())
        .or_insert_with(|| Slot {
            room: Room::new(anchor_id, now_ms),
            saved: None,
            stamp: i64::MIN,
        })
}

/// Runs the machine for one room, counts and logs its transitions, and queues its row when
/// what is stored about it changed.
fn settle(
    inner: &mut Inner,
    writer: &RoomWriter,
    anchor_id: &str,
    s: &RoomSettings,
    now_ms: i64,
) -> RoomView {
    let Some(slot) = inner.rooms.get_mut(anchor_id) else {
        return RoomView::unknown(anchor_id);
    };
    let transitions = slot.room.evaluate(s, now_ms);
    for t in &transitions {
        inner.counts[t.from.index()] -= 1;
        inner.counts[t.to.index()] += 1;
        metrics::counter!(m::ROOM_TRANSITIONS.name, "from" => t.from.as_str(), "to" => t.to.as_str())
            .increment(1);
        tracing::info!(anchor = %anchor_id, from = %t.from, to = %t.to, reason = t.reason,
            providers = ?slot.room.carrying(s, now_ms), "room state changed");
    }
    slot.room.tidy_offline();
    let fp = fingerprint(&slot.room, s, now_ms);
    if slot.saved.as_ref() != Some(&fp) {
        slot.saved = Some(fp);
        // Newer than anything merged, so other replicas take it.
        let row = row_of(&slot.room, s, now_ms.max(slot.stamp.saturating_add(1)));
        slot.stamp = row.updated_ms;
        writer.save(row);
    }
    RoomView::of(&slot.room, s, now_ms)
}

fn publish_counts(counts: &[usize; 4]) {
    for st in RoomState::ALL {
        metrics::gauge!(m::ROOMS.name, "state" => st.as_str()).set(counts[st.index()] as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::TestDb;

    fn settings() -> RoomSettings {
        RoomSettings {
            chat_required: true,
            confirm_ms: 0,
            stall_grace_ms: 1_000,
            offline_grace_ms: 2_000,
            chat_ttl_ms: 10_000,
            ..RoomSettings::default()
        }
    }

    fn publish<'a>(anchor: &'a str, stream: &'a str) -> IngestEvent<'a> {
        IngestEvent {
            anchor_id: anchor,
            region: "tw",
            stream_id: stream,
            provider: "p",
            source: IngestSource::Callback,
            evidence: Evidence::Publish,
        }
    }

    #[tokio::test]
    async fn node_heartbeats_give_and_take_chat_presence() {
        let db = TestDb::sqlite();
        let (writer, _task) = RoomWriter::spawn(db.db().clone(), Duration::from_millis(5));
        let rooms = Rooms::new(writer);
        let s = settings();
        rooms.ingest(&s, &publish("a1", "s1"), 0);
        rooms.ingest(&s, &publish("a2", "s2"), 0);
        assert_eq!(rooms.get(&s, "a1", 0).unwrap().state, RoomState::Starting);

        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rooms.chat_presence_from_node(&s, "chat-1", &ids(&["a1", "a2", "bad id!"]), 100),
            2
        );
        assert_eq!(rooms.get(&s, "a1", 100).unwrap().state, RoomState::Live);
        assert_eq!(rooms.get(&s, "a2", 100).unwrap().state, RoomState::Live);

        // The next heartbeat drops a2: its chat presence goes at once, and after the stall
        // grace the room is stalled.
        rooms.chat_presence_from_node(&s, "chat-1", &ids(&["a1"]), 200);
        assert!(!rooms.get(&s, "a2", 200).unwrap().chat_connected);
        rooms.sweep(&s, 1_200);
        assert_eq!(
            rooms.get(&s, "a2", 1_200).unwrap().state,
            RoomState::Stalled
        );
        assert_eq!(rooms.get(&s, "a1", 1_200).unwrap().state, RoomState::Live);

        // Without another heartbeat, a1's presence expires after the chat TTL.
        rooms.sweep(&s, 10_100);
        assert!(rooms.get(&s, "a1", 10_100).unwrap().chat_connected);
        rooms.sweep(&s, 10_200);
        assert!(!rooms.get(&s, "a1", 10_200).unwrap().chat_connected);
        rooms.sweep(&s, 11_200);
        assert_eq!(
            rooms.get(&s, "a1", 11_200).unwrap().state,
            RoomState::Stalled
        );
        // a2 stalled past the offline grace: offline, and since its ingest is still up,
        // starting again (waiting for chat).
        assert_eq!(
            rooms.get(&s, "a2", 11_200).unwrap().state,
            RoomState::Starting
        );
        assert_eq!(rooms.counts(), [0, 1, 0, 1]);

        rooms.flush().await.unwrap();
        let stored = db.get_room("a1").unwrap().unwrap();
        assert_eq!(stored.state, "stalled");
        assert_eq!(stored.chat_connected, 0);
    }

    #[tokio::test]
    async fn pages_filter_by_state_and_region() {
        let db = TestDb::sqlite();
        let (writer, _task) = RoomWriter::spawn(db.db().clone(), Duration::from_millis(5));
        let rooms = Rooms::new(writer);
        let s = RoomSettings {
            chat_required: false,
            ..settings()
        };
        for i in 0..5 {
            let a = format!("a{i}");
            let st = format!("s{i}");
            let mut ev = publish(&a, &st);
            ev.region = if i % 2 == 0 { "tw" } else { "hk" };
            rooms.ingest(&s, &ev, 0);
        }
        let q = |cursor: Option<String>, region: Option<&str>| ListQuery {
            state: Some(RoomState::Live),
            region: region.map(str::to_string),
            cursor,
            limit: 2,
        };
        let p1 = rooms.list(&s, &q(None, None), 10);
        assert_eq!(
            p1.rooms
                .iter()
                .map(|r| r.anchor_id.as_str())
                .collect::<Vec<_>>(),
            ["a0", "a1"]
        );
        let p2 = rooms.list(&s, &q(p1.next_cursor.clone(), None), 10);
        assert_eq!(p2.rooms.len(), 2);
        let p3 = rooms.list(&s, &q(p2.next_cursor.clone(), None), 10);
        assert_eq!(p3.rooms.len(), 1);
        assert!(p3.next_cursor.is_none());
        let tw = rooms.list(&s, &q(None, Some("tw")), 10);
        assert_eq!(tw.rooms.len(), 2);
        assert!(tw.rooms.iter().all(|r| r.region == "tw"));
        let many = rooms.many(&s, &["a4".into(), "nobody".into()], 10);
        assert_eq!(many[0].state, RoomState::Live);
        assert_eq!(many[1], RoomView::unknown("nobody"));
    }

    /// A publish reaches replica A while the anchor's chat connects on replica B, each before
    /// the other's row arrived: after exchanging rows (in either order) both hold both inputs
    /// and agree that the room is live.
    #[tokio::test]
    async fn rooms_changed_on_two_replicas_at_once_merge_both_inputs() {
        let (da, db_) = (TestDb::sqlite(), TestDb::sqlite());
        let (wa, _ta) = RoomWriter::spawn(da.db().clone(), Duration::from_millis(5));
        let (wb, _tb) = RoomWriter::spawn(db_.db().clone(), Duration::from_millis(5));
        let (a, b) = (Rooms::new(wa), Rooms::new(wb));
        let s = RoomSettings {
            confirm_ms: 0,
            ..settings()
        };
        a.ingest(&s, &publish("a1", "s1"), 100);
        b.chat(&s, "a1", true, 110);
        assert_eq!(a.get(&s, "a1", 120).unwrap().state, RoomState::Starting);
        assert_eq!(b.get(&s, "a1", 120).unwrap().state, RoomState::Offline);
        a.flush().await.unwrap();
        b.flush().await.unwrap();
        let row_a = da.get_room("a1").unwrap().unwrap();
        let row_b = db_.get_room("a1").unwrap().unwrap();
        // B hears of A's older row, A of B's newer one.
        assert_eq!(b.merge(std::slice::from_ref(&row_a), &s, 130), 1);
        assert_eq!(a.merge(std::slice::from_ref(&row_b), &s, 130), 1);
        for (name, rooms) in [("A", &a), ("B", &b)] {
            let room = rooms.get(&s, "a1", 130).unwrap();
            assert_eq!(room.state, RoomState::Live, "{name}: {room:?}");
            assert!(room.chat_connected, "{name}");
            assert_eq!(room.providers, ["p"], "{name}");
        }
        // Each wrote the union; taking the other's changes nothing more.
        a.flush().await.unwrap();
        b.flush().await.unwrap();
        let row_a = da.get_room("a1").unwrap().unwrap();
        let row_b = db_.get_room("a1").unwrap().unwrap();
        b.merge(&[row_a], &s, 140);
        a.merge(&[row_b], &s, 140);
        assert_eq!(a.get(&s, "a1", 140).unwrap().state, RoomState::Live);
        assert_eq!(b.get(&s, "a1", 140).unwrap().state, RoomState::Live);
        assert_eq!(a.counts(), b.counts());
    }
}
