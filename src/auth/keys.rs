//! The secrets livesteer checks requests with, resolved once when the catalog is loaded: the
//! service nodes' heartbeat secrets, the payment centres' and the CDNs' callback secrets.

use std::collections::BTreeMap;

use crate::policy::Policy;
use crate::policy::services::{SecretRef, ServiceKind};
use crate::vocab::Secrets;

/// Shortest callback secret accepted.
pub const MIN_CALLBACK_SECRET_BYTES: usize = 16;

/// A secret resolved from the environment (or the policy's demo value while it is unset).
#[derive(Clone)]
pub struct Secret {
    pub bytes: Vec<u8>,
    /// The variable it came from.
    pub env: String,
    /// True when the policy's demo value stands in for an unset variable.
    pub demo: bool,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("env", &self.env)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

/// Looks the secret a policy entry names up; `what` names the entry in the error.
pub fn resolve_secret(r: &SecretRef, secrets: &dyn Secrets, what: &str) -> Result<Secret, String> {
    if let Some(v) = secrets.get(&r.env) {
        return Ok(Secret {
            bytes: v.into_bytes(),
            env: r.env.clone(),
            demo: false,
        });
    }
    match &r.demo {
        Some(d) => {
            tracing::warn!(
                variable = %r.env,
                "{what}: using the policy's public demo secret because {} is unset; set it outside a laptop",
                r.env
            );
            Ok(Secret {
                bytes: d.clone().into_bytes(),
                env: r.env.clone(),
                demo: true,
            })
        }
        None => Err(format!("{what}: environment variable {} is not set", r.env)),
    }
}

/// Every secret the policy names, resolved.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Per service kind (`services.heartbeat_secrets`).
    pub heartbeats: BTreeMap<ServiceKind, Secret>,
    /// Per payment centre (`services.payment_centres`).
    pub centres: BTreeMap<String, Secret>,
    /// Per provider taking generic callbacks (`rooms.callback_secret_env`): the secret, or why
    /// there is none (unset, too short), answered to that provider's callbacks. A CDN's callback
    /// secret missing does not keep livesteer from starting.
    pub callbacks: BTreeMap<String, Result<Vec<u8>, String>>,
}

impl Keys {
    /// Resolves every secret `policy` names. A heartbeat or centre secret that cannot be
    /// resolved is an error, each described with the policy entry naming it.
    pub fn resolve(policy: &Policy, secrets: &dyn Secrets) -> Result<Keys, Vec<String>> {
        let mut keys = Keys::default();
        let mut missing = Vec::new();
        let services = &policy.services;
        for (kind, r) in &services.heartbeat_secrets {
            match resolve_secret(r, secrets, &format!("services.heartbeat_secrets.{kind}")) {
                Ok(s) => {
                    keys.heartbeats.insert(*kind, s);
                }
                Err(m) => missing.push(m),
            }
        }
        for (id, r) in &services.payment_centres {
            match resolve_secret(r, secrets, &format!("services.payment_centres.{id}")) {
                Ok(s) => {
                    keys.centres.insert(id.clone(), s);
                }
                Err(m) => missing.push(m),
            }
        }
        for (provider, env) in &policy.rooms.callback_secret_env {
            keys.callbacks
                .insert(provider.clone(), callback_secret(provider, env, secrets));
        }
        if missing.is_empty() {
            Ok(keys)
        } else {
            Err(missing)
        }
    }
}

/// A provider's generic-callback secret, from the variable `env`, or why there is none.
fn callback_secret(provider: &str, env: &str, secrets: &dyn Secrets) -> Result<Vec<u8>, String> {
    match secrets.get(env) {
        Some(v) if v.len() >= MIN_CALLBACK_SECRET_BYTES => Ok(v.into_bytes()),
        Some(v) => Err(format!(
            "the callback secret in {env} is {} bytes; at least {MIN_CALLBACK_SECRET_BYTES} are needed",
            v.len()
        )),
        None => Err(format!(
            "environment variable {env} (the callback secret of {provider}) is not set"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn callback_secrets_name_the_missing_variable() {
        let none: HashMap<String, String> = HashMap::new();
        let err = callback_secret("tencent", "TX_CB", &none).unwrap_err();
        assert!(err.contains("TX_CB"), "{err}");
        let short: HashMap<String, String> = [("TX_CB".to_string(), "x".to_string())].into();
        assert!(callback_secret("tencent", "TX_CB", &short).is_err());
        let ok: HashMap<String, String> =
            [("TX_CB".to_string(), "0123456789abcdef".to_string())].into();
        assert_eq!(
            callback_secret("tencent", "TX_CB", &ok).unwrap(),
            b"0123456789abcdef"
        );
    }

    #[test]
    fn secrets_prefer_the_environment_then_the_demo_value() {
        let r = SecretRef {
            env: "X_SECRET".into(),
            demo: Some("demo-only-secret-123".into()),
        };
        let env: std::collections::HashMap<String, String> =
            [("X_SECRET".to_string(), "real".to_string())].into();
        let s = resolve_secret(&r, &env, "t").unwrap();
        assert_eq!((s.bytes.as_slice(), s.demo), (b"real".as_slice(), false));
        let empty = std::collections::HashMap::<String, String>::new();
        assert!(resolve_secret(&r, &empty, "t").unwrap().demo);
        let bare = SecretRef {
            env: "X_SECRET".into(),
            demo: None,
        };
        assert_eq!(
            resolve_secret(&bare, &empty, "heartbeat_secrets.chat").unwrap_err(),
            "heartbeat_secrets.chat: environment variable X_SECRET is not set"
        );
    }
}
