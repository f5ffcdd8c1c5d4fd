//! nginx HTTP edges in front of [`crate::media::Origin`]: two providers on loopback hosts of
//! their own, throttled or stopped by the player tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::media::{Proc, free_port_on, nginx_temp_paths, read, spawn_nginx};

/// A plain HTTP/1.0 GET on loopback, for the tests' own checks of nginx: (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_at("127.0.0.1", port, path)
}

/// [`http_get`] on another loopback address.
pub fn http_get_at(ip: &str, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect((ip, port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// One request an edge served, from its access log.
#[derive(Debug, Clone)]
#[allow(dead_code)] // Each test reads the fields it needs.
pub struct Access {
    /// Unix milliseconds when the response was done.
    pub at_ms: i64,
    pub status: u16,
    pub bytes: u64,
    /// The request URI as sent, query (and so any token) included.
    pub uri: String,
    pub user_agent: String,
}

/// An nginx HTTP edge on a loopback address and port of its own, proxying an origin's `/hls/`
/// and `/dash/` with CORS open, its
/// access log (`$request_uri` included, so each request's token shows) in its directory. The
/// master process is kept, so that a reload (a new rate limit) reaches the players' next
/// requests: the old worker closes its idle keep-alive connections.
pub struct Edge {
    pub name: String,
    /// Its own loopback address: CDNs have hosts of their own, and players tell edges apart by
    /// host (Shaka bans a failed location by host name, every location on that host with it).
    pub ip: String,
    pub port: u16,
    origin_http: u16,
    dir: tempfile::TempDir,
    proc: Option<Proc>,
    generation: u32,
}

impl Edge {
    pub fn new(name: &str, ip: &str, origin_http: u16) -> Edge {
        Edge {
            name: name.to_string(),
            ip: ip.to_string(),
            port: free_port_on(ip),
            origin_http,
            dir: tempfile::tempdir().unwrap(),
            proc: None,
            generation: 0,
        }
    }

    /// This edge's HLS base URL, as a provider's `hls:` endpoint.
    pub fn hls_base(&self) -> String {
        format!("http://{}:{}/hls", self.ip, self.port)
    }

    /// This edge's DASH base URL, as a provider's `dash:` endpoint.
    pub fn dash_base(&self) -> String {
        format!("http://{}:{}/dash", self.ip, self.port)
    }

    fn write_conf(&mut self, limit_rate: Option<&str>) -> PathBuf {
        self.generation += 1;
        let d = self.dir.path().display();
        // Workers would run as nobody under a root master, and then could not use the temp
        // directories; as a non-root user nginx only warns that `user` is ignored.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let limit = limit_rate
            .map(|r| format!("limit_rate {r};"))
            .unwrap_or_default();
        let conf = format!(
            r#"{user}
worker_processes 1;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format edge '$msec $status $body_bytes_sent $request_time "$request_uri" "$http_user_agent"';
    access_log {d}/access.log edge;
    {temp}
    keepalive_timeout 30s;
    server {{
        listen {ip}:{port};
        location = /__edge {{ return 200 "{gen}\n"; }}
        location /hls/ {{
            {limit}
            proxy_pass http://127.0.0.1:{origin}/hls/;
            proxy_http_version 1.1;
            proxy_buffers 32 64k;
            add_header Access-Control-Allow-Origin * always;
        }}
        location /dash/ {{
            {limit}
            proxy_pass http://127.0.0.1:{origin}/dash/;
            proxy_http_version 1.1;
            proxy_buffers 32 64k;
            add_header Access-Control-Allow-Origin * always;
        }}
    }}
}}
"#,
            ip = self.ip,
            port = self.port,
            origin = self.origin_http,
            gen = self.generation,
            temp = nginx_temp_paths(self.dir.path()),
        );
        std::fs::create_dir_all(self.dir.path().join("tmp")).unwrap();
        let path = self.dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        path
    }

    /// Waits until the workers of the latest configuration answer.
    fn wait_generation(&self) {
        let want = self.generation.to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok((200, body)) = http_get_at(&self.ip, self.port, "/__edge")
                && body.trim() == want
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "edge {} did not take configuration {want}: {}",
                self.name,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn start(&mut self) {
        assert!(self.proc.is_none(), "edge {} is running", self.name);
        let conf = self.write_conf(None);
        self.proc = Some(spawn_nginx(self.dir.path(), &conf));
        self.wait_generation();
    }

    /// Limits every response from now on to `rate` (nginx `limit_rate`, e.g. `40k` bytes a
    /// second per connection), by a graceful reload.
    pub fn throttle(&mut self, rate: &str) {
        self.write_conf(Some(rate));
        self.proc
            .as_ref()
            .expect("edge running")
            .signal(libc::SIGHUP);
        self.wait_generation();
    }

    /// Stops the edge: its port refuses connections from now on.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate(Duration::from_secs(5));
        }
        assert!(
            TcpStream::connect((self.ip.as_str(), self.port)).is_err(),
            "edge {} still listens",
            self.name
        );
    }

    /// Every request served so far.
    pub fn access_log(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut it = l.splitn(5, ' ');
                let msec: f64 = it.next()?.parse().ok()?;
                let status = it.next()?.parse().ok()?;
                let bytes = it.next()?.parse().ok()?;
                let _time = it.next()?;
                let (uri, ua) = it.next()?.split_once("\" \"")?;
                Some(Access {
                    at_ms: (msec * 1000.0) as i64,
                    status,
                    bytes,
                    uri: uri.trim_start_matches('"').to_string(),
                    user_agent: ua.trim_end_matches('"').to_string(),
                })
            })
            .filter(|a| a.uri != "/__edge")
            .collect()
    }

    pub fn logs(&self) -> String {
        read(self.dir.path(), &["nginx.stderr", "error.log"])
    }
}
