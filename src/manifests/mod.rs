//! Manifests livesteer writes from the origin's own: `master.m3u8` replicates the origin's
//! multivariant playlist (its ladder) once per pathway ([`hls`]); `manifest.mpd` is the
//! origin's MPD with one service location per provider and Content Steering ([`dash`]).
//!
//! The origin's manifest comes from [`OriginCache`]: per stream, fetched at most once per
//! refresh interval however many viewers ask, refreshed in the background while the last one is
//! answered, failures remembered for a few seconds, every fetch bounded by a timeout and a size.
//! The cache is generic over the parsed manifest ([`Manifest`]).
//!
//! **Architecture invariant:** the only network call on a request path is a cache miss: one
//! bounded fetch per stream that concurrent requests share.

pub mod cache;
pub mod dash;
pub mod hls;

use std::sync::Arc;
use std::time::Duration;

pub use cache::{Limits, MAX_MANIFEST_BYTES, OriginCache};

use crate::catalog::Catalog;
use crate::providers::{Provider, ProviderKind};
use crate::steering::{Signer, carries, rounded_expiry};
use crate::streams::Stream;
use crate::vocab::Protocol;

/// A manifest format an origin serves.
pub trait Manifest: Send + Sync + Sized + 'static {
    /// What an answer must be, for errors: "an M3U8 playlist".
    const FORMAT: &'static str;

    /// Reads an origin's answer; `url` is where it came from (its references are relative to
    /// it). The error says what is wrong.
    fn parse(body: &[u8], url: &url::Url) -> Result<Self, String>;

    /// How long this manifest is held before a refresh, when the manifest says so itself (an
    /// MPD's `minimumUpdatePeriod`); `None` leaves it to the policy's refresh interval.
    fn hold(&self) -> Option<Duration> {
        None
    }

    /// How old this manifest may grow while its refreshes fail before it is no answer at all
    /// (a live MPD whose segments have moved on); `None`: the last good one is answered
    /// however old.
    fn stale_after(&self) -> Option<Duration> {
        None
    }
}

/// Where one stream's manifest is fetched: a provider and its signed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginTarget {
    pub provider: String,
    pub url: String,
}

impl OriginTarget {
    /// The URL without its query (the signature): for keys, errors and logs.
    pub fn unsigned_url(&self) -> &str {
        self.url.split(['?', '#']).next().unwrap_or(&self.url)
    }

    /// The cache key: one per stream and origin, whatever the signature's expiry.
    fn key(&self) -> String {
        format!("{} {}", self.provider, self.unsigned_url())
    }
}

/// Why an origin's manifest could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("origin {provider} ({url}) {kind}")]
pub struct OriginError {
    pub provider: String,
    /// The URL fetched, without its query.
    pub url: String,
    pub kind: OriginErrorKind,
}

impl OriginError {
    fn new(target: &OriginTarget, kind: OriginErrorKind) -> OriginError {
        OriginError {
            provider: target.provider.clone(),
            url: target.unsigned_url().to_string(),
            kind,
        }
    }
}

/// What went wrong with a fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginErrorKind {
    #[error("is unreachable: {0}")]
    Unreachable(String),
    #[error("did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answered more than {0} bytes")]
    TooLarge(usize),
    #[error("did not answer {0}: {1}")]
    NotManifest(&'static str, String),
}

impl OriginErrorKind {
    /// The `outcome` label of `livesteer_origin_fetches_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            OriginErrorKind::Unreachable(_) => "unreachable",
            OriginErrorKind::Timeout(_) => "timeout",
            OriginErrorKind::Status(_) => "status",
            OriginErrorKind::TooLarge(_) => "too_large",
            OriginErrorKind::NotManifest(..) => "invalid",
        }
    }
}

/// The provider whose `protocol` manifest of `stream` is the stream's own: the self-hosted
/// origin (`nginx_rtmp`, `srs`) it was pushed to; else the `origin` of a CDN carrying it; else
/// the first provider it was pushed to, then the first carrying it, that offers `protocol` in
/// the stream's region.
pub fn origin_of<'c>(
    catalog: &'c Catalog,
    stream: &Stream,
    protocol: Protocol,
) -> Option<&'c Arc<dyn Provider>> {
    let offers = |p: &&Arc<dyn Provider>| p.info().play_base(&stream.region, protocol).is_some();
    let pushed = || {
        stream
            .providers
            .iter()
            .filter_map(|id| catalog.registry.get(id))
    };
    let carrying = || {
        catalog
            .registry
            .iter()
            .filter(|p| carries(p.as_ref(), stream))
    };
    pushed()
        .filter(|p| matches!(p.info().kind, ProviderKind::NginxRtmp | ProviderKind::Srs))
        .find(offers)
        .or_else(|| {
            carrying()
                .filter_map(|p| p.info().origin.as_deref())
                .filter(|o| stream.providers.iter().any(|s| s == o))
                .filter_map(|o| catalog.registry.get(o))
                .find(offers)
        })
        .or_else(|| pushed().find(offers))
        .or_else(|| carrying().find(offers))
}

/// Where to fetch `stream`'s `protocol` manifest: [`origin_of`]'s signed play URL in the
/// stream's region, valid for the policy's play TTL from `now_secs`.
pub fn origin_target(
    catalog: &Catalog,
    signer: &Signer,
    stream: &Stream,
    protocol: Protocol,
    now_secs: i64,
) -> Option<OriginTarget> {
    let p = origin_of(catalog, stream, protocol)?;
    let expires_at = rounded_expiry(now_secs, catalog.policy.delivery.url_ttl_seconds);
    let url = signer.play_url(p, &stream.id, &stream.region, protocol, expires_at)?;
    Some(OriginTarget {
        provider: p.id().to_string(),
        url: url.to_string(),
    })
}

/// The origin manifest caches, one per format, sharing one HTTP client.
pub struct Manifests {
    pub hls: OriginCache<hls::HlsPlaylist>,
    pub dash: OriginCache<dash::DashMpd>,
}

impl Default for Manifests {
    fn default() -> Self {
        Self::new()
    }
}

impl Manifests {
    pub fn new() -> Manifests {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("livesteer/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Manifests {
            hls: OriginCache::new(client.clone()),
            dash: OriginCache::new(client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::StreamState;

    fn stream(region: &str, providers: &[&str]) -> Stream {
        Stream {
            id: "s1".into(),
            anchor_id: "a1".into(),
            region: region.into(),
            providers: providers.iter().map(|p| p.to_string()).collect(),
            state: StreamState::Live,
            reason: String::new(),
            started_ms: 0,
            ended_ms: None,
            updated_ms: 0,
        }
    }

    #[test]
    fn the_origin_is_the_self_hosted_one_else_the_first_pushed() {
        let catalog = crate::scoring::tests::catalog();
        let origin = |region, providers: &[&str]| {
            origin_of(&catalog, &stream(region, providers), Protocol::Hls)
                .map(|p| p.id().to_string())
        };
        assert_eq!(
            origin("eu", &["tencent", "local-nginx"]).as_deref(),
            Some("local-nginx")
        );
        assert_eq!(
            origin("tw", &["tencent", "alibaba"]).as_deref(),
            Some("tencent")
        );
        assert_eq!(
            origin("tw", &["alibaba", "tencent"]).as_deref(),
            Some("alibaba")
        );
        assert_eq!(origin("tw", &[]), None);
        let target = origin_target(
            &catalog,
            &Signer::default(),
            &stream("eu", &["local-srs"]),
            Protocol::Hls,
            1_800_000_000,
        )
        .unwrap();
        assert_eq!(target.provider, "local-srs");
        assert!(
            target
                .url
                .starts_with("http://127.0.0.1:18080/live/s1.m3u8?token="),
            "{target:?}"
        );
        assert_eq!(target.unsigned_url(), "http://127.0.0.1:18080/live/s1.m3u8");
    }
}
