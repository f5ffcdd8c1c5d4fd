//! `TestApp`: livesteer on a real socket (port 0), over a fresh database, with the shipped
//! files or a test set; `YamlDoc`: the shipped policy (or a scenario) edited by key path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use livesteer::clock::{Clock, SystemClock};
use livesteer::config::Config;
use livesteer::state::AppState;
use livesteer::store::testing::TestDb;
use serde::Serialize;
use serde_json::Value;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A provider directory with every kind enabled (secrets from [`test_secrets`]).
pub fn all_providers_dir() -> PathBuf {
    root().join("tests/data/providers-all")
}

/// Made-up secrets for the vendor providers in `tests/data/providers-all`.
pub fn test_secrets() -> HashMap<String, String> {
    [
        ("TENCENT_CSS_PUSH_KEY", "e12c46f2612d5106e2034781ab261ca3"),
        ("TENCENT_CSS_PLAY_KEY", "0d9a3d2f6e3b4c1aa5f1b2c3d4e5f607"),
        ("ALIBABA_LIVE_PUSH_KEY", "aliyuncdnexp1234"),
        ("ALIBABA_LIVE_PLAY_KEY", "aliyunplaykey5678"),
        ("AKAMAI_EDGEAUTH_KEY", "7a5c2be9d1f4e8b0c3a6d9e2f5b8c1a4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    server: actix_web::dev::ServerHandle,
    writer: Option<tokio::task::JoinHandle<()>>,
    _policy_dir: Option<Arc<tempfile::TempDir>>,
    _providers_dir: Option<Arc<tempfile::TempDir>>,
}

/// A change to the process configuration.
type ConfigEdit = Box<dyn FnOnce(&mut Config)>;

pub struct Builder {
    database_url: String,
    providers_dir: PathBuf,
    policy_file: PathBuf,
    secrets: HashMap<String, String>,
    clock: Arc<dyn Clock>,
    admin_token: Option<String>,
    /// Holds an edited policy file while the app runs.
    policy_dir: Option<Arc<tempfile::TempDir>>,
    /// Changes to the process configuration (public URL, CORS origins, …).
    config_edits: Vec<ConfigEdit>,
    /// Holds a written provider directory while the app runs.
    providers_tmp: Option<Arc<tempfile::TempDir>>,
}

impl TestApp {
    /// The shipped `providers/` and `policies/default.yaml` over `db`.
    pub fn builder(db: &TestDb) -> Builder {
        Builder {
            database_url: db.url().to_string(),
            providers_dir: root().join("providers"),
            policy_file: root().join("policies/default.yaml"),
            secrets: HashMap::new(),
            clock: Arc::new(SystemClock),
            admin_token: None,
            policy_dir: None,
            config_edits: Vec::new(),
            providers_tmp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).send().await.unwrap();
        decode(res).await
    }

    /// A GET with a bearer token (the admin and reconciliation routes).
    pub async fn get_as(&self, path: &str, token: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        decode(res).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        decode(res).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        decode(res).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let res = self.client.delete(self.url(path)).send().await.unwrap();
        decode(res).await
    }

    /// Creates a stream and returns the answer.
    pub async fn create_stream(&self, anchor: &str, region: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/streams",
                serde_json::json!({ "anchor_id": anchor, "region": region }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Stops the server gracefully, writing everything accepted, as `serve` does on SIGTERM.
    pub async fn stop(mut self) {
        self.server.stop(true).await;
        self.state.writer.flush().await.unwrap();
        drop(self.state);
        if let Some(w) = self.writer.take() {
            w.abort();
        }
    }
}

async fn decode(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = res.text().await.unwrap();
    if status >= 400 {
        assert!(
            ct.starts_with("application/json"),
            "error {status} is not JSON ({ct}): {text}"
        );
    }
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

impl Builder {
    pub fn providers(mut self, dir: PathBuf) -> Self {
        self.providers_dir = dir;
        self
    }

    /// Every kind of provider (`tests/data/providers-all`, with [`test_secrets`]), each playing
    /// HLS from `origin`.
    pub fn origin(self, origin: &TestOrigin) -> Self {
        self.origin_at(origin.addr)
    }

    /// As [`Builder::origin`], for an origin at `addr` (which may not be listening).
    pub fn origin_at(mut self, addr: SocketAddr) -> Self {
        let dir = Arc::new(providers_at(addr));
        self.providers_dir = dir.path().to_path_buf();
        self.providers_tmp = Some(dir);
        self.secrets = test_secrets();
        self
    }

    /// The policy so far (the shipped one unless edited or replaced) changed by `edit`,
    /// written to a temp file: `.policy(|p| p.set("scoring.exploration_rate", 0))`.
    pub fn policy(mut self, edit: impl FnOnce(YamlDoc) -> YamlDoc) -> Self {
        let doc = edit(YamlDoc::load(&self.policy_file));
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let file = dir.path().join("default.yaml");
        doc.write(&file);
        self.policy_file = file;
        self.policy_dir = Some(dir);
        self
    }

    /// A policy file of the test's own.
    pub fn policy_file(mut self, file: PathBuf) -> Self {
        self.policy_file = file;
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// No exploration draws, so that play orders are exact.
    pub fn without_exploration(self) -> Self {
        self.policy(|p| p.set("scoring.exploration_rate", 0))
    }

    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_string());
        self
    }

    pub fn secrets(mut self, secrets: HashMap<String, String>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Changes the process configuration before start.
    pub fn config(mut self, edit: impl FnOnce(&mut Config) + 'static) -> Self {
        self.config_edits.push(Box::new(edit));
        self
    }

    pub async fn start(self) -> TestApp {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: self.database_url,
            providers_dir: self.providers_dir,
            policy_file: self.policy_file,
            admin_token: self.admin_token,
            db_pool_size: 4,
            flush_interval_ms: 20,
            ..Config::default()
        };
        for edit in self.config_edits {
            edit(&mut config);
        }
        let (state, writer) = AppState::start(config, Arc::new(self.secrets), self.clock)
            .await
            .unwrap();
        let bound = livesteer::server::bind(state.clone(), "127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = bound.addrs()[0];
        let server = bound.server.handle();
        tokio::spawn(bound.server);
        TestApp {
            addr,
            state,
            client: reqwest::Client::new(),
            server,
            writer: Some(writer),
            _policy_dir: self.policy_dir,
            _providers_dir: self.providers_tmp,
        }
    }
}

/// What [`TestOrigin`] answers for a stream's playlist.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status and a body, after a delay.
    Body {
        status: u16,
        body: String,
        delay: std::time::Duration,
    },
    /// Nothing until [`TestOrigin::release`], then a 404.
    Hold,
}

impl Reply {
    pub fn playlist(body: &str) -> Reply {
        Reply::Body {
            status: 200,
            body: body.to_string(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Reply {
        Reply::Body {
            status,
            body: String::new(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub fn after(self, delay: std::time::Duration) -> Reply {
        match self {
            Reply::Body { status, body, .. } => Reply::Body {
                status,
                body,
                delay,
            },
            hold => hold,
        }
    }
}

/// A media playlist: an origin without a ladder.
pub const MEDIA_PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n#EXTINF:2.000,\nseg-41.ts\n#EXTINF:2.000,\nseg-42.ts\n";

/// One request the origin saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    /// Requests being answered (held or delayed) when it arrived, itself not counted.
    pub in_flight: usize,
}

struct OriginState {
    default: Mutex<Reply>,
    /// Stream id → reply for its playlist (`…/{id}.m3u8` under any provider).
    streams: Mutex<HashMap<String, Reply>>,
    /// Path → reply, before the stream's (one provider's URL only).
    paths: Mutex<HashMap<String, Reply>>,
    hits: Mutex<Vec<Hit>>,
    in_flight: std::sync::atomic::AtomicUsize,
    release: tokio::sync::watch::Sender<bool>,
}

/// An HTTP origin on loopback (port 0) that every provider of [`TestOrigin::providers_dir`]
/// plays from: `http://addr/<provider>/<path of its HLS endpoint>/<stream>.m3u8` (and `.mpd`
/// under its DASH endpoint). It answers a stream's playlist or MPD as told ([`TestOrigin::serve`], else the default reply) and any other
/// path with a 404, and counts what it is asked. It runs on the test's runtime.
#[derive(Clone)]
pub struct TestOrigin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
}

impl TestOrigin {
    pub fn start(default: Reply) -> TestOrigin {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let state = Arc::new(OriginState {
            default: Mutex::new(default),
            streams: Mutex::new(HashMap::new()),
            paths: Mutex::new(HashMap::new()),
            hits: Mutex::new(Vec::new()),
            in_flight: Default::default(),
            release: tokio::sync::watch::channel(false).0,
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(answer(conn, s.clone()));
            }
        });
        TestOrigin { addr, state }
    }

    /// The reply for `stream`'s playlist from now on.
    pub fn serve(&self, stream: &str, reply: Reply) {
        self.state
            .streams
            .lock()
            .unwrap()
            .insert(stream.to_string(), reply);
    }

    /// The reply for `path` (one provider's URL of a stream) from now on, before the stream's.
    pub fn serve_path(&self, path: &str, reply: Reply) {
        self.state
            .paths
            .lock()
            .unwrap()
            .insert(path.to_string(), reply);
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// The requests for `stream`'s playlist so far.
    pub fn fetches(&self, stream: &str) -> Vec<Hit> {
        let (m3u8, mpd) = (format!("/{stream}.m3u8"), format!("/{stream}.mpd"));
        self.hits()
            .into_iter()
            .filter(|h| h.path.ends_with(&m3u8) || h.path.ends_with(&mpd))
            .collect()
    }

    /// Held requests answer (404) now, and later ones at once.
    pub fn release(&self) {
        self.state.release.send_replace(true);
    }
}

/// `tests/data/providers-all` with every provider's HLS and DASH endpoints on `addr`
/// (`http://addr/<provider>/<path>`), in a temp dir.
pub fn providers_at(addr: SocketAddr) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = all_providers_dir();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .trim()
            .to_string();
        let mut out = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            if let Some((key, url)) = ["hls", "dash"]
                .iter()
                .find_map(|k| Some((k, trimmed.strip_prefix(&format!("{k}: "))?)))
            {
                let after_scheme = url.split_once("://").unwrap().1;
                let path = &after_scheme[after_scheme.find('/').unwrap()..];
                out.push_str(&format!("{indent}{key}: http://{addr}/{id}{path}\n"));
            } else if let Some(file) = trimmed.strip_prefix("private_key_file: ") {
                let abs = from.join(file.trim());
                out.push_str(&format!("{indent}private_key_file: {}\n", abs.display()));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(dir.path().join(path.file_name().unwrap()), out).unwrap();
    }
    dir
}

async fn answer(mut conn: tokio::net::TcpStream, s: Arc<OriginState>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let in_flight = s.in_flight.fetch_add(1, Ordering::SeqCst);
    s.hits.lock().unwrap().push(Hit {
        path: path.clone(),
        in_flight,
    });
    let by_path = s.paths.lock().unwrap().get(&path).cloned();
    let reply = if by_path.is_some() {
        by_path
    } else {
        let streams = s.streams.lock().unwrap();
        let stream = path
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".m3u8").or_else(|| f.strip_suffix(".mpd")))
            .unwrap_or("");
        match streams.get(stream) {
            Some(r) => Some(r.clone()),
            None if !stream.is_empty() && path.matches('/').count() >= 2 => {
                Some(s.default.lock().unwrap().clone())
            }
            None => None,
        }
    };
    let (status, body) = match reply {
        Some(Reply::Body {
            status,
            body,
            delay,
        }) => {
            tokio::time::sleep(delay).await;
            (status, body)
        }
        Some(Reply::Hold) => {
            let mut released = s.release.subscribe();
            let _ = released.wait_for(|r| *r).await;
            (404, String::new())
        }
        None => (404, String::new()),
    };
    let res = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/vnd.apple.mpegurl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(res.as_bytes()).await;
    let _ = conn.shutdown().await;
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// A YAML file as a value tree, edited by key path: the shipped policy
/// ([`YamlDoc::shipped_policy`]) or a test's own scenario, changed field by field and written
/// out (without its comments; the layout is the serializer's).
///
/// A path is keys joined by `.`, a list item picked by `[index]` or by `[field=value]` (the
/// item whose `field` is `value`): `regions[id=tw].cidrs[0]`,
/// `probes.stats[provider=local-srs].url`.
/// Every edit panics when what it names is not there ([`YamlDoc::set`] and
/// [`YamlDoc::remove`]: the key; [`YamlDoc::insert`]: the key's parent, and the key must be
/// new; [`YamlDoc::push`]: the list), so a renamed key fails the tests that edit it instead
/// of leaving them on the shipped value.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlDoc(Value);

/// One step of a [`YamlDoc`] path.
#[derive(Debug)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
    Item { field: &'a str, value: &'a str },
}

impl YamlDoc {
    pub fn parse(text: &str) -> YamlDoc {
        // YAML 1.2 booleans: `NO` (Norway, in a country list) stays a string.
        let options = serde_saphyr::options! { strict_booleans: true };
        YamlDoc(
            serde_saphyr::from_str_with_options(text, options)
                .unwrap_or_else(|e| panic!("not YAML: {e}")),
        )
    }

    pub fn load(file: &Path) -> YamlDoc {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        YamlDoc::parse(&text)
    }

    /// `policies/default.yaml`.
    pub fn shipped_policy() -> YamlDoc {
        YamlDoc::load(&root().join("policies/default.yaml"))
    }

    /// Replaces the value of the existing key (or list item) at `path`.
    pub fn set(mut self, path: &str, value: impl Serialize) -> YamlDoc {
        *self.at(path) = to_value(path, value);
        self
    }

    /// Adds the key at `path`, which must be new, to its existing parent mapping.
    pub fn insert(mut self, path: &str, value: impl Serialize) -> YamlDoc {
        let (parent, key) = self.parent_of(path);
        let Step::Key(key) = key else {
            panic!("{path}: insert adds a key; set replaces a list item")
        };
        let value = to_value(path, value);
        let map = parent
            .as_object_mut()
            .unwrap_or_else(|| panic!("{path}: the parent is not a mapping"));
        let old = map.insert(key.to_string(), value);
        assert!(old.is_none(), "{path} is there already: set it instead");
        self
    }

    /// Removes the existing key (or list item) at `path`.
    pub fn remove(mut self, path: &str) -> YamlDoc {
        let (parent, last) = self.parent_of(path);
        let removed = match (last, parent) {
            (Step::Key(key), Value::Object(map)) => map.remove(key).is_some(),
            (Step::Index(i), Value::Array(items)) if i < items.len() => {
                items.remove(i);
                true
            }
            (Step::Item { field, value }, Value::Array(items)) => {
                let before = items.len();
                items.retain(|item| !matches_item(item, field, value));
                items.len() + 1 == before
            }
            _ => false,
        };
        assert!(removed, "{path}: no such key to remove");
        self
    }

    /// Appends `value` to the existing list at `path`.
    pub fn push(mut self, path: &str, value: impl Serialize) -> YamlDoc {
        let value = to_value(path, value);
        self.at(path)
            .as_array_mut()
            .unwrap_or_else(|| panic!("{path} is not a list"))
            .push(value);
        self
    }

    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.0).unwrap()
    }

    pub fn write(&self, file: &Path) {
        std::fs::write(file, self.to_yaml())
            .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }

    /// The node at `path`, which must be there.
    fn at(&mut self, path: &str) -> &mut Value {
        let mut node = &mut self.0;
        for step in steps(path) {
            node = child(node, &step).unwrap_or_else(|| panic!("{path}: no {step:?} there"));
        }
        node
    }

    /// The node holding the last step of `path` (which must be there), and that step.
    fn parent_of<'p>(&mut self, path: &'p str) -> (&mut Value, Step<'p>) {
        let mut steps = steps(path);
        let last = steps.pop().unwrap();
        let mut node = &mut self.0;
        for step in steps {
            node = child(node, &step).unwrap_or_else(|| panic!("{path}: no {step:?} there"));
        }
        (node, last)
    }
}

fn to_value(path: &str, value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn matches_item(item: &Value, field: &str, value: &str) -> bool {
    item.get(field).and_then(Value::as_str) == Some(value)
}

fn child<'v>(node: &'v mut Value, step: &Step) -> Option<&'v mut Value> {
    match step {
        Step::Key(key) => node.as_object_mut()?.get_mut(*key),
        Step::Index(i) => node.as_array_mut()?.get_mut(*i),
        Step::Item { field, value } => node
            .as_array_mut()?
            .iter_mut()
            .find(|item| matches_item(item, field, value)),
    }
}

/// `a.b[2].c[id=x]` → `a`, `b`, `2`, `c`, `id=x`.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner
                .find(']')
                .unwrap_or_else(|| panic!("{path}: no ] after ["));
            let pick = &inner[..end];
            steps.push(match pick.split_once('=') {
                Some((field, value)) => Step::Item { field, value },
                None => Step::Index(
                    pick.parse()
                        .unwrap_or_else(|_| panic!("{path}: [{pick}] is no index")),
                ),
            });
            rest = &inner[end + 1..];
        } else {
            let key_rest = if steps.is_empty() {
                rest
            } else {
                rest.strip_prefix('.')
                    .unwrap_or_else(|| panic!("{path}: a key must follow a ."))
            };
            let end = key_rest.find(['.', '[']).unwrap_or(key_rest.len());
            assert!(end > 0, "{path}: an empty key");
            steps.push(Step::Key(&key_rest[..end]));
            rest = &key_rest[end..];
        }
    }
    assert!(!steps.is_empty(), "an empty path");
    steps
}

/// The shipped policy, read as a [`YamlDoc`] and written back, is the same policy.
#[test]
fn the_shipped_policy_survives_a_yaml_doc_round_trip() {
    use livesteer::policy::Policy;
    use livesteer::providers::registry::ProviderFiles;

    let shipped = YamlDoc::shipped_policy();
    let written = shipped.to_yaml();
    assert_eq!(YamlDoc::parse(&written), shipped);
    let ids = ProviderFiles::read_dir(&root().join("providers"))
        .unwrap()
        .ids();
    let path = root().join("policies/default.yaml");
    let policy = |p: Policy| {
        let mut v = serde_json::to_value(p).unwrap();
        v["version"] = Value::Null;
        v
    };
    let original = policy(Policy::load(&path, &ids).unwrap());
    let round_trip = policy(Policy::parse(&path, &written, &ids).unwrap());
    assert_eq!(round_trip, original);
    assert_eq!(original["regions"][6]["countries"][10], "NO");
    // Each edit lands where its path says.
    let edited = YamlDoc::parse(&written)
        .set("scoring.exploration_rate", 0.05)
        .set("regions[id=tw].cidrs[0]", "168.95.0.0/17")
        .insert("services.areas[id=mainland].upload_nodes", ["up-cn"])
        .push("scoring.drained", "tencent")
        .remove("regions[1]")
        .remove("geo.trusted_header");
    let edited = YamlDoc::parse(&edited.to_yaml()).0;
    assert_eq!(edited["scoring"]["exploration_rate"], 0.05);
    assert_eq!(edited["regions"][0]["cidrs"][0], "168.95.0.0/17");
    assert_eq!(edited["regions"][0]["cidrs"][1], "61.216.0.0/14");
    assert_eq!(edited["services"]["areas"][0]["upload_nodes"][0], "up-cn");
    assert_eq!(edited["scoring"]["drained"], serde_json::json!(["tencent"]));
    assert_eq!(edited["regions"][1]["id"], "gulf");
    assert_eq!(edited["geo"].get("trusted_header"), None);
    assert_eq!(edited["geo"]["trust_forwarded_for"], false);
}

#[test]
#[should_panic(expected = "scoring.exploration_rat: no Key(\"exploration_rat\") there")]
fn a_yaml_doc_edit_of_a_key_that_is_not_there_fails() {
    let _ = YamlDoc::shipped_policy().set("scoring.exploration_rat", 0);
}
