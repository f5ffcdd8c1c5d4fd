//! Decisions: which providers an anchor pushes to, and the ranked, signed play candidates a
//! viewer gets.
//!
//! Reads memory only (the catalog, the stream) and signs through a cache, so a play decision
//! costs a few map lookups once its URLs are warm. Until the scoring engine lands, the order is
//! the policy's static preference for the region.
//!
//! **Architecture invariant:** no SQL and no network here.

use std::sync::Arc;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::metrics as m;
use crate::policy::Region;
use crate::providers::{Protocol, Provider};
use crate::streams::Stream;

/// One signed URL and the provider behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushTarget {
    pub provider: String,
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// `primary` or `backup`.
    pub role: &'static str,
}

/// Where an anchor pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPlan {
    pub targets: Vec<PushTarget>,
    pub reason: String,
}

/// One play candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub provider: String,
    pub protocol: Protocol,
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why no decision could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("no enabled provider takes ingest in region {0}")]
    NoIngest(String),
    #[error("protocol {0} is not offered (the policy offers {1})")]
    ProtocolNotOffered(Protocol, String),
}

/// Signed URLs are cached by (provider, stream, region, protocol or push, expiry). Expiries are
/// rounded up to a step so that requests within one step share one signature: a URL is valid for
/// at least the policy's TTL and at most one step longer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct UrlKey {
    provider: Arc<str>,
    stream: Arc<str>,
    region: Arc<str>,
    /// `None` for push.
    protocol: Option<Protocol>,
    expires_at: i64,
}

/// Signs through a bounded cache.
#[derive(Debug, Clone)]
pub struct Signer {
    cache: moka::sync::Cache<UrlKey, Arc<str>>,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new(200_000)
    }
}

/// Expiry rounded up to a step of a tenth of the TTL (at least a minute, at most ten).
pub fn rounded_expiry(now_secs: i64, ttl_secs: u64) -> i64 {
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 4);
    let step = (ttl / 10).clamp(60, 600);
    let raw = now_secs.saturating_add(ttl);
    raw.div_euclid(step).saturating_add(1).saturating_mul(step)
}

impl Signer {
    pub fn new(capacity: u64) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(std::time::Duration::from_secs(1800))
                .build(),
        }
    }

    fn sign(
        &self,
        provider: &Arc<dyn Provider>,
        stream: &str,
        region: &str,
        protocol: Option<Protocol>,
        expires_at: i64,
    ) -> Option<Arc<str>> {
        let key = UrlKey {
            provider: Arc::from(provider.id()),
            stream: Arc::from(stream),
            region: Arc::from(region),
            protocol,
            expires_at,
        };
        if let Some(hit) = self.cache.get(&key) {
            return Some(hit);
        }
        let signed = match protocol {
            Some(p) => provider.play_url(stream, region, p, expires_at),
            None => provider.push_url(stream, region, expires_at),
        };
        match signed {
            Ok(url) => {
                let url: Arc<str> = Arc::from(url);
                self.cache.insert(key, url.clone());
                Some(url)
            }
            Err(e) => {
                tracing::warn!(provider = provider.id(), error = %e, "signing failed");
                metrics::counter!(m::SIGNING_ERRORS.name, "provider" => provider.id().to_string())
                    .increment(1);
                None
            }
        }
    }
}

/// Providers in the region's preference order, then the rest by id, filtered by `keep`.
fn ordered<'c>(
    catalog: &'c Catalog,
    region: &Region,
    keep: impl Fn(&Arc<dyn Provider>) -> bool,
) -> Vec<&'c Arc<dyn Provider>> {
    let mut out: Vec<&Arc<dyn Provider>> = region
        .providers
        .iter()
        .filter_map(|id| catalog.registry.get(id))
        .filter(|p| keep(p))
        .collect();
    for p in catalog.registry.iter() {
        if !region.providers.iter().any(|id| id == p.id()) && keep(p) {
            out.push(p);
        }
    }
    out
}

/// Chooses the primary and backup push targets for a new stream in `region` and signs them.
pub fn push_plan(
    catalog: &Catalog,
    signer: &Signer,
    region: &Region,
    stream: &str,
    now_secs: i64,
) -> Result<PushPlan, DecisionError> {
    let policy = &catalog.policy;
    let in_region = ordered(catalog, region, |p| {
        p.info().covers(&region.id) && p.info().takes_ingest(&region.id)
    });
    let (chosen, why) = if in_region.is_empty() {
        // Nobody covers the region: any provider that takes ingest, in the default order.
        let any = ordered(catalog, policy.default_region(), |p| {
            p.info().takes_ingest(&region.id)
        });
        (
            any,
            format!(
                "no provider covers region {}; using the default region's order",
                region.id
            ),
        )
    } else {
        (
            in_region,
            format!("static preference for region {}", region.id),
        )
    };
    let expires_at = rounded_expiry(now_secs, policy.ingest.url_ttl_seconds);
    let want = 1 + policy.ingest.backups;
    let mut targets = Vec::with_capacity(want);
    for p in chosen {
        if targets.len() == want {
            break;
        }
        if let Some(url) = signer.sign(p, stream, &region.id, None, expires_at) {
            let role = if targets.is_empty() {
                "primary"
            } else {
                "backup"
            };
            metrics::counter!(m::DECISIONS.name, "kind" => "push", "provider" => p.id().to_string(),
                "region" => region.id.clone(), "protocol" => "rtmp")
            .increment(1);
            targets.push(PushTarget {
                provider: p.id().to_string(),
                url: url.to_string(),
                expires_at,
                role,
            });
        }
    }
    if targets.is_empty() {
        return Err(DecisionError::NoIngest(region.id.clone()));
    }
    let reason = if targets.len() > 1 {
        format!(
            "{why}: primary {}, {} backup(s)",
            targets[0].provider,
            targets.len() - 1
        )
    } else {
        format!("{why}: primary {}", targets[0].provider)
    };
    Ok(PushPlan { targets, reason })
}

/// Whether `p` carries `stream`: it was pushed there, or it pulls from a provider that was.
pub fn carries(p: &dyn Provider, stream: &Stream) -> bool {
    let id = p.id();
    stream.providers.iter().any(|s| s == id)
        || p.info()
            .origin
            .as_ref()
            .is_some_and(|o| stream.providers.iter().any(|s| s == o))
}

/// Ranked, signed play candidates for a viewer in `region`.
pub fn play_candidates(
    catalog: &Catalog,
    signer: &Signer,
    region: &Region,
    stream: &Stream,
    protocol: Protocol,
    now_secs: i64,
) -> Result<Vec<Candidate>, DecisionError> {
    let policy = &catalog.policy;
    if !policy.delivery.protocols.contains(&protocol) {
        let offered: Vec<&str> = policy
            .delivery
            .protocols
            .iter()
            .map(|p| p.as_str())
            .collect();
        return Err(DecisionError::ProtocolNotOffered(
            protocol,
            offered.join(", "),
        ));
    }
    let expires_at = rounded_expiry(now_secs, policy.delivery.url_ttl_seconds);
    let carriers = ordered(catalog, region, |p| {
        carries(p.as_ref(), stream) && p.info().play_base(&region.id, protocol).is_some()
    });
    let mut out = Vec::with_capacity(policy.delivery.max_candidates);
    for p in carriers {
        if out.len() == policy.delivery.max_candidates {
            break;
        }
        if let Some(url) = signer.sign(p, &stream.id, &region.id, Some(protocol), expires_at) {
            out.push(Candidate {
                provider: p.id().to_string(),
                protocol,
                url: url.to_string(),
                expires_at,
            });
        }
    }
    if let Some(first) = out.first() {
        metrics::counter!(m::DECISIONS.name, "kind" => "play", "provider" => first.provider.clone(),
            "region" => region.id.clone(), "protocol" => protocol.as_str())
        .increment(1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_within_a_step() {
        let e = rounded_expiry(1_000_000, 3600);
        assert!(
            (1_000_000 + 3600..1_000_000 + 3600 + 360).contains(&e),
            "{e}"
        );
        assert_eq!(rounded_expiry(1_000_001, 3600), e);
        assert_eq!(e % 360, 0);
        // Tiny and huge TTLs stay sane.
        assert!(rounded_expiry(0, 1) >= 1);
        assert!(rounded_expiry(i64::MAX - 5, u64::MAX) > 0);
    }
}
