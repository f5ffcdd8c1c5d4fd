//! Real media peers for the tests that need them: an nginx-rtmp origin (Debian's `nginx` +
//! `libnginx-mod-rtmp`) whose hooks call livesteer, ffmpeg publishing a generated test pattern,
//! and nginx HTTP edges that proxy the origin's HLS, each on loopback ports chosen at run time.
//!
//! Every process is started by the test and ended by its own pid when its handle drops.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";
pub const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
/// The demo secret of the test origins' provider files.
pub const DEMO_SECRET: &str = "demo-only-local-nginx-secret-0001";

/// Whether every tool is there; `missing` lists (what, install hint) for those that are not.
/// Prints the reason and returns false, or, with `CI=true`, fails the test.
pub fn require(test: &str, missing: &[(String, &str)]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let why = missing
        .iter()
        .map(|(what, hint)| format!("{what} missing ({hint})"))
        .collect::<Vec<_>>()
        .join("; ");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} cannot run: {why}");
    }
    eprintln!("skipping {test}: {why}");
    false
}

/// What the origin tests need that is not there: nginx, its RTMP module, ffmpeg.
pub fn missing_origin_tools() -> Vec<(String, &'static str)> {
    let hint = "apt-get install nginx libnginx-mod-rtmp ffmpeg";
    let mut out = Vec::new();
    for f in [NGINX, RTMP_MODULE] {
        if !Path::new(f).is_file() {
            out.push((f.to_string(), hint));
        }
    }
    if !runs("ffmpeg", &["-version"]) {
        out.push(("ffmpeg".to_string(), hint));
    }
    out
}

/// Whether `cmd args` runs and succeeds.
pub fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A free port on one loopback address (`127.0.0.2` is as much this machine as `127.0.0.1`).
pub fn free_port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process this test started, ended (by its own pid) when dropped: SIGTERM, then
/// SIGKILL if it has not exited within a few seconds. nginx's master ends its workers on
/// SIGTERM, which a SIGKILL would orphan.
pub struct Proc(pub Child);

impl Proc {
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.0.id()).expect("pid");
        // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped.
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// SIGTERM, and waits (at most `limit`, then SIGKILL) for the exit.
    pub fn terminate(&mut self, limit: Duration) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        if wait_exit(self, limit).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(3));
    }
}

/// Waits for a process to exit; `None` if it is still running after `limit`.
pub fn wait_exit(p: &mut Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return Some(s);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something listens on `port`, or fails with `logs()`.
fn wait_listening(port: u16, what: &str, logs: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port}: {}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The temp directory names nginx wants writable, under `dir`.
pub fn nginx_temp_paths(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n    \
         fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n    \
         scgi_temp_path {d}/tmp/scgi;"
    )
}

pub fn spawn_nginx(dir: &Path, conf: &Path) -> Proc {
    let d = dir.display();
    let child = Command::new(NGINX)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(conf)
        .arg("-g")
        .arg(format!("daemon off; pid {d}/nginx.pid;"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nginx.stderr")).unwrap())
        .spawn()
        .expect("start nginx");
    Proc(child)
}

pub fn read(dir: &Path, files: &[&str]) -> String {
    files
        .iter()
        .map(|f| {
            format!(
                "--- {f}\n{}",
                std::fs::read_to_string(dir.join(f)).unwrap_or_default()
            )
        })
        .collect()
}

/// How ffmpeg encodes the test pattern it publishes.
#[derive(Debug, Clone, Default)]
pub struct Encode {
    /// Stop after this long (`-t`); `None` runs until killed.
    pub seconds: Option<u32>,
    /// Constrained video bitrate; `None` leaves it to x264 (a plain pattern: a few hundred
    /// kbit/s).
    pub video_kbps: Option<u32>,
}

/// An nginx-rtmp origin: RTMP in, HLS (and DASH, when asked) out on its HTTP port, `rtmp_stat` at `/stat`, every
/// hook pointed at livesteer's callback for the `local-nginx` provider.
pub struct Origin {
    pub dir: tempfile::TempDir,
    pub rtmp: u16,
    pub http: u16,
    /// `hls_playlist_length`, seconds (fragments are one second).
    pub playlist_seconds: u32,
    /// DASH too (`dash on`, one-second fragments, a 30 s window): `/dash/<stream>.mpd` beside
    /// the HLS.
    pub dash: bool,
}

impl Origin {
    pub fn new() -> Origin {
        Origin {
            dir: tempfile::tempdir().unwrap(),
            rtmp: free_port(),
            http: free_port(),
            playlist_seconds: 4,
            dash: false,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The `local-nginx` provider file for this origin, into `dir`. `protocols` are the play
    /// protocols it offers itself (`[rtmp, hls]`; `[rtmp]` when edges deliver).
    pub fn write_provider(&self, dir: &Path, protocols: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("local-nginx.yaml"),
            format!(
                "id: local-nginx\nkind: nginx_rtmp\nprotocols: {protocols}\nendpoints:\n  default:\n    \
                 push: rtmp://127.0.0.1:{r}/live\n    rtmp: rtmp://127.0.0.1:{r}/live\n    \
                 hls: http://127.0.0.1:{h}/hls\nsigning:\n  token_secret_env: ORIGIN_TEST_SECRET_UNSET\n  \
                 demo_secret: {DEMO_SECRET}\n",
                r = self.rtmp,
                h = self.http
            ),
        )
        .unwrap();
    }

    /// Starts nginx with its hooks pointed at `livesteer`; returns once it listens.
    pub fn start_nginx(&self, livesteer: SocketAddr) -> Proc {
        let d = self.dir.path().display();
        let hook = format!("http://{livesteer}/v1/callbacks/local-nginx");
        for sub in ["hls", "dash", "tmp"] {
            std::fs::create_dir_all(self.path(sub)).unwrap();
        }
        // nginx-rtmp's own window (30 s): a DASH player that falls behind, or refetches what
        // a dead edge left half-loaded, still finds the segments.
        let dash = if self.dash {
            format!(
                "dash on;\n            dash_path {d}/dash;\n            dash_fragment 1s;\n            \
                 dash_playlist_length 30s;",
                d = self.dir.path().display(),
            )
        } else {
            String::new()
        };
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
            hls_playlist_length {len}s;
            {dash}
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
    {temp}
    server {{
        listen 127.0.0.1:{http};
        location /stat {{ rtmp_stat all; }}
        location /hls {{
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            alias {d}/hls;
            add_header Cache-Control no-cache;
        }}
        location /dash {{
            types {{ application/dash+xml mpd; video/mp4 m4v; audio/mp4 m4a; }}
            alias {d}/dash;
            add_header Cache-Control no-cache;
        }}
    }}
}}
"#,
            rtmp = self.rtmp,
            http = self.http,
            len = self.playlist_seconds,
            temp = nginx_temp_paths(self.dir.path()),
        );
        let conf_path = self.path("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let proc = spawn_nginx(self.dir.path(), &conf_path);
        wait_listening(self.rtmp, "nginx-rtmp", || {
            read(self.dir.path(), &["nginx.stderr", "error.log"])
        });
        proc
    }

    /// ffmpeg publishing a test pattern (25 fps, a keyframe a second, AAC audio) to `url`,
    /// its messages in `log` under the origin's directory.
    pub fn ffmpeg(&self, url: &str, log: &str, encode: &Encode) -> Proc {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "warning", "-nostdin", "-re"]);
        match encode.video_kbps {
            // Noise keeps the encoder at its constrained rate, so that the stream really
            // needs the bitrate it claims.
            Some(_) => cmd.args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25,noise=alls=30:allf=t",
            ]),
            None => cmd.args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]),
        };
        cmd.args(["-f", "lavfi", "-i", "sine"]);
        if let Some(s) = encode.seconds {
            cmd.args(["-t", &s.to_string()]);
        }
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "25",
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
        ]);
        if let Some(k) = encode.video_kbps {
            let rate = format!("{k}k");
            cmd.args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate]);
        }
        cmd.args(["-c:a", "aac", "-b:a", "64k", "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.path(log)).unwrap());
        Proc(cmd.spawn().expect("start ffmpeg"))
    }

    /// nginx's error log and every ffmpeg log in the origin's directory.
    pub fn logs(&self) -> String {
        let mut files = vec!["nginx.stderr".to_string(), "error.log".to_string()];
        if let Ok(dir) = std::fs::read_dir(self.dir.path()) {
            let mut logs: Vec<String> = dir
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ffmpeg"))
                .collect();
            logs.sort();
            files.extend(logs);
        }
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        read(self.dir.path(), &files)
    }
}
