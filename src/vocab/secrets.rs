//! Where secrets come from.

use std::collections::HashMap;

/// Where secrets come from: the environment in production, a map in tests.
pub trait Secrets: Send + Sync {
    fn get(&self, name: &str) -> Option<String>;
}

/// Secrets from environment variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

impl Secrets for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Secrets for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Whether a missing secret is an error (`serve`, `urls`) or skipped (`check` without
/// `--secrets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    Require,
    Skip,
}
