//! The room state machine, as pure functions over one room's record and the clock's reading.
//!
//! ```text
//!            ingest up                flow seen (or up for confirm_ms), chat ok
//!  offline ───────────► starting ─────────────────────────────────────────────► live
//!     ▲                    │ ingest gone                                    │    ▲
//!     │◄───────────────────┘                 ingest or chat down for        │    │ ingest up
//!     │                                      stall_grace_ms                 ▼    │ and chat ok
//!     └──────────────────────────────────────────────────────────────── stalled ─┘
//!                 stalled for offline_grace_ms
//! ```
//!
//! Hysteresis is on the way down: a live room survives a gap shorter than `stall_grace_ms`
//! (an encoder reconnecting), and a stalled room stays listed as stalled, not offline, for
//! `offline_grace_ms`. On the way up a room needs evidence of flow (an `on_update` callback, a
//! healthy probe or stats reading) or its ingest up for `confirm_ms`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::rooms::RoomSettings;
use crate::signals::IngestSource;

/// Where a room is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RoomState {
    Offline,
    Starting,
    Live,
    Stalled,
}

impl RoomState {
    pub const ALL: [RoomState; 4] = [
        RoomState::Offline,
        RoomState::Starting,
        RoomState::Live,
        RoomState::Stalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Offline => "offline",
            RoomState::Starting => "starting",
            RoomState::Live => "live",
            RoomState::Stalled => "stalled",
        }
    }

    pub fn parse(s: &str) -> Option<RoomState> {
        RoomState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for RoomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an input says about one provider's ingest of the anchor's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evidence {
    /// The origin accepted a publish (callback).
    Publish,
    /// The publish ended (callback).
    Unpublish,
    /// The stream is flowing: an `on_update`, a healthy probe or stats reading.
    Flowing { bitrate_kbps: Option<f64> },
    /// A probe or stats reading found it not flowing (no bitrate, not advancing, stale).
    NotFlowing { bitrate_kbps: Option<f64> },
}

/// One provider's ingest as last observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingest {
    /// The stream key this observation is about.
    pub stream_id: String,
    /// Publishing, as last said by a callback or a probe.
    pub publishing: bool,
    /// When `publishing` last changed.
    pub since_ms: i64,
    /// Flow was observed since the publish began.
    pub flow_seen: bool,
    /// The last probe or stats verdict, if any.
    pub healthy: Option<bool>,
    /// Consecutive unhealthy probe verdicts.
    pub failures: u32,
    pub bitrate_kbps: Option<f64>,
    pub source: IngestSource,
    pub last_evidence_ms: i64,
    /// Evidence must be repeated by then (evidence TTL, or confirmation after a restart).
    pub deadline_ms: Option<i64>,
}

impl Ingest {
    /// Whether this provider carries the stream now.
    pub fn up(&self, s: &RoomSettings, now_ms: i64) -> bool {
        self.publishing
            && self.failures < s.probe_failures_to_down
            && self.deadline_ms.is_none_or(|d| now_ms < d)
    }

    /// Whether flow is established: seen, or up for `confirm_ms`.
    fn flowing(&self, s: &RoomSettings, now_ms: i64) -> bool {
        self.up(s, now_ms) && (self.flow_seen || now_ms - self.since_ms >= s.confirm_ms)
    }

    /// 0..1: how well this provider carries the stream.
    fn score(&self, s: &RoomSettings, now_ms: i64) -> f64 {
        if !self.up(s, now_ms) {
            return 0.0;
        }
        match (self.healthy, self.flow_seen) {
            (Some(true), _) => 1.0,
            (None, true) => 0.9,
            (None, false) => 0.6,
            (Some(false), _) => 0.3,
        }
    }
}

/// One anchor's room (stored whole as JSON in `rooms.record`, which other replicas merge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub anchor_id: String,
    pub region: String,
    pub stream_id: Option<String>,
    pub state: RoomState,
    /// When `state` was entered.
    pub since_ms: i64,
    /// By provider id.
    pub ingest: BTreeMap<String, Ingest>,
    /// The app's last explicit word on chat (`POST /v1/rooms/{id}/chat`): connected, when.
    pub chat_explicit: Option<(bool, i64)>,
    /// Chat nodes whose heartbeat listed this room, with the time of the latest.
    pub chat_nodes: BTreeMap<String, i64>,
    /// Since when the room has lacked ingest or chat (for the stall grace).
    pub bad_since_ms: Option<i64>,
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: RoomState,
    pub to: RoomState,
    pub reason: &'static str,
}

impl Room {
    /// A room with nothing known, offline since `now_ms`.
    pub fn new(anchor_id: &str, now_ms: i64) -> Room {
        Room {
            anchor_id: anchor_id.to_string(),
            region: String::new(),
            stream_id: None,
            state: RoomState::Offline,
            since_ms: now_ms,
            ingest: BTreeMap::new(),
            chat_explicit: None,
            chat_nodes: BTreeMap::new(),
            bad_since_ms: None,
        }
    }

    /// Providers carrying the stream now.
    pub fn carrying(&self, s: &RoomSettings, now_ms: i64) -> Vec<String> {
        self.ingest
            .iter()
            .filter(|(_, i)| i.up(s, now_ms))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Whether the chat room is connected.
    pub fn chat_connected(&self, s: &RoomSettings, now_ms: i64) -> bool {
        let by_node = self
            .chat_nodes
            .values()
            .any(|&at| now_ms - at < s.chat_ttl_ms);
        by_node || matches!(self.chat_explicit, Some((true, _)))
    }

    /// 0..1: the best provider's score, halved while chat is required and missing.
    pub fn health(&self, s: &RoomSettings, now_ms: i64) -> f64 {
        if self.state == RoomState::Offline {
            return 0.0;
        }
        let best = self
            .ingest
            .values()
            .map(|i| i.score(s, now_ms))
            .fold(0.0, f64::max);
        if s.chat_required && !self.chat_connected(s, now_ms) {
            best * 0.5
        } else {
            best
        }
    }

    /// Applies one provider's evidence about stream `stream_id`. Evidence about another stream
    /// than the room's current one is ignored unless it is a publish (a new stream takes the
    /// room over) or the room has no stream yet. Returns whether anything changed.
    pub fn observe(
        &mut self,
        provider: &str,
        stream_id: &str,
        source: IngestSource,
        evidence: Evidence,
        s: &RoomSettings,
        now_ms: i64,
    ) -> bool {
        let current = self.stream_id.as_deref();
        if current.is_some_and(|c| c != stream_id) {
            // A publish takes the room over; flow seen by a probe only when the current stream
            // has no provider publishing it.
            let takes_over = match evidence {
                Evidence::Publish => true,
                Evidence::Flowing { .. } => !self.ingest.values().any(|i| i.publishing),
                _ => false,
            };
            if !takes_over {
                return false;
            }
            // A new stream for the anchor: observations of the old one no longer count.
            self.ingest.retain(|_, i| i.stream_id == stream_id);
        }
        self.stream_id = Some(stream_id.to_string());
        let deadline = (s.evidence_ttl_ms > 0).then(|| now_ms + s.evidence_ttl_ms);
        let entry = self
            .ingest
            .entry(provider.to_string())
            .or_insert_with(|| Ingest {
                stream_id: stream_id.to_string(),
                publishing: false,
                since_ms: now_ms,
                flow_seen: false,
                healthy: None,
                failures: 0,
                bitrate_kbps: None,
                source,
                last_evidence_ms: now_ms,
                deadline_ms: None,
            });
        let before = entry.clone();
        entry.stream_id = stream_id.to_string();
        entry.source = source;
        entry.last_evidence_ms = now_ms;
        match evidence {
            Evidence::Publish => {
                if !entry.publishing {
                    entry.publishing = true;
                    entry.since_ms = now_ms;
                    entry.flow_seen = false;
                    entry.healthy = None;
                }
                entry.failures = 0;
                entry.deadline_ms = deadline;
            }
            Evidence::Unpublish => {
                if entry.publishing {
                    entry.publishing = false;
                    entry.since_ms = now_ms;
                }
                entry.flow_seen = false;
                entry.bitrate_kbps = None;
                entry.deadline_ms = None;
            }
            Evidence::Flowing { bitrate_kbps } => {
                if !entry.publishing {
                    entry.publishing = true;
                    entry.since_ms = now_ms;
                }
                entry.flow_seen = true;
                entry.failures = 0;
                entry.deadline_ms = deadline;
                if source != IngestSource::Callback {
                    entry.healthy = Some(true);
                }
                if bitrate_kbps.is_some() {
                    entry.bitrate_kbps = bitrate_kbps;
                }
            }
            Evidence::NotFlowing { bitrate_kbps } => {
                entry.healthy = Some(false);
                entry.failures = entry.failures.saturating_add(1);
                entry.bitrate_kbps = bitrate_kbps;
            }
        }
        *entry != before
    }

    /// Runs the machine at `now_ms` until it rests; returns the transitions taken.
    pub fn evaluate(&mut self, s: &RoomSettings, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        for _ in 0..4 {
            match self.step(s, now_ms) {
                Some(t) => {
                    self.state = t.to;
                    self.since_ms = now_ms;
                    out.push(t);
                }
                None => break,
            }
        }
        out
    }

    fn step(&mut self, s: &RoomSettings, now_ms: i64) -> Option<Transition> {
        let ingest = self.ingest.values().any(|i| i.up(s, now_ms));
        let flowing = self.ingest.values().any(|i| i.flowing(s, now_ms));
        let chat = !s.chat_required || self.chat_connected(s, now_ms);
        let ok = ingest && chat;
        if ok {
            self.bad_since_ms = None;
        } else if self.bad_since_ms.is_none() {
            self.bad_since_ms = Some(now_ms);
        }
        let t = |from, to, reason| Some(Transition { from, to, reason });
        match self.state {
            RoomState::Offline if ingest => t(RoomState::Offline, RoomState::Starting, "ingest up"),
            RoomState::Offline => None,
            RoomState::Starting if !ingest => t(
                RoomState::Starting,
                RoomState::Offline,
                "ingest gone before live",
            ),
            RoomState::Starting if flowing && chat => {
                t(RoomState::Starting, RoomState::Live, "ingest flowing")
            }
            RoomState::Starting => None,
            RoomState::Live => {
                let bad_for = now_ms - self.bad_since_ms.unwrap_or(now_ms);
                if !ok && bad_for >= s.stall_grace_ms {
                    let reason = if ingest {
                        "chat disconnected"
                    } else {
                        "ingest down"
                    };
                    t(RoomState::Live, RoomState::Stalled, reason)
                } else {
                    None
                }
            }
            RoomState::Stalled if ok => t(RoomState::Stalled, RoomState::Live, "recovered"),
            RoomState::Stalled if now_ms - self.since_ms >= s.offline_grace_ms => {
                t(RoomState::Stalled, RoomState::Offline, "offline grace over")
            }
            RoomState::Stalled => None,
        }
    }

    /// Forgets observations that no longer matter once offline.
    pub fn tidy_offline(&mut self) {
        if self.state == RoomState::Offline {
            self.ingest.retain(|_, i| i.publishing);
            self.bad_since_ms = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RoomSettings {
        RoomSettings {
            chat_required: true,
            confirm_ms: 2_000,
            stall_grace_ms: 5_000,
            offline_grace_ms: 30_000,
            chat_ttl_ms: 90_000,
            ..RoomSettings::default()
        }
    }

    fn states(ts: &[Transition]) -> Vec<(RoomState, RoomState)> {
        ts.iter().map(|t| (t.from, t.to)).collect()
    }

    use RoomState::*;

    fn publish(r: &mut Room, s: &RoomSettings, now: i64) {
        r.observe("p", "s1", IngestSource::Callback, Evidence::Publish, s, now);
    }

    #[test]
    fn publish_then_confirm_then_live() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_explicit = Some((true, 0));
        publish(&mut r, &s, 1_000);
        assert_eq!(states(&r.evaluate(&s, 1_000)), [(Offline, Starting)]);
        assert!(r.evaluate(&s, 2_999).is_empty());
        assert_eq!(states(&r.evaluate(&s, 3_000)), [(Starting, Live)]);
        assert_eq!(r.since_ms, 3_000);
    }

    #[test]
    fn flow_evidence_skips_the_confirmation_wait() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_explicit = Some((true, 0));
        publish(&mut r, &s, 0);
        let flowing = Evidence::Flowing {
            bitrate_kbps: Some(800.0),
        };
        r.observe("p", "s1", IngestSource::Callback, flowing, &s, 10);
        assert_eq!(
            states(&r.evaluate(&s, 10)),
            [(Offline, Starting), (Starting, Live)]
        );
    }

    #[test]
    fn chat_is_required_when_the_policy_says_so() {
        let mut s = settings();
        let mut r = Room::new("a", 0);
        publish(&mut r, &s, 0);
        assert_eq!(states(&r.evaluate(&s, 10_000)), [(Offline, Starting)]);
        s.chat_required = false;
        assert_eq!(states(&r.evaluate(&s, 10_000)), [(Starting, Live)]);
    }

    #[test]
    fn a_short_reconnect_keeps_the_room_live() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_explicit = Some((true, 0));
        publish(&mut r, &s, 0);
        r.evaluate(&s, 5_000);
        assert_eq!(r.state, Live);
        r.observe(
            "p",
            "s1",
            IngestSource::Callback,
            Evidence::Unpublish,
            &s,
            10_000,
        );
        assert!(r.evaluate(&s, 10_000).is_empty());
        assert!(r.evaluate(&s, 12_000).is_empty());
        publish(&mut r, &s, 12_000);
        assert!(r.evaluate(&s, 12_000).is_empty());
        assert!(r.evaluate(&s, 20_000).is_empty());
        assert_eq!(r.state, Live);
        assert_eq!(r.since_ms, 5_000);
    }

    #[test]
    fn a_long_gap_stalls_then_goes_offline() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_explicit = Some((true, 0));
        publish(&mut r, &s, 0);
        r.evaluate(&s, 5_000);
        r.observe(
            "p",
            "s1",
            IngestSource::Callback,
            Evidence::Unpublish,
            &s,
            10_000,
        );
        r.evaluate(&s, 10_000);
        assert!(r.evaluate(&s, 14_999).is_empty());
        assert_eq!(states(&r.evaluate(&s, 15_000)), [(Live, Stalled)]);
        assert!(r.evaluate(&s, 44_999).is_empty());
        assert_eq!(states(&r.evaluate(&s, 45_000)), [(Stalled, Offline)]);
        assert_eq!(r.health(&s, 45_000), 0.0);
    }

    #[test]
    fn a_stalled_room_recovers_on_republish() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_explicit = Some((true, 0));
        publish(&mut r, &s, 0);
        r.evaluate(&s, 5_000);
        r.observe(
            "p",
            "s1",
            IngestSource::Callback,
            Evidence::Unpublish,
            &s,
            10_000,
        );
        r.evaluate(&s, 10_000);
        r.evaluate(&s, 16_000);
        assert_eq!(r.state, Stalled);
        publish(&mut r, &s, 17_000);
        assert_eq!(states(&r.evaluate(&s, 17_000)), [(Stalled, Live)]);
    }

    #[test]
    fn unhealthy_probes_take_a_provider_down_after_the_threshold() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_explicit = Some((true, 0));
        publish(&mut r, &s, 0);
        r.evaluate(&s, 5_000);
        let bad = Evidence::NotFlowing {
            bitrate_kbps: Some(0.0),
        };
        for i in 0..2 {
            r.observe("p", "s1", IngestSource::Probe, bad, &s, 6_000 + i);
            assert!(r.carrying(&s, 6_000 + i).contains(&"p".to_string()));
        }
        r.observe("p", "s1", IngestSource::Probe, bad, &s, 7_000);
        assert!(r.carrying(&s, 7_000).is_empty());
        r.evaluate(&s, 7_000);
        assert_eq!(states(&r.evaluate(&s, 12_000)), [(Live, Stalled)]);
    }

    #[test]
    fn evidence_about_an_old_stream_is_ignored() {
        let s = settings();
        let mut r = Room::new("a", 0);
        publish(&mut r, &s, 0);
        r.observe(
            "p",
            "s2",
            IngestSource::Callback,
            Evidence::Publish,
            &s,
            100,
        );
        assert!(!r.observe(
            "p",
            "s1",
            IngestSource::Callback,
            Evidence::Unpublish,
            &s,
            200
        ));
        assert_eq!(r.stream_id.as_deref(), Some("s2"));
        assert!(r.ingest["p"].publishing);
    }

    #[test]
    fn node_chat_presence_expires() {
        let s = settings();
        let mut r = Room::new("a", 0);
        r.chat_nodes.insert("n1".into(), 1_000);
        assert!(r.chat_connected(&s, 90_999));
        assert!(!r.chat_connected(&s, 91_000));
    }
}
