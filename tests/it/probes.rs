//! Active HLS probes against edges served on loopback (a small actix server per provider that
//! serves a live media playlist whose sequence advances, and its segments): an edge that stops
//! (connection refused), answers 5xx or hangs past the probe timeout falls behind in play and
//! steering answers within two probe runs; one that answers 404 keeps its delivery cost; the
//! circuit breaker holds a dead edge off without its rank recovering by decay.
//!
//! The clock is manual and moves 10 s (the default probe interval) between runs; the tests
//! call `probes::run_once` directly (no job runs in a test app).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use livesteer::clock::ManualClock;
use livesteer::store::testing::TestDb;
use serde_json::Value;

use crate::support::TestApp;

const T0: i64 = 1_800_000_000_000;
const INTERVAL_MS: i64 = 10_000;

/// What an edge does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// A live stream: an advancing media playlist and 4000-byte segments.
    Live = 0,
    /// 503 to everything.
    Unavailable = 1,
    /// Answers nothing for 10 s (past the probe timeout).
    Hang = 2,
    /// 404 to everything: the stream is not there.
    NotFound = 3,
    /// A live stream of 0.2 s segments, each trickled over about 1.2 s: delivered within the
    /// probe timeout, but six times slower than real time.
    Slow = 4,
}

/// One provider's edge on a free loopback port.
struct Edge {
    id: &'static str,
    port: u16,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

impl Edge {
    async fn start(id: &'static str) -> Edge {
        let mode = Arc::new(AtomicU8::new(Mode::Live as u8));
        let requests = Arc::new(AtomicUsize::new(0));
        let (m, n) = (mode.clone(), requests.clone());
        let server = actix_web::HttpServer::new(move || {
            let (m, n) = (m.clone(), n.clone());
            actix_web::App::new().default_service(actix_web::web::to(
                move |req: actix_web::HttpRequest| {
                    let seq = n.fetch_add(1, Ordering::SeqCst);
                    let mode = m.load(Ordering::SeqCst);
                    async move { answer(mode, seq, req.path()).await }
                },
            ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Edge {
            id,
            port,
            mode,
            requests,
            handle,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops listening: connections are refused from now on.
    async fn stop(&self) {
        self.handle.stop(false).await;
    }

    /// The provider file: a self-hosted origin whose HLS is served here.
    fn provider_file(&self) -> String {
        format!(
            "id: {id}\nkind: nginx_rtmp\nprotocols: [rtmp, hls]\nendpoints:\n  default:\n    \
             push: rtmp://127.0.0.1:1/live\n    rtmp: rtmp://127.0.0.1:1/live\n    \
             hls: http://127.0.0.1:{port}/hls\nsigning:\n  token_secret_env: PROBES_TEST_SECRET_UNSET\n  \
             demo_secret: demo-only-{id}-secret-0123456789\n",
            id = self.id,
            port = self.port
        )
    }
}

async fn answer(mode: u8, seq: usize, path: &str) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    match mode {
        m if m == Mode::Unavailable as u8 => HttpResponse::ServiceUnavailable().body("down"),
        m if m == Mode::NotFound as u8 => HttpResponse::NotFound().body("no such stream"),
        m if m == Mode::Hang as u8 => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            HttpResponse::Ok().body("too late")
        }
        m if m == Mode::Slow as u8 && path.ends_with(".m3u8") => HttpResponse::Ok()
            .content_type("application/vnd.apple.mpegurl")
            .body(format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{seq}\n\
                 #EXTINF:0.200,\nseg{seq}.ts\n"
            )),
        m if m == Mode::Slow as u8 => {
            let chunks = futures_util::stream::unfold(0u8, |n| async move {
                if n == 4 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                let chunk = actix_web::web::Bytes::from(vec![0x47u8; 1000]);
                Some((Ok::<_, std::convert::Infallible>(chunk), n + 1))
            });
            HttpResponse::Ok()
                .content_type("video/mp2t")
                .streaming(chunks)
        }
        _ if path.ends_with(".m3u8") => HttpResponse::Ok()
            .content_type("application/vnd.apple.mpegurl")
            .body(format!(
                "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{seq}\n\
                 #EXTINF:2.000,\nseg{seq}.ts\n#EXTINF:2.000,\nseg{}.ts\n",
                seq + 1
            )),
        _ => HttpResponse::Ok()
            .content_type("video/mp2t")
            .body(vec![0x47u8; 4000]),
    }
}

/// livesteer over `edges` (one region, `tw`, preferring them in this order), HLS probes only,
/// with `probes` lines added to the probes section; exact orders (no exploration).
struct World {
    app: TestApp,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    _db: TestDb,
}

async fn world(edges: &[&Edge], probes: &str) -> World {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    for e in edges {
        std::fs::write(providers.join(format!("{}.yaml", e.id)), e.provider_file()).unwrap();
    }
    let ids: Vec<&str> = edges.iter().map(|e| e.id).collect();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "regions:\n  - id: tw\n    providers: [{}]\ndefault_region: tw\n\
             ingest:\n  backups: {}\n\
             scoring:\n  exploration_rate: 0\n\
             probes:\n  kinds: [hls]\n  {timeout}\n  connect_timeout_ms: 200\n  flv_read_ms: 100\n  stats: []\n{probes}\
             jobs:\n  probe_streams: \"\"\n  sweep_rooms: \"\"\n",
            ids.join(", "),
            edges.len() - 1,
            timeout = if probes.contains("timeout_ms:") {
                ""
            } else {
                "timeout_ms: 400"
            },
        ),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let app = TestApp::builder(&db)
        .providers(providers)
        .policy_file(policy)
        .clock(clock.clone())
        .start()
        .await;
    World {
        app,
        clock,
        _dir: dir,
        _db: db,
    }
}

impl World {
    /// A stream in `tw` carried by every edge.
    async fn stream(&self, anchor: &str, carriers: usize) -> String {
        let created = self.app.create_stream(anchor, "tw").await;
        assert_eq!(
            created["push"].as_array().unwrap().len(),
            carriers,
            "{created}"
        );
        created["stream_id"].as_str().unwrap().to_string()
    }

    /// One probe run, a probe interval after the last; (provider → outcome).
    async fn probe(&self) -> Vec<(String, &'static str)> {
        self.clock.advance_ms(INTERVAL_MS);
        let mut out: Vec<(String, &'static str)> =
            livesteer::probes::run_once(&self.app.state.probing())
                .await
                .into_iter()
                .map(|r| (r.provider, r.outcome))
                .collect();
        out.sort();
        out
    }

    /// How many failed sessions a failed probe run counts as (the policy's).
    fn probe_failure_weight(&self) -> f64 {
        self.app
            .state
            .catalog
            .load()
            .policy
            .scoring
            .probe_failure_weight
    }

    /// The delivery evidence `provider` holds in `tw`, as the engine has it now.
    fn samples(&self, provider: &str) -> f64 {
        self.app.state.scorer.delivery_score(provider, "tw").samples
    }

    /// Waits until the signal consumer has applied what the last run emitted (`provider` holds
    /// at least `samples`), then rebuilds the snapshot.
    async fn settle(&self, provider: &str, samples: f64) {
        for _ in 0..100 {
            if self.samples(provider) >= samples - 1e-9 {
                self.app.state.scorer.refresh();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{provider} holds {} samples, not {samples}",
            self.samples(provider)
        );
    }

    /// Lets the consumer apply anything pending (for "nothing was emitted"), then rebuilds.
    async fn quiet(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.app.state.scorer.refresh();
    }

    async fn play_order(&self, stream: &str) -> Vec<String> {
        let (status, body) = self
            .app
            .get(&format!("/v1/streams/{stream}/play?protocol=hls&region=tw"))
            .await;
        assert_eq!(status, 200, "{body}");
        names(&body["candidates"], |c| &c["provider"])
    }

    async fn steering_order(&self, stream: &str) -> Vec<String> {
        let (status, body) = self
            .app
            .get(&format!("/v1/steering/hls/{stream}?region=tw"))
            .await;
        assert_eq!(status, 200, "{body}");
        names(&body["PATHWAY-PRIORITY"], |p| p)
    }

    fn cost(&self, provider: &str) -> f64 {
        self.app
            .state
            .scorer
            .snapshot()
            .cost("tw", provider)
            .unwrap()
    }
}

fn names(v: &Value, f: impl Fn(&Value) -> &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| f(x).as_str().unwrap().to_string())
        .collect()
}

fn pair(a: &Edge, oa: &'static str, b: &Edge, ob: &'static str) -> Vec<(String, &'static str)> {
    let mut v = vec![(a.id.to_string(), oa), (b.id.to_string(), ob)];
    v.sort();
    v
}

/// The weight a scope failing every run holds after `runs` runs an interval apart.
fn held(runs: i32, per_run: f64) -> f64 {
    let f = 0.5f64.powf(INTERVAL_MS as f64 / 15_000.0);
    (0..runs).map(|k| per_run * f.powi(k)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_provider_falls_behind_within_two_probe_intervals() {
    let (a, b) = (Edge::start("edge-a").await, Edge::start("edge-b").await);
    let w = world(&[&a, &b], "").await;
    let weight = w.probe_failure_weight();
    let stream = w.stream("anchor-dead-edge", 2).await;

    // Both edges serve the stream: equal costs, the policy's order.
    assert_eq!(w.probe().await, pair(&a, "healthy", &b, "healthy"));
    w.quiet().await;
    assert_eq!(w.cost("edge-a"), w.cost("edge-b"));
    assert_eq!(w.play_order(&stream).await, ["edge-a", "edge-b"]);
    assert_eq!(w.steering_order(&stream).await, ["edge-a", "edge-b"]);

    // A player already on edge-a, playing well there.
    let (_, on_a) = w
        .app
        .get(&format!(
            "/v1/steering/hls/{stream}?region=tw&_HLS_pathway=edge-a&_HLS_throughput=6000000"
        ))
        .await;
    let reload = on_a["RELOAD-URI"].as_str().unwrap().to_string();

    // edge-a's server stops: connections are refused.
    a.stop().await;
    assert_eq!(w.probe().await, pair(&a, "error", &b, "healthy"));
    w.settle("edge-a", held(1, weight)).await;
    assert!(w.cost("edge-a") > 2.0 * w.cost("edge-b"));
    assert_eq!(w.probe().await, pair(&a, "error", &b, "healthy"));
    w.settle("edge-a", held(2, weight)).await;
    assert_eq!(w.play_order(&stream).await, ["edge-b", "edge-a"]);
    assert_eq!(w.steering_order(&stream).await, ["edge-b", "edge-a"]);
    // The player on edge-a is moved at once, not with the crowd's `move_share` chance: its
    // sessions are failing, there is no crowd to protect.
    let res = w
        .app
        .client
        .get(format!(
            "{reload}&_HLS_pathway=edge-a&_HLS_throughput=6000000"
        ))
        .send()
        .await
        .unwrap();
    let moved: Value = res.json().await.unwrap();
    assert_eq!(
        names(&moved["PATHWAY-PRIORITY"], |p| p),
        ["edge-b", "edge-a"],
        "{moved}"
    );
    // The live edge gained nothing from answering: probes are no viewers.
    assert_eq!(w.samples("edge-b"), 0.0);

    let metrics = w
        .app
        .client
        .get(w.app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "livesteer_signals_total{kind=\"probe_failure\"}",
        "livesteer_probe_duration_seconds_count{provider=\"edge-a\",kind=\"hls\",outcome=\"error\"}",
    ] {
        assert!(metrics.contains(want), "no {want} in\n{metrics}");
    }
    b.stop().await;
    w.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_and_a_timeout_count_as_a_dead_edge_and_a_404_does_not() {
    for (mode, outcome, dead) in [
        (Mode::Unavailable, "error", true),
        (Mode::Hang, "error", true),
        (Mode::NotFound, "unhealthy", false),
    ] {
        let (a, b) = (Edge::start("edge-a").await, Edge::start("edge-b").await);
        let w = world(&[&a, &b], "").await;
        let weight = w.probe_failure_weight();
        let stream = w.stream("anchor-bad-edge", 2).await;
        assert_eq!(w.probe().await, pair(&a, "healthy", &b, "healthy"));

        a.set(mode);
        for run in 1..=2 {
            assert_eq!(
                w.probe().await,
                pair(&a, outcome, &b, "healthy"),
                "{mode:?}"
            );
            if dead {
                w.settle("edge-a", held(run, weight)).await;
            } else {
                w.quiet().await;
            }
        }
        if dead {
            assert!(w.cost("edge-a") > 2.0 * w.cost("edge-b"), "{mode:?}");
            assert_eq!(
                w.play_order(&stream).await,
                ["edge-b", "edge-a"],
                "{mode:?}"
            );
            assert_eq!(
                w.steering_order(&stream).await,
                ["edge-b", "edge-a"],
                "{mode:?}"
            );
        } else {
            // "Not there" stays what it was: this stream is not flowing on edge-a (ingest
            // evidence for its anchor), not a dead edge for the region.
            assert_eq!(w.samples("edge-a"), 0.0, "{mode:?}");
            assert_eq!(w.cost("edge-a"), w.cost("edge-b"), "{mode:?}");
            let scorer = &w.app.state.scorer;
            let unhealthy = |p| scorer.ingest_unhealthy(p, "anchor-bad-edge", "tw").0;
            assert!(unhealthy("edge-a") > 2.0 * unhealthy("edge-b"), "{mode:?}");
        }
        a.stop().await;
        b.stop().await;
        w.app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_holds_a_dead_edge_off_and_it_stays_behind() {
    let (a, b) = (Edge::start("edge-a").await, Edge::start("edge-b").await);
    // Two failures open the breaker for 30 s (the default cooldown).
    let w = world(
        &[&a, &b],
        "  breaker_failures: 2\n  breaker_cooldown_ms: 30000\n",
    )
    .await;
    let weight = w.probe_failure_weight();
    let stream = w.stream("anchor-breaker", 2).await;
    assert_eq!(w.probe().await, pair(&a, "healthy", &b, "healthy"));

    a.set(Mode::Unavailable);
    for run in 1..=2 {
        assert_eq!(w.probe().await, pair(&a, "error", &b, "healthy"));
        w.settle("edge-a", held(run, weight)).await;
    }
    let asked = a.requests();
    let mut cost = w.cost("edge-a");
    assert_eq!(w.play_order(&stream).await, ["edge-b", "edge-a"]);

    // Open: two more runs make no request to edge-a, yet it keeps counting as failing, so its
    // evidence grows instead of decaying and it stays behind.
    for run in 3..=4 {
        assert_eq!(w.probe().await, pair(&a, "skipped", &b, "healthy"));
        w.settle("edge-a", held(run, weight)).await;
        assert_eq!(a.requests(), asked, "run {run} asked the dead edge");
        assert!(w.cost("edge-a") > cost, "run {run}: edge-a's cost decays");
        cost = w.cost("edge-a");
        assert_eq!(w.play_order(&stream).await, ["edge-b", "edge-a"]);
        assert_eq!(w.steering_order(&stream).await, ["edge-b", "edge-a"]);
    }

    // The cooldown is out: the half-open trial asks again. edge-a is back: no more failure
    // evidence (what it holds only decays).
    a.set(Mode::Live);
    assert_eq!(w.probe().await, pair(&a, "healthy", &b, "healthy"));
    assert!(a.requests() > asked);
    w.quiet().await;
    let before = w.samples("edge-a");
    assert!(before < held(4, weight), "{before}");
    assert_eq!(w.probe().await, pair(&a, "healthy", &b, "healthy"));
    w.quiet().await;
    assert!(w.samples("edge-a") < before);
    a.stop().await;
    b.stop().await;
    w.app.stop().await;
}

/// An edge that delivers every segment, but slower than it plays, starves live players: past
/// `probes.segment_realtime_factor` × the segment's duration the probe counts it as a dead
/// edge, long before the probe timeout, and it falls behind within two probe runs. With the
/// limit off the same edge is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_slower_than_real_time_counts_as_dead_unless_the_limit_is_off() {
    for (limit, outcome) in [("1.5", "error"), ("0", "healthy")] {
        let (a, b) = (Edge::start("edge-a").await, Edge::start("edge-b").await);
        let probes = format!("  timeout_ms: 5000\n  segment_realtime_factor: {limit}\n");
        let w = world(&[&a, &b], &probes).await;
        let weight = w.probe_failure_weight();
        let stream = w.stream("anchor-slow-edge", 2).await;
        assert_eq!(w.probe().await, pair(&a, "healthy", &b, "healthy"));
        a.set(Mode::Slow);
        for run in 1..=2 {
            w.clock.advance_ms(INTERVAL_MS);
            let reports = livesteer::probes::run_once(&w.app.state.probing()).await;
            let on_a = reports.iter().find(|r| r.provider == "edge-a").unwrap();
            assert_eq!(on_a.outcome, outcome, "factor {limit}: {on_a:?}");
            if outcome == "error" {
                assert!(
                    on_a.detail.contains("slower than real time"),
                    "factor {limit}: {on_a:?}"
                );
                w.settle("edge-a", held(run, weight)).await;
            }
        }
        if outcome == "error" {
            assert!(w.cost("edge-a") > 2.0 * w.cost("edge-b"));
            assert_eq!(w.play_order(&stream).await, ["edge-b", "edge-a"]);
        } else {
            w.quiet().await;
            assert_eq!(w.play_order(&stream).await, ["edge-a", "edge-b"]);
        }
        a.stop().await;
        b.stop().await;
        w.app.stop().await;
    }
}
