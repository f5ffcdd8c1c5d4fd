//! Signals: what players, probes, origin callbacks and provider stats tell about how smoothly
//! a provider carries a stream. Producers emit them here; the scoring engine consumes them.
//!
//! The bus is bounded: when the consumer falls behind, new signals are dropped and counted
//! (`livesteer_signals_dropped_total`) rather than queued without limit. Nothing on the request
//! path waits on it.

use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::metrics as m;
use crate::vocab::Protocol;

/// Where an ingest observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestSource {
    /// An active probe of the stream on the provider (FLV or HLS pull).
    Probe,
    /// The provider's own statistics API (SRS `/api/v1/streams`, nginx-rtmp `/stat`).
    Stats,
    /// An origin or CDN callback (publish, unpublish).
    Callback,
}

/// One observation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// A player's report on a stretch of playback from one provider in one region.
    Delivery {
        provider: String,
        region: String,
        protocol: Protocol,
        /// The anchor whose stream was played, when known: viewers' QoS also says something
        /// about how the anchor's upload reaches the provider.
        anchor_id: Option<String>,
        played_ms: u64,
        rebuffer_ms: u64,
        rebuffer_count: u32,
        /// Time to first frame, when this report covers the start of a session.
        startup_ms: Option<u64>,
        /// The session failed (could not start, or died).
        error: bool,
        /// The player's session (its `sid`, see [`session_key`]), when known: its reports on
        /// one provider are one stint, which the engine's stint windows count once.
        session: Option<u64>,
    },
    /// A player stalled on a provider and asked to switch away: a strong negative.
    Switch {
        provider: String,
        region: String,
        anchor_id: Option<String>,
    },
    /// A player's steering reload, attributed: it has been on `provider` for the whole
    /// stretch its throughput estimate covers (`covered_ms` of it since its last reload).
    /// Throughput under what the stream needs means stalls for at least `1 - throughput/needed`
    /// of the time, or a lower rendition.
    Reload {
        provider: String,
        region: String,
        anchor_id: Option<String>,
        covered_ms: u64,
        throughput_bps: u64,
        needed_bps: u64,
    },
    /// Active probes could not get a live stream from a provider's edge for a region
    /// (connection refused or reset, timeout, HTTP 5xx), or they are holding off that provider
    /// (its circuit breaker is open) after such failures there: failure evidence for delivery
    /// in that region, standing for the viewers a dead edge fails.
    ///
    /// Not a [`Signal::Delivery`] with `error: true`, because a probe is not a viewer:
    /// - it speaks for every viewer of the region, so the engine weighs it
    ///   (`scoring.probe_failure_weight` failed sessions), where a delivery report is one
    ///   session. One failed session per probe run would never outweigh the hysteresis:
    ///   decaying with the shipped 15 s half-life between runs 10 s apart (the default
    ///   schedule), it holds under three sessions' worth, short of what a challenger known
    ///   from nothing needs to be confidently cheaper;
    /// - it says nothing about an anchor's upload (a delivery report with an anchor feeds the
    ///   ingest windows and the anchor's audience) and is not a player report in the metrics;
    /// - there is no positive counterpart: a probe that got its answer does not count as a
    ///   smooth session, so probes never flatter a provider that viewers do not use.
    ProbeFailure {
        provider: String,
        region: String,
        /// Share of the probes made in that scope in one run that failed, in (0, 1]; a run
        /// that only held off the provider repeats the last share. A region where one stream in
        /// ten fails counts a tenth of one where every stream does.
        share: f64,
    },
    /// Whether an anchor's stream reaches a provider smoothly.
    Ingest {
        provider: String,
        anchor_id: String,
        source: IngestSource,
        /// The stream is flowing: bitrate above zero, sequence advancing, segments fresh.
        healthy: bool,
        /// Ingest bitrate, when measured.
        bitrate_kbps: Option<f64>,
    },
}

/// The key a player's session id is known by in [`Signal::Delivery`].
pub fn session_key(sid: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sid.hash(&mut h);
    h.finish()
}

/// Producers' end of the bus.
#[derive(Debug)]
pub struct SignalBus {
    tx: mpsc::Sender<Signal>,
    rx: Mutex<Option<mpsc::Receiver<Signal>>>,
}

/// Signals held while the consumer catches up.
pub const CAPACITY: usize = 100_000;

impl Default for SignalBus {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(CAPACITY);
        // Dropped signals are rare: start their series at 0 so that a graph of them shows
        // "none" rather than "no data".
        for kind in ["delivery", "switch", "reload", "probe_failure", "ingest"] {
            metrics::counter!(m::SIGNALS_DROPPED.name, "kind" => kind).increment(0);
        }
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl SignalBus {
    /// Emits a signal; never waits. Returns false when it was dropped (bus full or no consumer).
    pub fn emit(&self, signal: Signal) -> bool {
        let kind = match &signal {
            Signal::Delivery { .. } => "delivery",
            Signal::Switch { .. } => "switch",
            Signal::Reload { .. } => "reload",
            Signal::ProbeFailure { .. } => "probe_failure",
            Signal::Ingest { .. } => "ingest",
        };
        match self.tx.try_send(signal) {
            Ok(()) => {
                metrics::counter!(m::SIGNALS.name, "kind" => kind).increment(1);
                true
            }
            Err(_) => {
                metrics::counter!(m::SIGNALS_DROPPED.name, "kind" => kind).increment(1);
                false
            }
        }
    }

    /// The consumer's end; there is one consumer, so this answers `Some` once.
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Signal>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(healthy: bool) -> Signal {
        Signal::Ingest {
            provider: "p".into(),
            anchor_id: "a".into(),
            source: IngestSource::Probe,
            healthy,
            bitrate_kbps: None,
        }
    }

    #[tokio::test]
    async fn signals_flow_to_the_one_consumer() {
        let bus = SignalBus::default();
        let mut rx = bus.take_receiver().unwrap();
        assert!(bus.take_receiver().is_none());
        assert!(bus.emit(ingest(true)));
        assert_eq!(rx.recv().await, Some(ingest(true)));
    }

    #[tokio::test]
    async fn a_full_bus_drops_instead_of_blocking() {
        let bus = SignalBus::default();
        for _ in 0..CAPACITY {
            assert!(bus.emit(ingest(false)));
        }
        assert!(!bus.emit(ingest(false)));
    }
}
