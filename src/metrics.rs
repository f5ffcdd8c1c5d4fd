//! Every metric livesteer emits, declared once: name, type, unit, labels and help text.
//!
//! Names follow Prometheus conventions: the `livesteer_` prefix, base units (`_seconds`,
//! `_bytes`), `_total` for counters. Labels are bounded (route, method, status, provider,
//! region, protocol, reason, outcome): never a stream or anchor id. `docs/METRICS.md` is
//! generated from [`ALL`] ([`markdown`]).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// A metric's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric's unit: the base unit its name ends with (before `_total`), or none for counts,
/// costs and info metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    None,
    Seconds,
    Bytes,
    Ratio,
}

impl Unit {
    /// The name suffix (without `_`); empty for [`Unit::None`].
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
            Unit::Ratio => "ratio",
        }
    }
}

/// One metric's declaration.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// HTTP requests answered.
pub const HTTP_REQUESTS: Def = Def {
    name: "livesteer_http_requests_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["route", "method", "status"],
    help: "HTTP requests answered, by route pattern, method and status code.",
};

/// HTTP request latency.
pub const HTTP_DURATION: Def = Def {
    name: "livesteer_http_request_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    labels: &["route", "status"],
    help: "Time from request to response, by route pattern and status code.",
};

/// Push and play decisions.
pub const DECISIONS: Def = Def {
    name: "livesteer_decisions_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["kind", "provider", "region", "protocol", "reason"],
    help: "Providers chosen: kind=push for each push target, kind=play for the first play candidate. Reason for play: the pick (ranked, challenger, explore, anchor, max_share, commit, overflow, static) switch (a switching player's provider was moved last) or unsigned (the ranked first could not be signed); for push: anchor_first (primary) or backup, uncovered (no provider covers the region), drained (every candidate is drained), moved (each target of a live stream moved when its app asked again).",
};

/// Signing failures.
pub const SIGNING_ERRORS: Def = Def {
    name: "livesteer_signing_errors_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["provider"],
    help: "URLs a provider adapter failed to sign (the provider is left out of the answer).",
};

/// Fetches of origin manifests.
pub const ORIGIN_FETCHES: Def = Def {
    name: "livesteer_origin_fetches_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["provider", "outcome"],
    help: "Fetches of a stream's manifest from its origin (the ladder master.m3u8 replicates), at most one per stream per refresh interval, by origin provider and outcome: ok, unreachable, timeout, status (not 2xx), too_large, invalid (not a manifest).",
};

/// Streams in memory.
pub const STREAMS: Def = Def {
    name: "livesteer_streams",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["state"],
    help: "Streams held in memory, by state.",
};

/// Write-behind queue.
pub const WRITE_QUEUE: Def = Def {
    name: "livesteer_write_queue_depth",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["table"],
    help: "Changes accepted in memory and not yet written to the database.",
};

/// Write-behind flushes.
pub const DB_FLUSHES: Def = Def {
    name: "livesteer_db_flushes_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["table", "outcome"],
    help: "Transactions written by the writer tasks (rows written behind and group commits of acknowledged changes), by outcome (ok, error: retried).",
};

/// Policy in force.
pub const POLICY_INFO: Def = Def {
    name: "livesteer_policy_info",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["version"],
    help: "1 for the version (content hash) of the policy in force.",
};

/// Background job runs.
pub const JOB_RUNS: Def = Def {
    name: "livesteer_job_runs_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["job", "outcome"],
    help: "Background job runs, by job and outcome (ok, error, skipped: another replica holds the lease).",
};

/// Background job duration.
pub const JOB_DURATION: Def = Def {
    name: "livesteer_job_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    labels: &["job"],
    help: "Time a background job run took.",
};

/// Signals accepted onto the bus.
pub const SIGNALS: Def = Def {
    name: "livesteer_signals_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["kind"],
    help: "Signals (delivery, switch, reload, probe_failure, ingest) accepted for the scoring engine.",
};

/// Signals dropped.
pub const SIGNALS_DROPPED: Def = Def {
    name: "livesteer_signals_dropped_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["kind"],
    help: "Signals dropped because the scoring engine fell behind.",
};

/// Healthy service nodes.
pub const SERVICE_NODES_HEALTHY: Def = Def {
    name: "livesteer_service_nodes_healthy",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["kind", "region"],
    help: "Service nodes (chat, im, api, upload, static, pay) a resolve could return, by kind and region; refreshed by the check_nodes job.",
};

/// Resolve answers.
pub const RESOLVE_ANSWERS: Def = Def {
    name: "livesteer_resolve_answers_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["service", "region", "outcome"],
    help: "Service lookups answered (resolve and HTTPDNS), by service, client region and outcome (local, fallback, none).",
};

/// Node heartbeats.
pub const NODE_HEARTBEATS: Def = Def {
    name: "livesteer_node_heartbeats_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["kind", "outcome"],
    help: "Node heartbeats, by service kind and outcome (applied, stale: older than the last one applied, refused).",
};

/// Signed requests refused.
pub const SIGNED_REFUSED: Def = Def {
    name: "livesteer_signed_requests_refused_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["endpoint", "reason"],
    help: "Heartbeats and payment requests refused before any change, by endpoint and reason (invalid_signature, stale_timestamp, invalid_timestamp, unknown_signer).",
};

/// Payment records.
pub const PAYMENT_RECORDS: Def = Def {
    name: "livesteer_payment_records_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["centre", "outcome"],
    help: "Payment records synced, by centre and outcome (accepted: stored now, duplicate: already stored, conflict: another record holds the id).",
};

/// Provider cost per region.
pub const SCORE: Def = Def {
    name: "livesteer_provider_score",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["provider", "region"],
    help: "The scoring engine's cost for a provider in a region (lower is better): weighted rebuffer ratio, startup, error and bad-session rates.",
};

/// Provider share of first places per region.
pub const SHARE: Def = Def {
    name: "livesteer_provider_share",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["provider", "region"],
    help: "Share of recent play decisions in a region that put the provider first (decayed).",
};

/// Room state changes.
pub const ROOM_TRANSITIONS: Def = Def {
    name: "livesteer_room_transitions_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["from", "to"],
    help: "Room state changes (offline, starting, live, stalled), by the state left and the state entered.",
};

/// Rooms by state.
pub const ROOMS: Def = Def {
    name: "livesteer_rooms",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["state"],
    help: "Rooms held in memory, by state (offline, starting, live, stalled).",
};

/// Probe duration.
pub const PROBE_DURATION: Def = Def {
    name: "livesteer_probe_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    labels: &["provider", "kind", "outcome"],
    help: "Time an active probe took, by provider, kind (flv, hls, srs_api, nginx_stat) and outcome (healthy, unhealthy, error, skipped; ok for a statistics answer read).",
};

/// Origin and CDN callbacks.
pub const CALLBACKS: Def = Def {
    name: "livesteer_callbacks_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["provider", "format", "outcome"],
    help: "Origin and CDN callbacks, by provider, format (srs, nginx_rtmp, generic) and outcome (accepted, ignored, refused, invalid).",
};

/// Players switching away from a provider.
pub const SWITCHES: Def = Def {
    name: "livesteer_switches_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["provider", "region", "reason"],
    help: "Switch calls from stalling players, by the provider left, region and reason.",
};

/// Policy reloads.
pub const POLICY_RELOADS: Def = Def {
    name: "livesteer_policy_reloads_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["outcome"],
    help: "Policy and provider file reloads, by outcome (ok; error: the files were refused and the policy in force stayed).",
};

/// Player reports.
pub const QOS_REPORTS: Def = Def {
    name: "livesteer_qos_reports_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["outcome"],
    help: "Player QoS reports, by outcome (accepted, refused).",
};

/// CMCD report lines.
pub const CMCD_LINES: Def = Def {
    name: "livesteer_cmcd_lines_total",
    kind: Kind::Counter,
    unit: Unit::None,
    labels: &["outcome"],
    help: "CMCD report lines at /v1/cmcd, by outcome (accepted; malformed: not a CMCD dictionary, refused; unattributed: no provider could be known from the URL or the session, dropped).",
};

/// Reported rebuffer ratio.
pub const QOS_REBUFFER: Def = Def {
    name: "livesteer_qos_rebuffer_ratio",
    kind: Kind::Histogram,
    unit: Unit::Ratio,
    labels: &["provider", "region"],
    help: "Rebuffer ratio (rebuffer time over play plus rebuffer time) of accepted player reports.",
};

/// Database connections.
pub const DB_POOL_CONNECTIONS: Def = Def {
    name: "livesteer_db_pool_connections",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &["state"],
    help: "Database connections open in the pool, by state (idle, in_use); read at scrape time.",
};

/// Database pool size.
pub const DB_POOL_MAX: Def = Def {
    name: "livesteer_db_pool_max_connections",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &[],
    help: "Most database connections the pool opens (LIVESTEER_DB_POOL).",
};

/// Problems in the policy files at the last reload.
pub const POLICY_ERRORS: Def = Def {
    name: "livesteer_policy_errors",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &[],
    help: "Problems found in the policy and provider files at the last reload attempt (0 after a reload succeeds; while above 0 the previous policy stays in force).",
};

/// Process resident memory.
pub const PROCESS_RSS: Def = Def {
    name: "livesteer_process_resident_memory_bytes",
    kind: Kind::Gauge,
    unit: Unit::Bytes,
    labels: &[],
    help: "Resident memory of the livesteer process (VmRSS in /proc/self/status), read at scrape time.",
};

/// Process CPU time.
pub const PROCESS_CPU: Def = Def {
    name: "livesteer_process_cpu_seconds_total",
    kind: Kind::Counter,
    unit: Unit::Seconds,
    labels: &["mode"],
    help: "CPU time the livesteer process has used, by mode (user, system), from /proc/self/stat at scrape time.",
};

/// Open file descriptors.
pub const PROCESS_OPEN_FDS: Def = Def {
    name: "livesteer_process_open_fds",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &[],
    help: "File descriptors the livesteer process holds open (entries of /proc/self/fd), read at scrape time.",
};

/// File descriptor limit.
pub const PROCESS_MAX_FDS: Def = Def {
    name: "livesteer_process_max_fds",
    kind: Kind::Gauge,
    unit: Unit::None,
    labels: &[],
    help: "The soft limit on open file descriptors (Max open files in /proc/self/limits).",
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
    ORIGIN_FETCHES,
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
    CMCD_LINES,
    QOS_REBUFFER,
    DB_POOL_CONNECTIONS,
    DB_POOL_MAX,
    POLICY_ERRORS,
    PROCESS_RSS,
    PROCESS_CPU,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
];

/// The metrics `/metrics` renders itself from `/proc` (see [`render_process`]) rather than
/// through the recorder: the CPU counter is fractional, which the recorder's counters are not.
pub const PROCESS: &[Def] = &[PROCESS_RSS, PROCESS_CPU, PROCESS_OPEN_FDS, PROCESS_MAX_FDS];

/// Buckets for every `_seconds` histogram: the hot path answers in well under a millisecond;
/// probes and jobs take up to their timeouts (seconds).
const HTTP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
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

/// A counter handle the request thread keeps, with the labels it was made for.
struct Kept {
    name: &'static str,
    labels: Box<[(&'static str, Box<str>)]>,
    counter: metrics::Counter,
}

/// Most counter handles a request thread keeps.
const KEPT_PER_THREAD: usize = 1024;

thread_local! {
    static KEPT: std::cell::RefCell<foldhash::HashMap<u64, Kept>> =
        std::cell::RefCell::default();
}

/// Adds `by` to counter `name` with `labels`, as `metrics::counter!(name, labels…)` does, but
/// through a handle this thread keeps per name and label values once the recorder is installed:
/// a hot path's counter then costs a hash of its label values, not new label strings and a
/// lookup in the recorder's registry.
pub fn count(name: &'static str, labels: &[(&'static str, &str)], by: u64) {
    use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
    let make = || {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(*k, v.to_string()))
            .collect();
        metrics::counter!(name, labels)
    };
    if HANDLE.get().is_none() {
        make().increment(by);
        return;
    }
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    name.hash(&mut h);
    labels.hash(&mut h);
    let hash = h.finish();
    KEPT.with_borrow_mut(|kept| {
        let same = |k: &Kept| {
            k.name == name
                && k.labels.len() == labels.len()
                && k.labels
                    .iter()
                    .zip(labels)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && **v1 == **v2)
        };
        match kept.get(&hash).filter(|k| same(k)) {
            Some(k) => k.counter.increment(by),
            None => {
                if kept.len() >= KEPT_PER_THREAD {
                    kept.clear();
                }
                let counter = make();
                counter.increment(by);
                kept.insert(
                    hash,
                    Kept {
                        name,
                        labels: labels.iter().map(|(k, v)| (*k, (*v).into())).collect(),
                        counter,
                    },
                );
            }
        }
    });
}

fn describe() {
    for d in ALL
        .iter()
        .filter(|d| !PROCESS.iter().any(|p| p.name == d.name))
    {
        let unit = match d.unit {
            Unit::Seconds => Some(metrics::Unit::Seconds),
            Unit::Bytes => Some(metrics::Unit::Bytes),
            Unit::Ratio | Unit::None => None,
        };
        match (d.kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(d.name, u, d.help),
            (Kind::Counter, None) => metrics::describe_counter!(d.name, d.help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(d.name, u, d.help),
            (Kind::Gauge, None) => metrics::describe_gauge!(d.name, d.help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(d.name, u, d.help),
            (Kind::Histogram, None) => metrics::describe_histogram!(d.name, d.help),
        }
    }
}

/// `docs/METRICS.md`: every declared metric, generated from [`ALL`]. A test fails when the file
/// differs; `LIVESTEER_WRITE_METRICS_DOC=1 cargo test --lib metrics` rewrites it.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Metrics\n\n\
         Every metric livesteer exposes on `GET /metrics` (Prometheus text format). Generated from\n\
         `src/metrics.rs` by `LIVESTEER_WRITE_METRICS_DOC=1 cargo test --lib metrics`; do not edit\n\
         by hand. Label values are bounded: never a stream or anchor id. Histograms also expose\n\
         `_bucket{le}`, `_sum` and `_count` series.\n\n\
         | metric | type | unit | labels | help |\n\
         |---|---|---|---|---|\n",
    );
    let mut defs: Vec<&Def> = ALL.iter().collect();
    defs.sort_by_key(|d| d.name);
    for d in defs {
        let labels = if d.labels.is_empty() {
            "none".to_string()
        } else {
            d.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unit = match d.unit {
            Unit::None => "none",
            u => u.as_str(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            d.name,
            d.kind.as_str(),
            unit,
            labels,
            d.help.replace('|', "\\|")
        ));
    }
    out
}

/// The process metrics ([`PROCESS`]) in the Prometheus text format, read from `/proc/self` now.
/// A value that cannot be read (not Linux, a restricted `/proc`) is left out, never invented.
pub fn render_process() -> String {
    let mut out = String::new();
    let mut put = |d: &Def, samples: &[(Option<(&str, &str)>, f64)]| {
        if samples.is_empty() {
            return;
        }
        out.push_str(&format!("# HELP {} {}\n", d.name, escape_help(d.help)));
        out.push_str(&format!("# TYPE {} {}\n", d.name, d.kind.as_str()));
        for (label, v) in samples {
            match label {
                Some((k, val)) => out.push_str(&format!("{}{{{k}=\"{val}\"}} {v}\n", d.name)),
                None => out.push_str(&format!("{} {v}\n", d.name)),
            }
        }
    };
    let status = std::fs::read_to_string("/proc/self/status").ok();
    if let Some(rss) = status.as_deref().and_then(proc::rss_bytes) {
        put(&PROCESS_RSS, &[(None, rss as f64)]);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    if let Some((user, system)) = stat.as_deref().and_then(proc::cpu_ticks) {
        let hz = proc::clock_ticks_per_second();
        if hz > 0 {
            put(
                &PROCESS_CPU,
                &[
                    (Some(("mode", "user")), user as f64 / hz as f64),
                    (Some(("mode", "system")), system as f64 / hz as f64),
                ],
            );
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        put(&PROCESS_OPEN_FDS, &[(None, dir.count() as f64)]);
    }
    let limits = std::fs::read_to_string("/proc/self/limits").ok();
    if let Some(max) = limits.as_deref().and_then(proc::max_open_files) {
        put(&PROCESS_MAX_FDS, &[(None, max as f64)]);
    }
    out
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Parsers for the `/proc` files, kept pure so that tests feed them text.
mod proc {
    /// `VmRSS:    1234 kB` → bytes.
    pub fn rss_bytes(status: &str) -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let mut parts = line["VmRSS:".len()..].split_whitespace();
        let n: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => n.checked_mul(1024),
            _ => None,
        }
    }

    /// User and system CPU time in clock ticks: fields 14 and 15 of `/proc/self/stat`, counted
    /// after the command name, which is in parentheses and may itself hold spaces or `)`.
    pub fn cpu_ticks(stat: &str) -> Option<(u64, u64)> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state).
        let user = fields.get(14 - 3)?.parse().ok()?;
        let system = fields.get(15 - 3)?.parse().ok()?;
        Some((user, system))
    }

    /// The soft limit of `Max open files` (`unlimited` is left out).
    pub fn max_open_files(limits: &str) -> Option<u64> {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line["Max open files".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// `sysconf(_SC_CLK_TCK)`: the unit of the CPU times in `/proc/self/stat`.
    pub fn clock_ticks_per_second() -> i64 {
        // SAFETY: sysconf reads a constant of the running system; it has no preconditions.
        unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
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
            let base = d.name.strip_suffix("_total").unwrap_or(d.name);
            for u in [Unit::Seconds, Unit::Bytes, Unit::Ratio] {
                assert_eq!(
                    d.unit == u,
                    base.ends_with(&format!("_{}", u.as_str())),
                    "{}: unit {:?}",
                    d.name,
                    d.unit
                );
            }
        }
        let mut names: Vec<&str> = ALL.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a metric is declared twice");
        for p in PROCESS {
            assert!(ALL.iter().any(|d| d.name == p.name), "{}", p.name);
        }
    }

    /// `docs/METRICS.md` is what [`markdown`] generates now.
    #[test]
    fn metrics_doc_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/METRICS.md");
        let want = markdown();
        if std::env::var_os("LIVESTEER_WRITE_METRICS_DOC").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/METRICS.md is stale: run `LIVESTEER_WRITE_METRICS_DOC=1 cargo test --lib metrics`"
        );
        for d in ALL {
            assert!(have.contains(&format!("`{}`", d.name)), "{}", d.name);
        }
    }

    #[test]
    fn proc_files_parse() {
        let status = "Name:\tlivesteer\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t8\n";
        assert_eq!(proc::rss_bytes(status), Some(2048 * 1024));
        assert_eq!(proc::rss_bytes("VmRSS:\t12 MB\n"), None);
        assert_eq!(proc::rss_bytes("Name:\tx\n"), None);
        // The command name may hold spaces and parentheses.
        let stat = "4242 (live steer) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 122 0 0 20 0 8 0 1234 0 0";
        assert_eq!(proc::cpu_ticks(stat), Some((731, 122)));
        assert_eq!(proc::cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(proc::cpu_ticks("garbage"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(proc::max_open_files(limits), Some(1024));
        assert_eq!(
            proc::max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_read_from_proc() {
        let text = render_process();
        for d in PROCESS {
            assert!(
                text.contains(&format!("# TYPE {} {}\n", d.name, d.kind.as_str())),
                "{text}"
            );
        }
        let rss: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("livesteer_process_resident_memory_bytes "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rss > 1_000_000.0, "{rss}");
        let fds: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("livesteer_process_open_fds "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(fds >= 3.0, "{fds}");
    }
}
