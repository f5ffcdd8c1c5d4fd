//! The Grafana dashboards against livesteer's metrics: every dashboard imports anywhere (the
//! datasource is an input), every expression names only declared metrics, every expression
//! parses (`promtool check rules`), a live scrape passes `promtool check metrics`, and a real
//! Prometheus on loopback, scraping livesteer while traffic runs, returns at least one series
//! for every dashboard query.
//!
//! Needs Debian's `prometheus` package (`prometheus`, `promtool`); without it the tests that
//! run them print `skipping: …`, except with `CI=true`, where they fail (`.ci/run` installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use livesteer::auth::signed;
use livesteer::metrics::{ALL, Kind};
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::support::{TestApp, YamlDoc, root};

const ADMIN: &str = "dashboards-admin-token";
const CHAT_SECRET: &str = "demo-only-chat-heartbeat-0001";
const PAY_TW_SECRET: &str = "demo-only-pay-tw-secret-0001";
/// What `$__rate_interval` stands for in the queries: a few scrapes at the test's 1 s interval.
const RATE_INTERVAL: &str = "30s";

/// One query of a dashboard panel.
#[derive(Debug, Clone)]
struct Query {
    dashboard: String,
    panel: String,
    ref_id: String,
    expr: String,
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards/*.json");
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `targets[].expr` of every panel, rows' panels included.
fn queries() -> Vec<Query> {
    fn walk(v: &Value, dashboard: &str, out: &mut Vec<Query>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(targets)) = o.get("targets") {
                    let panel = o["title"].as_str().unwrap_or("?").to_string();
                    for t in targets {
                        let expr = t["expr"]
                            .as_str()
                            .unwrap_or_else(|| panic!("{dashboard}: {panel}: target without expr"));
                        out.push(Query {
                            dashboard: dashboard.to_string(),
                            panel: panel.clone(),
                            ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                            expr: expr.to_string(),
                        });
                    }
                }
                for v in o.values() {
                    walk(v, dashboard, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, dashboard, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for f in dashboard_files() {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        walk(&load(&f), &name, &mut out);
    }
    out
}

/// The `label_values(metric, label)` template variables of every dashboard.
fn label_variables() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in dashboard_files() {
        let d = load(&f);
        for v in d["templating"]["list"].as_array().unwrap() {
            if v["type"] != "query" {
                continue;
            }
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap();
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{}: variable query {q:?}", f.display()));
            let (metric, label) = inner.split_once(',').unwrap();
            out.push((
                v["name"].as_str().unwrap().to_string(),
                metric.trim().to_string(),
                label.trim().to_string(),
            ));
        }
    }
    out
}

/// The expression with Grafana's variables replaced by values Prometheus takes.
fn concrete(expr: &str, region: &str) -> String {
    expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("${region}", region)
        .replace("$region", region)
}

/// The `livesteer_…` names an expression mentions.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("livesteer_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The declared metric a series name belongs to (a histogram's `_bucket`, `_sum`, `_count`).
fn declared(name: &str) -> Option<&'static str> {
    ALL.iter()
        .find(|d| {
            d.name == name
                || (d.kind == Kind::Histogram
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name.strip_suffix(s) == Some(d.name)))
        })
        .map(|d| d.name)
}

#[test]
fn dashboards_import_anywhere_and_use_only_declared_metrics() {
    let mut uids = BTreeSet::new();
    for f in dashboard_files() {
        let d = load(&f);
        let name = f.display().to_string();
        assert!(d["id"].is_null(), "{name}: a fixed id stops an import");
        assert!(
            uids.insert(d["uid"].as_str().unwrap().to_string()),
            "{name}: uid taken"
        );
        assert!(!d["title"].as_str().unwrap().is_empty(), "{name}");
        let inputs = d["__inputs"].as_array().unwrap();
        assert!(
            inputs
                .iter()
                .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
            "{name}: no DS_PROMETHEUS input"
        );
        // Provisioned from files, the input is not substituted: a datasource variable of the
        // same name resolves it.
        assert!(
            d["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
            "{name}: no DS_PROMETHEUS datasource variable"
        );
        // Every datasource reference goes through the input.
        let text = std::fs::read_to_string(&f).unwrap();
        let mut refs = 0;
        fn check(v: &Value, name: &str, refs: &mut usize) {
            match v {
                Value::Object(o) => {
                    if let Some(ds) = o.get("datasource")
                        && ds["type"] == "prometheus"
                    {
                        assert_eq!(ds["uid"], "${DS_PROMETHEUS}", "{name}: {ds}");
                        *refs += 1;
                    }
                    o.values().for_each(|v| check(v, name, refs));
                }
                Value::Array(a) => a.iter().for_each(|v| check(v, name, refs)),
                _ => {}
            }
        }
        check(&d, &name, &mut refs);
        assert!(refs > 0 && text.contains("${DS_PROMETHEUS}"), "{name}");
    }

    let queries = queries();
    let mut used = BTreeSet::new();
    for q in &queries {
        let names = metric_names(&q.expr);
        assert!(!names.is_empty(), "{q:?} uses no livesteer metric");
        for n in names {
            let d = declared(&n).unwrap_or_else(|| {
                panic!(
                    "{}: {}: {n} is not declared in metrics::ALL",
                    q.dashboard, q.panel
                )
            });
            used.insert(d);
        }
    }
    for (_, metric, _) in label_variables() {
        assert!(
            declared(&metric).is_some(),
            "variable over undeclared {metric}"
        );
    }
    // Every metric livesteer declares is on some dashboard.
    let unused: Vec<&str> = ALL
        .iter()
        .map(|d| d.name)
        .filter(|n| !used.contains(n))
        .collect();
    assert!(unused.is_empty(), "metrics on no dashboard: {unused:?}");
}

/// Whether `prometheus` and `promtool` are installed; prints the reason (or fails in CI) when not.
fn tools_present() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = ["prometheus", "promtool"]
        .into_iter()
        .filter(|t| !runs(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing (apt-get install prometheus)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("dashboard test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
    false
}

/// Runs promtool with `args` (and `stdin`), panicking with its output unless it succeeds.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn every_dashboard_expression_parses_as_a_recording_rule() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Grouped by dashboard; the rule names are valid metric names made of the panel's place.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, q) in queries().iter().enumerate() {
        let record = format!(
            "dashboard:{}:{}_{}",
            q.dashboard.replace('-', "_"),
            i,
            q.ref_id
        );
        let expr = serde_json::to_string(&concrete(&q.expr, ".*")).unwrap();
        groups
            .entry(q.dashboard.clone())
            .or_default()
            .push(format!("      - record: {record}\n        expr: {expr}\n"));
    }
    let mut yaml = String::from("groups:\n");
    for (name, rules) in &groups {
        yaml.push_str(&format!("  - name: {name}\n    rules:\n"));
        rules.iter().for_each(|r| yaml.push_str(r));
    }
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, &yaml).unwrap();
    let out = promtool(&["check", "rules", file.to_str().unwrap()], None);
    let n: usize = groups.values().map(Vec::len).sum();
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");

    // The README's scrape configuration is valid too.
    let example = root().join("dashboards/provisioning/prometheus.yml");
    promtool(&["check", "config", example.to_str().unwrap()], None);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server this test started, killed (by its own pid) when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port, scraping `target` every second, and waits
    /// until it is ready. Retries with another port if the one picked was taken meanwhile.
    async fn start(target: std::net::SocketAddr) -> Prometheus {
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("prometheus.yml");
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: livesteer\n    metrics_path: /metrics\n    \
                     static_configs:\n      - targets: [\"{target}\"]\n"
                ),
            )
            .unwrap();
            promtool(&["check", "config", config.to_str().unwrap()], None);
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut p = Prometheus {
                child,
                port,
                _dir: dir,
            };
            let client = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    break;
                }
                let ready = client
                    .get(format!("http://127.0.0.1:{port}/-/ready"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return p;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            last =
                std::fs::read_to_string(p._dir.path().join("prometheus.log")).unwrap_or_default();
        }
        panic!("prometheus did not become ready:\n{last}");
    }

    /// An instant query's result vector.
    async fn query(&self, client: &reqwest::Client, expr: &str) -> Vec<Value> {
        let res = client
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "success", "{expr}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until Prometheus has scraped livesteer successfully `n` more times.
    async fn wait_scrapes(&self, client: &reqwest::Client, n: usize) {
        let count = async || {
            let r = self
                .query(client, "sum_over_time(up{job=\"livesteer\"}[10m])")
                .await;
            r.first()
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as usize
        };
        let target = count().await + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while count().await < target {
            assert!(
                Instant::now() < deadline,
                "Prometheus does not scrape livesteer: {:?}",
                self.query(client, "up").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn signed_post(app: &TestApp, path: &str, body: &str, secret: &str) -> (u16, Value) {
    let ts = now_secs().to_string();
    let sig = signed::sign(secret.as_bytes(), &ts, body.as_bytes());
    let res = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header(signed::TIMESTAMP_HEADER, ts)
        .header(signed::SIGNATURE_HEADER, sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn admin_reload(app: &TestApp) -> u16 {
    app.client
        .post(app.url("/admin/policies/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn srs_hook(name: &str, stream: &str, token: &str) -> String {
    std::fs::read_to_string(root().join("tests/data/rooms").join(name))
        .unwrap()
        .replace("STREAM", stream)
        .replace("TOKEN", token)
}

/// One round of the kinds of traffic every dashboard panel shows: pushes and plays, player
/// reports and switches, steering, origin callbacks, probes, heartbeats and lookups, payments,
/// policy reloads (a refused one included), bad requests and background jobs.
async fn traffic(app: &TestApp, round: u32) {
    for i in 0..3 {
        let anchor = format!("anchor-dash-{round}-{i}");
        let created = app.create_stream(&anchor, "tw").await;
        let id = created["stream_id"].as_str().unwrap().to_string();
        let mut first = String::new();
        for protocol in ["flv", "rtmp", "hls"] {
            let (status, body) = app
                .get(&format!(
                    "/v1/streams/{id}/play?protocol={protocol}&region=tw"
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            first = body["candidates"][0]["provider"]
                .as_str()
                .unwrap()
                .to_string();
        }
        let (status, body) = app.get(&format!("/v1/steering/hls/{id}?region=tw")).await;
        assert_eq!(status, 200, "{body}");
        // The ladder comes from the stream's origin, fetched once: one not running here is a 502.
        let (status, body) = app
            .get(&format!("/v1/streams/{id}/master.m3u8?region=tw"))
            .await;
        assert!(matches!(status, 200 | 502), "{status}: {body}");
        let reports: Vec<Value> = ["local-srs", "local-nginx"]
            .iter()
            .enumerate()
            .map(|(k, p)| {
                json!({"stream_id": id, "provider": p, "region": "tw", "protocol": "hls",
                       "played_ms": 30000, "rebuffer_ms": 300 * (k as u64 + 1) * u64::from(round),
                       "rebuffer_count": 1, "startup_ms": 800})
            })
            .collect();
        let (status, body) = app.post("/v1/qos", json!({ "reports": reports })).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = app
            .post(
                &format!("/v1/streams/{id}/switch"),
                json!({"from_provider": first, "reason": "stall", "region": "tw", "protocol": "hls"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        // The anchor's SRS origin accepts the publish and writes segments: the room goes live.
        if let Some(push) = created["push"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == "local-srs")
        {
            let token = push["url"]
                .as_str()
                .unwrap()
                .split("?token=")
                .nth(1)
                .unwrap();
            for hook in ["srs-on_publish.json", "srs-on_hls.json"] {
                let (status, body) = app
                    .post_raw(
                        "/v1/callbacks/local-srs",
                        "application/json",
                        srs_hook(hook, &id, token),
                    )
                    .await;
                assert_eq!(status, 200, "{hook}: {body}");
            }
        }
        if i == 2 {
            let (status, _) = app.delete(&format!("/v1/streams/{id}")).await;
            assert_eq!(status, 200);
        }
    }
    // A refused callback and bad requests.
    let (status, _) = app
        .post_raw(
            "/v1/callbacks/local-srs",
            "application/json",
            srs_hook("srs-on_publish.json", "s-no-such-stream", "1-bad"),
        )
        .await;
    assert!(status >= 400);
    assert_eq!(app.get("/v1/streams/s-nope/play").await.0, 404);
    assert_eq!(app.get("/no/such/route").await.0, 404);

    // Nodes, lookups, HTTPDNS.
    let hb = json!({"id": format!("chat-tw-dash-{round}"), "kind": "chat", "region": "tw",
        "endpoints": ["wss://chat-tw.example.com/ws"], "ips": ["203.0.113.10"],
        "capacity": 100, "load": 10})
    .to_string();
    let (status, body) = signed_post(app, "/v1/nodes/heartbeat", &hb, CHAT_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = signed_post(app, "/v1/nodes/heartbeat", &hb, "wrong-secret").await;
    assert_eq!(status, 401);
    for q in [
        "/v1/resolve?services=chat,im,api&region=tw",
        "/v1/resolve?services=chat&region=eu",
        "/d?dn=chat.example.com&ip=168.95.1.1",
    ] {
        let (status, body) = app.get(q).await;
        assert_eq!(status, 200, "{q}: {body}");
    }

    // Payments: a batch, its replay, and a conflicting record under a stored id.
    let record = |id: &str, amount: i64| {
        json!({"id": id, "user": "user-1", "amount_minor": amount, "currency": "TWD",
               "provider": "apple", "status": "completed", "created_at": "2026-11-25T10:00:00Z",
               "centre": "pay-tw"})
    };
    let pid = format!("dash-{round}-{}", now_secs());
    let batch = json!({"centre": "pay-tw", "records": [record(&pid, 100)]}).to_string();
    for _ in 0..2 {
        let (status, body) = signed_post(app, "/v1/payments/sync", &batch, PAY_TW_SECRET).await;
        assert_eq!(status, 200, "{body}");
    }
    let conflict = json!({"centre": "pay-tw", "records": [record(&pid, 999)]}).to_string();
    let (status, body) = signed_post(app, "/v1/payments/sync", &conflict, PAY_TW_SECRET).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = signed_post(app, "/v1/payments/sync", &batch, "wrong-secret").await;
    assert_eq!(status, 401);

    // A policy file broken on disk is refused; restored, it reloads.
    let file = app.state.config.policy_file.clone();
    let good = std::fs::read_to_string(&file).unwrap();
    YamlDoc::parse(&good)
        .set("scoring.exploration_rate", 7)
        .write(&file);
    assert_eq!(admin_reload(app).await, 422);
    std::fs::write(&file, &good).unwrap();
    assert_eq!(admin_reload(app).await, 200);

    // Background jobs, as their schedules would run them.
    for job in ["check_nodes", "sweep_rooms", "probe_streams"] {
        livesteer::jobs::run_once(app.state.jobs(), job)
            .await
            .unwrap_or_else(|e| panic!("{job}: {e}"));
    }
    app.state.writer.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_livesteer_and_every_dashboard_query_returns_data() {
    if !tools_present() {
        return;
    }
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .without_exploration()
        .admin_token(ADMIN)
        .start()
        .await;

    // The exposition passes promtool's checks.
    traffic(&app, 1).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lint = promtool(&["check", "metrics"], Some(&text));
    assert!(lint.trim().is_empty(), "promtool check metrics:\n{lint}");
    for d in livesteer::metrics::PROCESS {
        assert!(
            text.contains(&format!("\n{} ", d.name)) || text.contains(&format!("\n{}{{", d.name)),
            "{}",
            d.name
        );
    }

    let prom = Prometheus::start(app.addr).await;
    let client = reqwest::Client::new();
    prom.wait_scrapes(&client, 2).await;
    traffic(&app, 2).await;
    prom.wait_scrapes(&client, 3).await;

    let mut empty = Vec::new();
    for q in queries() {
        let expr = concrete(&q.expr, "tw");
        let result = prom.query(&client, &expr).await;
        if result.is_empty() {
            empty.push(format!(
                "{} / {} / {}: {expr}",
                q.dashboard, q.panel, q.ref_id
            ));
        }
    }
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );
    eprintln!(
        "every one of {n} dashboard queries returned data",
        n = queries().len()
    );
    // The decisions' reasons: a switching player's provider moved out of first place (when it
    // was still the ranked first: the reports may have brought a challenger's canary share),
    // and anchor-first primaries with their backups (two rounds of three streams).
    for (expr, want) in [
        (
            r#"livesteer_decisions_total{kind="play",region="tw",reason="switch"}"#,
            1.0,
        ),
        (
            r#"livesteer_decisions_total{kind="push",region="tw",reason="anchor_first"}"#,
            6.0,
        ),
        (
            r#"livesteer_decisions_total{kind="push",region="tw",reason="backup"}"#,
            6.0,
        ),
    ] {
        let total: f64 = prom
            .query(&client, &format!("sum({expr})"))
            .await
            .iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .sum();
        // Other tests share the process's recorder: at least what this test caused.
        assert!(total >= want, "{expr}: {total} < {want}");
    }
    app.state.directory.writer().flush().await.unwrap();
    assert_eq!(app.state.directory.writer().depth(), 0);

    for (name, metric, label) in label_variables() {
        let res = client
            .get(format!(
                "http://127.0.0.1:{}/api/v1/label/{label}/values",
                prom.port
            ))
            .query(&[("match[]", metric.as_str())])
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        let values = body["data"].as_array().cloned().unwrap_or_default();
        assert!(
            values.iter().any(|v| v == "tw"),
            "variable {name}: {label} values of {metric}: {body}"
        );
    }
    drop(prom);
    app.stop().await;
}
