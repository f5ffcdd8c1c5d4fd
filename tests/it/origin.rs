//! A real origin: nginx with the RTMP module (Debian's `nginx` + `libnginx-mod-rtmp`) on
//! loopback ports chosen at run time, its `on_publish`, `on_publish_done`, `on_play`, `on_done`
//! and `on_update` hooks pointed at livesteer, and ffmpeg publishing a generated test pattern
//! to a livesteer-signed push URL.
//!
//! Skips with a printed reason when nginx, the module or ffmpeg is missing, except with
//! `CI=true`, where it fails (`.ci/run` installs them).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use livesteer::providers::signing::{Grant, issue_origin_token};
use livesteer::store::testing::TestDb;
use serde_json::{Value, json};

use crate::support::TestApp;

const NGINX: &str = "/usr/sbin/nginx";
const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const DEMO_SECRET: &str = "demo-only-local-nginx-secret-0001";

/// Whether the tools are installed; prints the reason (or fails in CI) when not.
fn tools_present() -> bool {
    let ffmpeg = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<&str> = [
        (!Path::new(NGINX).is_file()).then_some(NGINX),
        (!Path::new(RTMP_MODULE).is_file()).then_some(RTMP_MODULE),
        (!ffmpeg).then_some("ffmpeg"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing (apt-get install nginx libnginx-mod-rtmp ffmpeg)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("real-origin test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process this test started, killed (by its own pid) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Origin {
    dir: tempfile::TempDir,
    rtmp: u16,
    http: u16,
}

impl Origin {
    fn new() -> Origin {
        Origin {
            dir: tempfile::tempdir().unwrap(),
            rtmp: free_port(),
            http: free_port(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The provider directory: one nginx-rtmp origin on this test's ports.
    fn providers_dir(&self) -> PathBuf {
        let dir = self.path("providers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("local-nginx.yaml"),
            format!(
                "id: local-nginx\nkind: nginx_rtmp\nprotocols: [rtmp, hls]\nendpoints:\n  default:\n    \
                 push: rtmp://127.0.0.1:{r}/live\n    rtmp: rtmp://127.0.0.1:{r}/live\n    \
                 hls: http://127.0.0.1:{h}/hls\nsigning:\n  token_secret_env: ORIGIN_TEST_SECRET_UNSET\n  \
                 demo_secret: {DEMO_SECRET}\n",
                r = self.rtmp,
                h = self.http
            ),
        )
        .unwrap();
        dir
    }

    /// Short grace periods so the test takes seconds.
    fn policy_file(&self) -> PathBuf {
        let file = self.path("policy.yaml");
        std::fs::write(
            &file,
            format!(
                "regions:\n  - id: global\n    providers: [local-nginx]\ndefault_region: global\n\
                 rooms:\n  chat_required: true\n  confirm_ms: 3000\n  stall_grace_ms: 500\n  \
                 offline_grace_ms: 1500\n\
                 probes:\n  kinds: [hls, stats]\n  timeout_ms: 3000\n  stats:\n    - provider: local-nginx\n      \
                 kind: nginx_stat\n      url: http://127.0.0.1:{h}/stat\n\
                 jobs:\n  probe_streams: \"\"\n  sweep_rooms: \"\"\n",
                h = self.http
            ),
        )
        .unwrap();
        file
    }

    fn start_nginx(&self, livesteer: std::net::SocketAddr) -> Proc {
        let d = self.dir.path().display();
        let hook = format!("http://{livesteer}/v1/callbacks/local-nginx");
        for sub in ["hls", "tmp"] {
            std::fs::create_dir_all(self.path(sub)).unwrap();
        }
        let conf = format!(
            r#"load_module {RTMP_MODULE};
master_process off;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp};
        application live {{
            live on;
            record off;
            hls on;
            hls_path {d}/hls;
            hls_fragment 1s;
            hls_playlist_length 4s;
            on_publish {hook};
            on_publish_done {hook};
            on_play {hook};
            on_done {hook};
            on_update {hook};
            notify_update_timeout 1s;
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{http};
        location /stat {{ rtmp_stat all; }}
        location /hls {{
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            alias {d}/hls;
            add_header Cache-Control no-cache;
        }}
    }}
}}
"#,
            rtmp = self.rtmp,
            http = self.http,
        );
        let conf_path = self.path("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!("daemon off; pid {d}/nginx.pid;"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path("nginx.stderr")).unwrap())
            .spawn()
            .expect("start nginx");
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.rtmp)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {}: {}",
                self.rtmp,
                std::fs::read_to_string(self.path("nginx.stderr")).unwrap_or_default()
                    + &std::fs::read_to_string(self.path("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proc
    }

    fn ffmpeg(&self, url: &str, log: &str, seconds: Option<u32>) -> Proc {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "warning", "-nostdin", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine"]);
        if let Some(s) = seconds {
            cmd.args(["-t", &s.to_string()]);
        }
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "25",
            "-c:a",
            "aac",
            "-f",
            "flv",
            url,
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(self.path(log)).unwrap());
        Proc(cmd.spawn().expect("start ffmpeg"))
    }

    fn logs(&self) -> String {
        [
            "error.log",
            "ffmpeg-good.log",
            "ffmpeg-forged.log",
            "ffmpeg-expired.log",
        ]
        .iter()
        .map(|f| {
            format!(
                "--- {f}\n{}",
                std::fs::read_to_string(self.path(f)).unwrap_or_default()
            )
        })
        .collect()
    }
}

async fn room(app: &TestApp, anchor: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/rooms/{anchor}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn in_live_list(app: &TestApp, anchor: &str) -> bool {
    let (status, body) = app.get("/v1/rooms?state=live&limit=500").await;
    assert_eq!(status, 200, "{body}");
    body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["anchor_id"] == anchor)
}

/// Waits (polling every 50 ms, at most `limit`) until `anchor` has `state`; returns how long
/// it took.
async fn wait_state(
    app: &TestApp,
    origin: &Origin,
    anchor: &str,
    state: &str,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let r = room(app, anchor).await;
        if r["state"] == state {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "room did not become {state} within {limit:?}: {r}\n{}",
            origin.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a process to exit; `None` if it is still running after `limit`.
fn wait_exit(p: &mut Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = p.0.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_rtmp_publish_goes_live_then_stalled_then_offline() {
    if !tools_present() {
        return;
    }
    let origin = Origin::new();
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .providers(origin.providers_dir())
        .policy_file(origin.policy_file())
        .start()
        .await;
    let _nginx = origin.start_nginx(app.addr);
    // Timers advance in the sweep_rooms job; here it runs every 50 ms.
    let sweeper = {
        let state = app.state.clone();
        tokio::spawn(async move {
            loop {
                livesteer::rooms::sweep_rooms(state.clone()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let anchor = "anchor-origin-1";
    let created = app.create_stream(anchor, "global").await;
    let stream = created["stream_id"].as_str().unwrap().to_string();
    let push = created["push"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(created["push"][0]["provider"], "local-nginx");
    assert!(push.contains("?token="), "{push}");

    // A forged token and an expired one: nginx refuses the publish because livesteer said no.
    let base = push.split("?token=").next().unwrap().to_string();
    let forged = format!("{base}?token=1999999999-{}", "0".repeat(64));
    let expired_token = issue_origin_token(
        DEMO_SECRET.as_bytes(),
        Grant::Publish,
        "live",
        &stream,
        1_000_000,
    )
    .unwrap();
    let expired = format!("{base}?token={expired_token}");
    for (url, log) in [
        (&forged, "ffmpeg-forged.log"),
        (&expired, "ffmpeg-expired.log"),
    ] {
        let mut p = origin.ffmpeg(url, log, Some(20));
        let status = wait_exit(&mut p, Duration::from_secs(15)).unwrap_or_else(|| {
            panic!("ffmpeg kept publishing with a bad token\n{}", origin.logs())
        });
        assert!(
            !status.success(),
            "publish with a bad token succeeded\n{}",
            origin.logs()
        );
        assert_eq!(room(&app, anchor).await["state"], "offline");
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("livesteer_callbacks_total")
                && l.contains("provider=\"local-nginx\"")
                && l.contains("outcome=\"refused\"")),
        "{metrics}"
    );

    // The chat room is connected; then the real publish.
    let (status, _) = app
        .post(
            &format!("/v1/rooms/{anchor}/chat"),
            json!({"connected": true}),
        )
        .await;
    assert_eq!(status, 200);
    let mut ffmpeg = origin.ffmpeg(&push, "ffmpeg-good.log", None);
    let to_live = wait_state(&app, &origin, anchor, "live", Duration::from_secs(20)).await;
    assert!(in_live_list(&app, anchor).await);
    let r = room(&app, anchor).await;
    assert_eq!(r["providers"], json!(["local-nginx"]));
    assert_eq!(r["stream_id"], stream.as_str());
    eprintln!("publish start → live: {to_live:?}");

    // Active probes against the real origin: nginx-rtmp's stat page and its HLS output.
    let deadline = Instant::now() + Duration::from_secs(25);
    let (mut stat_ok, mut hls_ok) = (false, false);
    while !(stat_ok && hls_ok) {
        for r in livesteer::probes::run_once(&app.state).await {
            assert_eq!(r.stream_id, stream);
            if r.outcome == "healthy" && r.bitrate_kbps.is_some_and(|k| k > 0.0) {
                stat_ok |= r.kind == "nginx_stat";
                hls_ok |= r.kind == "hls";
            }
        }
        assert!(
            Instant::now() < deadline,
            "probes never found the stream healthy (stat {stat_ok}, hls {hls_ok})\n{}",
            origin.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let r = room(&app, anchor).await;
    assert_eq!(r["health"], 1.0, "{r}");
    assert!(
        r["ingest"][0]["bitrate_kbps"].as_f64().unwrap() > 0.0,
        "{r}"
    );

    // ffmpeg is killed: stalled after the stall grace, offline after the offline grace.
    drop(ffmpeg.0.kill());
    let _ = ffmpeg.0.wait();
    let killed = Instant::now();
    wait_state(&app, &origin, anchor, "stalled", Duration::from_secs(10)).await;
    assert!(!in_live_list(&app, anchor).await);
    let to_stalled = killed.elapsed();
    wait_state(&app, &origin, anchor, "offline", Duration::from_secs(10)).await;
    eprintln!(
        "publish stop → stalled: {to_stalled:?}, → offline: {:?}",
        killed.elapsed()
    );

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "livesteer_room_transitions_total{from=\"live\",to=\"stalled\"}",
        "livesteer_room_transitions_total{from=\"stalled\",to=\"offline\"}",
        "livesteer_rooms{state=\"offline\"}",
        "livesteer_probe_duration_seconds_bucket{provider=\"local-nginx\",kind=\"hls\",outcome=\"healthy\"",
    ] {
        assert!(metrics.contains(want), "no {want} in\n{metrics}");
    }
    sweeper.abort();
    app.state.rooms.flush().await.unwrap();
    assert_eq!(db.get_room(anchor).unwrap().unwrap().state, "offline");
    app.stop().await;
}
