//! Every metric livesteer emits, declared once: name, type, unit, labels and help text.
//!
//! Names follow Prometheus conventions: the `livesteer_` prefix, base units (`_seconds`,
//! `_bytes`), `_total` for counters. Labels are bounded (route, method, status, provider,
//! region, protocol, outcome): never a stream or anchor id.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// A metric's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric's declaration.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// HTTP requests answered.
pub const HTTP_REQUESTS: Def = Def {
    name: "livesteer_http_requests_total",
    kind: Kind::Counter,
    labels: &["route", "method", "status"],
    help: "HTTP requests answered, by route pattern, method and status code.",
};

/// HTTP request latency.
pub const HTTP_DURATION: Def = Def {
    name: "livesteer_http_request_duration_seconds",
    kind: Kind::Histogram,
    labels: &["route", "status"],
    help: "Time from request to response, by route pattern and status code.",
};

/// Push and play decisions.
pub const DECISIONS: Def = Def {
    name: "livesteer_decisions_total",
    kind: Kind::Counter,
    labels: &["kind", "provider", "region", "protocol"],
    help: "Providers chosen: kind=push for each push target, kind=play for the first play candidate.",
};

/// Signing failures.
pub const SIGNING_ERRORS: Def = Def {
    name: "livesteer_signing_errors_total",
    kind: Kind::Counter,
    labels: &["provider"],
    help: "URLs a provider adapter failed to sign (the provider is left out of the answer).",
};

/// Streams in memory.
pub const STREAMS: Def = Def {
    name: "livesteer_streams",
    kind: Kind::Gauge,
    labels: &["state"],
    help: "Streams held in memory, by state.",
};

/// Write-behind queue.
pub const WRITE_QUEUE: Def = Def {
    name: "livesteer_write_queue_depth",
    kind: Kind::Gauge,
    labels: &["table"],
    help: "Changes accepted in memory and not yet written to the database.",
};

/// Write-behind flushes.
pub const DB_FLUSHES: Def = Def {
    name: "livesteer_db_flushes_total",
    kind: Kind::Counter,
    labels: &["table", "outcome"],
    help: "Batches written by the write-behind task, by outcome (ok, error: retried).",
};

/// Policy in force.
pub const POLICY_INFO: Def = Def {
    name: "livesteer_policy_info",
    kind: Kind::Gauge,
    labels: &["version"],
    help: "1 for the version (content hash) of the policy in force.",
};

/// Background job runs.
pub const JOB_RUNS: Def = Def {
    name: "livesteer_job_runs_total",
    kind: Kind::Counter,
    labels: &["job", "outcome"],
    help: "Background job runs, by job and outcome (ok, error, skipped: another replica holds the lease).",
};

/// Background job duration.
pub const JOB_DURATION: Def = Def {
    name: "livesteer_job_duration_seconds",
    kind: Kind::Histogram,
    labels: &["job"],
    help: "Time a background job run took.",
};

/// Signals accepted onto the bus.
pub const SIGNALS: Def = Def {
    name: "livesteer_signals_total",
    kind: Kind::Counter,
    labels: &["kind"],
    help: "Signals (delivery, switch, ingest) accepted for the scoring engine.",
};

/// Signals dropped.
pub const SIGNALS_DROPPED: Def = Def {
    name: "livesteer_signals_dropped_total",
    kind: Kind::Counter,
    labels: &["kind"],
    help: "Signals dropped because the scoring engine fell behind.",
};

/// Healthy service nodes.
pub const SERVICE_NODES_HEALTHY: Def = Def {
    name: "livesteer_service_nodes_healthy",
    kind: Kind::Gauge,
    labels: &["kind", "region"],
    help: "Service nodes (chat, im, api, upload, static, pay) a resolve could return, by kind and region; refreshed by the check_nodes job.",
};

/// Resolve answers.
pub const RESOLVE_ANSWERS: Def = Def {
    name: "livesteer_resolve_answers_total",
    kind: Kind::Counter,
    labels: &["service", "region", "outcome"],
    help: "Service lookups answered (resolve and HTTPDNS), by service, client region and outcome (local, fallback, none).",
};

/// Node heartbeats.
pub const NODE_HEARTBEATS: Def = Def {
    name: "livesteer_node_heartbeats_total",
    kind: Kind::Counter,
    labels: &["kind", "outcome"],
    help: "Node heartbeats, by service kind and outcome (applied, stale: older than the last one applied, refused).",
};

/// Signed requests refused.
pub const SIGNED_REFUSED: Def = Def {
    name: "livesteer_signed_requests_refused_total",
    kind: Kind::Counter,
    labels: &["endpoint", "reason"],
    help: "Heartbeats and payment requests refused before any change, by endpoint and reason (invalid_signature, stale_timestamp, invalid_timestamp, unknown_signer).",
};

/// Payment records.
pub const PAYMENT_RECORDS: Def = Def {
    name: "livesteer_payment_records_total",
    kind: Kind::Counter,
    labels: &["centre", "outcome"],
    help: "Payment records synced, by centre and outcome (accepted: stored now, duplicate: already stored, conflict: another record holds the id).",
};

/// Provider cost per region.
pub const SCORE: Def = Def {
    name: "livesteer_provider_score",
    kind: Kind::Gauge,
    labels: &["provider", "region"],
    help: "The scoring engine's cost for a provider in a region (lower is better): weighted rebuffer ratio, startup, error and bad-session rates.",
};

/// Provider share of first places per region.
pub const SHARE: Def = Def {
    name: "livesteer_provider_share",
    kind: Kind::Gauge,
    labels: &["provider", "region"],
    help: "Share of recent play decisions in a region that put the provider first (decayed).",
};

/// Room state changes.
pub const ROOM_TRANSITIONS: Def = Def {
    name: "livesteer_room_transitions_total",
    kind: Kind::Counter,
    labels: &["from", "to"],
    help: "Room state changes (offline, starting, live, stalled), by the state left and the state entered.",
};

/// Rooms by state.
pub const ROOMS: Def = Def {
    name: "livesteer_rooms",
    kind: Kind::Gauge,
    labels: &["state"],
    help: "Rooms held in memory, by state (offline, starting, live, stalled).",
};

/// Probe duration.
pub const PROBE_DURATION: Def = Def {
    name: "livesteer_probe_duration_seconds",
    kind: Kind::Histogram,
    labels: &["provider", "kind", "outcome"],
    help: "Time an active probe took, by provider, kind (flv, hls, srs_api, nginx_stat) and outcome (healthy, unhealthy, error, skipped; ok for a statistics answer read).",
};

/// Origin and CDN callbacks.
pub const CALLBACKS: Def = Def {
    name: "livesteer_callbacks_total",
    kind: Kind::Counter,
    labels: &["provider", "format", "outcome"],
    help: "Origin and CDN callbacks, by provider, format (srs, nginx_rtmp, generic) and outcome (accepted, ignored, refused, invalid).",
};

/// Players switching away from a provider.
pub const SWITCHES: Def = Def {
    name: "livesteer_switches_total",
    kind: Kind::Counter,
    labels: &["provider", "region", "reason"],
    help: "Switch calls from stalling players, by the provider left, region and reason.",
};

/// Policy reloads.
pub const POLICY_RELOADS: Def = Def {
    name: "livesteer_policy_reloads_total",
    kind: Kind::Counter,
    labels: &["outcome"],
    help: "Policy and provider file reloads, by outcome (ok; error: the files were refused and the policy in force stayed).",
};

/// Player reports.
pub const QOS_REPORTS: Def = Def {
    name: "livesteer_qos_reports_total",
    kind: Kind::Counter,
    labels: &["outcome"],
    help: "Player QoS reports, by outcome (accepted, refused).",
};

/// Reported rebuffer ratio.
pub const QOS_REBUFFER: Def = Def {
    name: "livesteer_qos_rebuffer_ratio",
    kind: Kind::Histogram,
    labels: &["provider", "region"],
    help: "Rebuffer ratio (rebuffer time over play plus rebuffer time) of accepted player reports.",
};

/// Every declared metric.
pub const ALL: &[Def] = &[
    SERVICE_NODES_HEALTHY,
    RESOLVE_ANSWERS,
    NODE_HEARTBEATS,
    SIGNED_REFUSED,
    PAYMENT_RECORDS,
    HTTP_REQUESTS,
    HTTP_DURATION,
    DECISIONS,
    SIGNING_ERRORS,
    STREAMS,
    WRITE_QUEUE,
    DB_FLUSHES,
    POLICY_INFO,
    JOB_RUNS,
    JOB_DURATION,
    SIGNALS,
    SIGNALS_DROPPED,
    ROOM_TRANSITIONS,
    ROOMS,
    PROBE_DURATION,
    CALLBACKS,
    SCORE,
    SHARE,
    SWITCHES,
    POLICY_RELOADS,
    QOS_REPORTS,
    QOS_REBUFFER,
];

/// Latency buckets for HTTP: the hot path answers in well under a millisecond.
const HTTP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Buckets for ratios (rebuffer ratio): most sessions sit well under 1%.
const RATIO_BUCKETS: &[f64] = &[0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle `/metrics` renders.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), HTTP_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_ratio".into()), RATIO_BUCKETS)
                })
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); ours still renders
            // what is sent to it through the handle.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    for d in ALL {
        match d.kind {
            Kind::Counter => metrics::describe_counter!(d.name, d.help),
            Kind::Gauge => metrics::describe_gauge!(d.name, d.help),
            Kind::Histogram if d.name.ends_with("_seconds") => {
                metrics::describe_histogram!(d.name, metrics::Unit::Seconds, d.help)
            }
            Kind::Histogram => metrics::describe_histogram!(d.name, d.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        for d in ALL {
            assert!(d.name.starts_with("livesteer_"), "{}", d.name);
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}",
                d.name
            );
            if d.kind == Kind::Histogram {
                assert!(
                    d.name.ends_with("_seconds") || d.name.ends_with("_ratio"),
                    "{}",
                    d.name
                );
            }
            for l in d.labels {
                assert!(
                    !l.contains("stream") && !l.contains("anchor"),
                    "{} {l}",
                    d.name
                );
            }
            assert!(d.help.ends_with('.'), "{}", d.name);
        }
    }
}
