//! Self-hosted origins: nginx with the RTMP module, and SRS.
//!
//! Push: `rtmp://host/<app>/<stream>?token=…` carrying a livesteer-issued expiring token that the
//! origin's publish callback (`on_publish`) sends back for livesteer to verify. Play: HTTP-FLV
//! (`<flv>/<stream>.flv`), HLS (`<hls>/<stream>.m3u8`) and RTMP, with a token of the same kind.
//!
//! The token secret comes from the variable `signing.token_secret_env` names; the shipped local
//! origins also carry a `demo_secret`, used only when that variable is unset.

use std::sync::Arc;

use super::registry::BuildCtx;
use super::spec::SigningSpec;
use super::{Provider, ProviderError, ProviderInfo, signing, url_path, with_query};
use crate::vocab::Protocol;

#[derive(Debug)]
pub struct Origin {
    info: ProviderInfo,
    secret: Vec<u8>,
}

pub(crate) fn build(
    info: ProviderInfo,
    s: &SigningSpec,
    ctx: &mut BuildCtx<'_>,
) -> Option<Arc<dyn Provider>> {
    let kind = info.kind;
    ctx.only(s, &["token_secret_env", "demo_secret"], kind);
    let env = ctx.required(&s.token_secret_env, "token_secret_env", kind)?;
    let secret = match (ctx.try_secret(env), &s.demo_secret) {
        (Some(v), _) => v,
        (None, Some(demo)) if !ctx.skipping_secrets() => {
            tracing::warn!(provider = %info.id, variable = %env.value,
                "using the DEMO-ONLY secret from the provider file: set the variable in production");
            demo.value.clone()
        }
        _ => ctx.secret(env)?,
    };
    if secret.len() < 16 {
        ctx.error(
            env.referenced.line(),
            format!(
                "provider {}: the token secret must be at least 16 bytes, got {}",
                info.id,
                secret.len()
            ),
        );
        return None;
    }
    Some(Arc::new(Origin {
        info,
        secret: secret.into_bytes(),
    }))
}

/// The RTMP application a push base names: its last path segment (`rtmp://h/live` → `live`).
pub fn app_of(base: &str) -> &str {
    url_path(base)
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// An unsigned play URL: base + stream + the protocol's extension.
pub(crate) fn play_path(
    info: &ProviderInfo,
    stream: &str,
    region: &str,
    protocol: Protocol,
) -> Result<String, ProviderError> {
    let base = info
        .play_base(region, protocol)
        .ok_or_else(|| ProviderError::NoEndpoint {
            provider: info.id.clone(),
            protocol: protocol.to_string(),
            region: region.to_string(),
        })?;
    Ok(match protocol {
        Protocol::Flv => format!("{base}/{stream}.flv"),
        Protocol::Hls => format!("{base}/{stream}.m3u8"),
        Protocol::Rtmp => format!("{base}/{stream}"),
        Protocol::Dash => format!("{base}/{stream}.mpd"),
    })
}

impl Origin {
    /// The RTMP application streams are published to in a region.
    pub fn app(&self, region: &str) -> &str {
        self.info
            .endpoints_for(region)
            .and_then(|e| e.push.as_deref())
            .map(app_of)
            .unwrap_or("live")
    }

    /// Checks a token an origin callback passed back, for what the callback asks to do.
    pub fn verify(
        &self,
        grant: signing::Grant,
        app: &str,
        stream: &str,
        token: &str,
        now_secs: i64,
    ) -> Result<(), signing::TokenError> {
        signing::verify_origin_token(&self.secret, grant, app, stream, token, now_secs)
    }

    fn token(
        &self,
        grant: signing::Grant,
        region: &str,
        stream: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        signing::issue_origin_token(&self.secret, grant, self.app(region), stream, expires_at)
            .map_err(|e| self.info.signing_error(e))
    }
}

impl Provider for Origin {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn as_origin(&self) -> Option<&Origin> {
        Some(self)
    }

    fn push_url(
        &self,
        stream: &str,
        region: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let base = self.info.push_base(region)?;
        let token = self.token(signing::Grant::Publish, region, stream, expires_at)?;
        Ok(with_query(
            &format!("{base}/{stream}"),
            &format!("token={token}"),
        ))
    }

    fn play_url(
        &self,
        stream: &str,
        region: &str,
        protocol: Protocol,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let url = play_path(&self.info, stream, region, protocol)?;
        let token = self.token(signing::Grant::Play, region, stream, expires_at)?;
        Ok(with_query(&url, &format!("token={token}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_carries_the_play_token() {
        let p = crate::providers::testing::provider("local-nginx");
        let exp = 1_800_003_600;
        let play = p.play_url("s1", "tw", Protocol::Hls, exp).unwrap();
        let v = p
            .variant_url("s1", "tw", &play, "s1_hi/index.m3u8", exp)
            .unwrap();
        let token = play.split_once("?token=").unwrap().1;
        assert_eq!(
            v,
            format!("http://127.0.0.1:8088/hls/s1_hi/index.m3u8?token={token}")
        );
        // The token is the stream's play grant, whatever the path: the origin's play callback
        // accepts it for the variant.
        let origin = p.as_origin().unwrap();
        assert_eq!(
            origin.verify(signing::Grant::Play, "live", "s1", token, exp - 60),
            Ok(())
        );
        let v = p
            .variant_url("s1", "tw", &play, "s1_hi/index.m3u8?x=1", exp)
            .unwrap();
        assert!(v.ends_with(&format!("index.m3u8?x=1&token={token}")), "{v}");
    }

    #[test]
    fn app_is_the_last_segment() {
        assert_eq!(app_of("rtmp://127.0.0.1:1935/live"), "live");
        assert_eq!(app_of("rtmp://h/a/b"), "b");
        assert_eq!(app_of("rtmp://h"), "");
    }
}
