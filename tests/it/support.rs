//! `TestApp`: livesteer on a real socket (port 0), over a fresh database, with the shipped
//! files or a test set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use livesteer::clock::{Clock, SystemClock};
use livesteer::config::Config;
use livesteer::state::AppState;
use livesteer::store::testing::TestDb;
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
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).send().await.unwrap();
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

    /// The shipped policy with each `(from, to)` replaced once, written to a temp file.
    pub fn policy_edit(mut self, edits: &[(&str, &str)]) -> Self {
        let mut text = std::fs::read_to_string(&self.policy_file).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "policy has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let file = dir.path().join("default.yaml");
        std::fs::write(&file, text).unwrap();
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
        self.policy_edit(&[("exploration_rate: 0.03", "exploration_rate: 0")])
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
        }
    }
}
