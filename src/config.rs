//! Process configuration: an optional YAML file, then environment variables, then CLI flags,
//! each overriding the one before. The defaults run locally with nothing installed.
//!
//! Environment variables:
//! - `DATABASE_URL`: `sqlite://path` (default `sqlite://data/livesteer.db`) or `postgres://…`
//! - `LIVESTEER_LISTEN`: address to bind (default `127.0.0.1:8080`)
//! - `LIVESTEER_PROVIDERS`: provider files directory (default `providers`)
//! - `LIVESTEER_POLICY`: the active policy file (default `policies/default.yaml`)
//! - `LIVESTEER_ADMIN_TOKEN`: bearer token for `/admin/*` (admin routes are off without it)
//! - `LIVESTEER_DB_POOL`: database connections (default 8)
//! - `LIVESTEER_PUBLIC_URL`: the absolute URL players reach livesteer at (`https://steer.example.com`),
//!   the base of every URI livesteer writes into a manifest. Unset: the request's `Host`.
//! - `LIVESTEER_TRUST_FORWARDED`: `true` when a proxy in front sets `X-Forwarded-Proto` and
//!   `X-Forwarded-Host` (only then are they read for that base; default `false`)
//! - `LIVESTEER_CORS_ORIGINS`: the web origins allowed to call the viewer routes, comma separated
//!   (`https://app.example.com,https://m.example.com`), or `*` (the default: those routes carry
//!   no cookies or credentials)
//! - `RUST_LOG`: log filter (default `info`)
//!
//! Provider secrets come from the variables each provider file names.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::vocab::{Diagnostic, diag};

/// The process configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub providers_dir: PathBuf,
    pub policy_file: PathBuf,
    pub admin_token: Option<String>,
    pub db_pool_size: u32,
    /// How often the writers flush what is written behind (room states, heartbeats); stream
    /// creates and ends are committed before they are answered, not on this interval.
    pub flush_interval_ms: u64,
    /// The absolute base URL of every URI written into a manifest (no trailing `/`); `None`:
    /// the request's own scheme and `Host`.
    pub public_url: Option<String>,
    /// Whether `X-Forwarded-Proto` and `X-Forwarded-Host` are read for that base.
    pub trust_forwarded: bool,
    /// Web origins allowed on the viewer routes (CORS).
    pub cors: CorsOrigins,
}

/// Which web origins may call the viewer routes from a page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// Any origin (the viewer routes carry no cookies or credentials).
    #[default]
    Any,
    /// Only these, each `scheme://host[:port]`.
    List(Vec<String>),
}

impl CorsOrigins {
    /// Parses `*` or a comma-separated list of origins.
    pub fn parse(v: &str) -> Result<CorsOrigins, String> {
        let v = v.trim();
        if v == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut list = Vec::new();
        for o in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let parsed = url::Url::parse(o)
                .map_err(|_| format!("{o:?} is not an origin like https://app.example.com"))?;
            let origin = parsed.origin().ascii_serialization();
            if !matches!(parsed.scheme(), "http" | "https") || origin != o.trim_end_matches('/') {
                return Err(format!(
                    "{o:?} is not an origin like https://app.example.com (scheme, host and port only)"
                ));
            }
            list.push(origin);
        }
        if list.is_empty() {
            return Err("no origin given (use * for any)".into());
        }
        Ok(CorsOrigins::List(list))
    }

    /// Whether a request from `origin` (its `Origin` header) is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            CorsOrigins::Any => true,
            CorsOrigins::List(l) => l.iter().any(|o| o == origin),
        }
    }
}

/// Checks a public base URL: absolute http(s), no query or fragment; returned without a
/// trailing `/`.
pub fn parse_public_url(v: &str) -> Result<String, String> {
    let u = url::Url::parse(v.trim())
        .map_err(|_| format!("{v:?} is not an absolute URL like https://steer.example.com"))?;
    if !matches!(u.scheme(), "http" | "https")
        || u.host_str().is_none()
        || u.query().is_some()
        || u.fragment().is_some()
    {
        return Err(format!(
            "{v:?} is not an absolute http(s) URL without query, like https://steer.example.com"
        ));
    }
    Ok(u.as_str().trim_end_matches('/').to_string())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://data/livesteer.db".into(),
            providers_dir: "providers".into(),
            policy_file: "policies/default.yaml".into(),
            admin_token: None,
            db_pool_size: 8,
            flush_interval_ms: 200,
            public_url: None,
            trust_forwarded: false,
            cors: CorsOrigins::Any,
        }
    }
}

/// `--config FILE`: the same settings as the environment, as YAML.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to bind.
    pub listen: Option<String>,
    /// Database URL.
    pub database_url: Option<String>,
    /// Provider files directory (relative to the working directory).
    pub providers_dir: Option<PathBuf>,
    /// Active policy file.
    pub policy_file: Option<PathBuf>,
    /// Database connections.
    pub db_pool_size: Option<u32>,
    /// Write-behind flush interval.
    pub flush_interval_ms: Option<u64>,
    /// The absolute URL players reach livesteer at.
    pub public_url: Option<String>,
    /// Whether `X-Forwarded-Proto` and `X-Forwarded-Host` are trusted.
    pub trust_forwarded: Option<bool>,
    /// Web origins allowed on the viewer routes: `*` or a comma-separated list.
    pub cors_origins: Option<String>,
}

/// Overrides from the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub providers_dir: Option<PathBuf>,
    pub policy_file: Option<PathBuf>,
}

impl Config {
    /// Builds the configuration from file, environment and flags.
    pub fn load(over: &Overrides) -> anyhow::Result<Config> {
        Self::load_with(over, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// As [`Config::load`], with the environment given as a function (for tests).
    pub fn load_with(
        over: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let mut c = Config::default();
        if let Some(path) = &over.config_file {
            let f: ConfigFile = diag::read_yaml(path)?;
            if let Some(v) = f.listen {
                c.listen = parse_listen(&v).map_err(|m| Diagnostic::file(path, m))?;
            }
            if let Some(v) = f.database_url {
                c.database_url = v;
            }
            if let Some(v) = f.providers_dir {
                c.providers_dir = v;
            }
            if let Some(v) = f.policy_file {
                c.policy_file = v;
            }
            if let Some(v) = f.db_pool_size {
                c.db_pool_size = v;
            }
            if let Some(v) = f.flush_interval_ms {
                c.flush_interval_ms = v;
            }
            if let Some(v) = f.public_url {
                c.public_url = Some(parse_public_url(&v).map_err(|m| Diagnostic::file(path, m))?);
            }
            if let Some(v) = f.trust_forwarded {
                c.trust_forwarded = v;
            }
            if let Some(v) = f.cors_origins {
                c.cors = CorsOrigins::parse(&v).map_err(|m| Diagnostic::file(path, m))?;
            }
        }
        if let Some(v) = env("LIVESTEER_LISTEN") {
            c.listen = parse_listen(&v).map_err(|m| anyhow::anyhow!("LIVESTEER_LISTEN: {m}"))?;
        }
        if let Some(v) = env("DATABASE_URL") {
            c.database_url = v;
        }
        if let Some(v) = env("LIVESTEER_PROVIDERS") {
            c.providers_dir = v.into();
        }
        if let Some(v) = env("LIVESTEER_POLICY") {
            c.policy_file = v.into();
        }
        c.admin_token = env("LIVESTEER_ADMIN_TOKEN");
        if let Some(v) = env("LIVESTEER_PUBLIC_URL") {
            c.public_url = Some(
                parse_public_url(&v).map_err(|m| anyhow::anyhow!("LIVESTEER_PUBLIC_URL: {m}"))?,
            );
        }
        if let Some(v) = env("LIVESTEER_TRUST_FORWARDED") {
            c.trust_forwarded = parse_bool(&v).ok_or_else(|| {
                anyhow::anyhow!("LIVESTEER_TRUST_FORWARDED: {v:?} is not true or false")
            })?;
        }
        if let Some(v) = env("LIVESTEER_CORS_ORIGINS") {
            c.cors = CorsOrigins::parse(&v)
                .map_err(|m| anyhow::anyhow!("LIVESTEER_CORS_ORIGINS: {m}"))?;
        }
        if let Some(v) = env("LIVESTEER_DB_POOL") {
            c.db_pool_size = v
                .parse()
                .map_err(|_| anyhow::anyhow!("LIVESTEER_DB_POOL: {v:?} is not a whole number"))?;
        }
        if let Some(v) = &over.listen {
            c.listen = parse_listen(v).map_err(|m| anyhow::anyhow!("--listen: {m}"))?;
        }
        if let Some(v) = &over.database_url {
            c.database_url = v.clone();
        }
        if let Some(v) = &over.providers_dir {
            c.providers_dir = v.clone();
        }
        if let Some(v) = &over.policy_file {
            c.policy_file = v.clone();
        }
        if !(1..=256).contains(&c.db_pool_size) {
            anyhow::bail!(
                "database pool size {} must be from 1 to 256",
                c.db_pool_size
            );
        }
        if !(10..=60_000).contains(&c.flush_interval_ms) {
            anyhow::bail!(
                "flush_interval_ms {} must be from 10 to 60000",
                c.flush_interval_ms
            );
        }
        Ok(c)
    }

    /// The policy directory (where `check` looks for every policy).
    pub fn policies_dir(&self) -> &Path {
        self.policy_file.parent().unwrap_or(Path::new("."))
    }
}

fn parse_listen(v: &str) -> Result<SocketAddr, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{v:?} is not an address like 127.0.0.1:8080"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_then_env_then_flags() {
        let env: HashMap<&str, &str> = [
            ("LIVESTEER_LISTEN", "0.0.0.0:9000"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/x"),
            ("LIVESTEER_ADMIN_TOKEN", "t"),
        ]
        .into();
        let over = Overrides {
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        let c = Config::load_with(&over, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.database_url, "postgres://postgres@127.0.0.1/x");
        assert_eq!(c.admin_token.as_deref(), Some("t"));
        assert_eq!(c.policy_file, PathBuf::from("policies/default.yaml"));
    }

    #[test]
    fn public_url_and_cors_origins() {
        let env: HashMap<&str, &str> = [
            ("LIVESTEER_PUBLIC_URL", "https://steer.example.com/"),
            (
                "LIVESTEER_CORS_ORIGINS",
                "https://app.example.com, http://127.0.0.1:3000",
            ),
            ("LIVESTEER_TRUST_FORWARDED", "true"),
        ]
        .into();
        let c = Config::load_with(&Overrides::default(), |k| env.get(k).map(|v| v.to_string()))
            .unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://steer.example.com"));
        assert!(c.trust_forwarded);
        assert!(c.cors.allows("http://127.0.0.1:3000"));
        assert!(!c.cors.allows("https://evil.example.com"));
        assert!(Config::default().cors.allows("https://anything.example"));
        for bad in ["steer.example.com", "ftp://x", "https://x/?a=1"] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        for bad in ["", "app.example.com", "https://app.example.com/path"] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let env = |k: &str| (k == "LIVESTEER_LISTEN").then(|| "nowhere".to_string());
        let err = Config::load_with(&Overrides::default(), env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("LIVESTEER_LISTEN") && err.contains("nowhere"),
            "{err}"
        );
    }

    #[test]
    fn config_file_rejects_unknown_keys_with_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "listen: 127.0.0.1:1\ndatabse_url: x\n").unwrap();
        let over = Overrides {
            config_file: Some(path),
            ..Default::default()
        };
        let err = Config::load_with(&over, |_| None).unwrap_err().to_string();
        assert!(err.contains("c.yaml:2:"), "{err}");
    }
}
