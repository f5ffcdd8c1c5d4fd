//! CDN and origin adapters: each turns a stream key into the vendor's signed push and play URLs.
//!
//! One file per adapter kind; [`signing`] holds the vendors' URL-signing schemes as pure
//! functions; [`spec`] is the `providers/<id>.yaml` model; [`registry`] builds the adapters
//! from those files and the secrets they name.
//!
//! **Architecture invariant:** adapters know nothing of scoring or policy: they are told the
//! region, the protocol and the expiry, and they sign.

pub mod akamai;
pub mod alibaba;
pub mod cloudfront;
pub mod origin;
pub mod registry;
pub mod signing;
pub mod spec;
pub mod tencent;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::vocab::Protocol;

pub use registry::Registry;
pub use spec::{Endpoints, ProviderInfo};

/// The adapter a provider file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Tencent Cloud CSS: `txSecret`/`txTime`.
    TencentCss,
    /// Alibaba Cloud ApsaraVideo Live: `auth_key` type A.
    AlibabaLive,
    /// AWS CloudFront: signed URLs with a canned policy (delivery only).
    Cloudfront,
    /// Akamai: EdgeAuth tokens (delivery only).
    Akamai,
    /// Self-hosted nginx with the RTMP module.
    NginxRtmp,
    /// Self-hosted SRS.
    Srs,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::TencentCss => "tencent_css",
            ProviderKind::AlibabaLive => "alibaba_live",
            ProviderKind::Cloudfront => "cloudfront",
            ProviderKind::Akamai => "akamai",
            ProviderKind::NginxRtmp => "nginx_rtmp",
            ProviderKind::Srs => "srs",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an adapter could not produce a URL.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProviderError {
    #[error("provider {provider} does not offer {protocol} in region {region}")]
    NoEndpoint {
        provider: String,
        protocol: String,
        region: String,
    },
    #[error("provider {provider} takes no ingest")]
    NoIngest { provider: String },
    #[error("signing for provider {provider} failed: {message}")]
    Signing { provider: String, message: String },
}

/// One CDN or origin.
pub trait Provider: Send + Sync + fmt::Debug {
    /// What the provider file said, validated.
    fn info(&self) -> &ProviderInfo;

    /// The signed URL an encoder publishes to, valid until `expires_at` (unix seconds).
    /// Delivery-only CDNs keep the default: they take no ingest.
    fn push_url(
        &self,
        _stream: &str,
        _region: &str,
        _expires_at: i64,
    ) -> Result<String, ProviderError> {
        Err(ProviderError::NoIngest {
            provider: self.id().to_string(),
        })
    }

    /// The signed URL a player pulls from, valid until `expires_at` (unix seconds).
    fn play_url(
        &self,
        stream: &str,
        region: &str,
        protocol: Protocol,
        expires_at: i64,
    ) -> Result<String, ProviderError>;

    /// The signed URL of a playlist that this provider's HLS playlist for `stream` names by
    /// `reference`: a variant or a rendition of a multivariant playlist, relative to it (as
    /// nginx-rtmp's `hls_variant` writes `<stream>_hi/index.m3u8`). `play_url` is this
    /// provider's signed HLS play URL for `stream` in `region`; the answer is `reference`
    /// resolved against it and signed until `expires_at`.
    ///
    /// The default carries `play_url`'s query over, which is right for schemes whose token does
    /// not depend on the path (livesteer's origin token, Tencent's `txSecret`). Schemes that
    /// sign the exact path sign the variant's own.
    fn variant_url(
        &self,
        stream: &str,
        region: &str,
        play_url: &str,
        reference: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let _ = (stream, region, expires_at);
        let (url, query) =
            resolve_reference(play_url, reference).map_err(|e| self.info().signing_error(e))?;
        Ok(match query {
            Some(q) => with_query(&url, q),
            None => url,
        })
    }

    fn id(&self) -> &str {
        &self.info().id
    }

    /// The self-hosted origin behind this adapter, whose tokens an origin callback carries
    /// back for verification; `None` for the vendor CDNs.
    fn as_origin(&self) -> Option<&origin::Origin> {
        None
    }
}

/// `reference` resolved against `play_url` (RFC 3986), keeping the reference's own query and
/// dropping any fragment, and `play_url`'s query (its signature). A reference that would leave
/// `play_url`'s scheme, host or port is refused: a provider signs only its own URLs.
pub(crate) fn resolve_reference<'p>(
    play_url: &'p str,
    reference: &str,
) -> Result<(String, Option<&'p str>), String> {
    let base = url::Url::parse(play_url).map_err(|e| format!("play URL {play_url:?}: {e}"))?;
    let mut url = base
        .join(reference)
        .map_err(|e| format!("reference {reference:?}: {e}"))?;
    if url.scheme() != base.scheme() || url.host() != base.host() || url.port() != base.port() {
        return Err(format!(
            "reference {reference:?} leaves {}",
            base.origin().ascii_serialization()
        ));
    }
    url.set_fragment(None);
    let query = play_url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q))
        .filter(|q| !q.is_empty());
    Ok((url.to_string(), query))
}

/// Appends a query string to a URL that may already have one.
pub(crate) fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// The path part of an absolute URL (`rtmp://h/live/s` → `/live/s`), as signed by path-based
/// schemes.
pub(crate) fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    path.split('?').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_helpers() {
        assert_eq!(url_path("rtmp://push.example.com/live/s1"), "/live/s1");
        assert_eq!(url_path("https://h:8443/live/s1.flv?a=b"), "/live/s1.flv");
        assert_eq!(url_path("https://h"), "/");
        assert_eq!(with_query("http://h/a", "x=1"), "http://h/a?x=1");
        assert_eq!(with_query("http://h/a?y=2", "x=1"), "http://h/a?y=2&x=1");
    }

    #[test]
    fn references_resolve_against_the_play_url() {
        let play = "https://cdn.example/live/s1.m3u8?token=abc";
        let r = |reference| resolve_reference(play, reference);
        assert_eq!(
            r("s1_hi/index.m3u8"),
            Ok((
                "https://cdn.example/live/s1_hi/index.m3u8".to_string(),
                Some("token=abc")
            ))
        );
        assert_eq!(
            r("../alt/a.m3u8?lang=en#x").unwrap().0,
            "https://cdn.example/alt/a.m3u8?lang=en"
        );
        for away in [
            "https://evil.example/s1.m3u8",
            "//evil.example/s1.m3u8",
            "http://cdn.example/s1.m3u8",
            "https://cdn.example:8443/s1.m3u8",
        ] {
            assert!(r(away).unwrap_err().contains("leaves"), "{away}");
        }
        assert_eq!(
            resolve_reference("http://h/a/s.m3u8", "b.m3u8"),
            Ok(("http://h/a/b.m3u8".to_string(), None))
        );
    }
}
