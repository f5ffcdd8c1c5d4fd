//! Alibaba Cloud ApsaraVideo Live, URL authentication type A.
//!
//! `auth_key=<timestamp>-<rand>-<uid>-<md5hash>`, `md5hash = md5("<uri>-<timestamp>-<rand>-<uid>-<key>")`
//! where `<uri>` is the path (`/app/stream` for RTMP, `/app/stream.flv`, `/app/stream.m3u8`).
//! Push uses the ingest domain's key, play the streaming domain's. `rand` and `uid` are `0`, as
//! in Alibaba's examples, so that a URL is a function of stream and expiry.

use std::sync::Arc;

use super::registry::BuildCtx;
use super::spec::SigningSpec;
use super::{
    Provider, ProviderError, ProviderInfo, ProviderKind, resolve_reference, signing, url_path,
    with_query,
};
use crate::vocab::Protocol;

#[derive(Debug)]
pub struct Alibaba {
    info: ProviderInfo,
    push_key: String,
    play_key: String,
}

pub(crate) fn build(
    info: ProviderInfo,
    s: &SigningSpec,
    ctx: &mut BuildCtx<'_>,
) -> Option<Arc<dyn Provider>> {
    let (push_key, play_key) = ctx.push_play_keys(s, ProviderKind::AlibabaLive)?;
    Some(Arc::new(Alibaba {
        info,
        push_key,
        play_key,
    }))
}

impl Alibaba {
    fn sign(&self, url: &str, key: &str, expires_at: i64) -> Result<String, ProviderError> {
        let auth = signing::alibaba_type_a_auth_key(url_path(url), key, expires_at, "0", "0")
            .map_err(|e| self.info.signing_error(e))?;
        Ok(with_query(url, &format!("auth_key={auth}")))
    }
}

impl Provider for Alibaba {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn push_url(
        &self,
        stream: &str,
        region: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let base = self.info.push_base(region)?;
        self.sign(&format!("{base}/{stream}"), &self.push_key, expires_at)
    }

    fn play_url(
        &self,
        stream: &str,
        region: &str,
        protocol: Protocol,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let url = super::origin::play_path(&self.info, stream, region, protocol)?;
        self.sign(&url, &self.play_key, expires_at)
    }

    /// Type A signs the path: a variant gets an `auth_key` of its own path (the play URL's
    /// would not open it).
    fn variant_url(
        &self,
        _stream: &str,
        _region: &str,
        play_url: &str,
        reference: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let (url, _) =
            resolve_reference(play_url, reference).map_err(|e| self.info.signing_error(e))?;
        self.sign(&url, &self.play_key, expires_at)
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::signing;
    use crate::providers::testing::{SECRETS, provider};
    use crate::vocab::Protocol;

    #[test]
    fn a_variant_is_signed_on_its_own_path() {
        let p = provider("alibaba");
        let exp = 1_800_003_600;
        let play = p.play_url("s1", "tw", Protocol::Hls, exp).unwrap();
        let v = p
            .variant_url("s1", "tw", &play, "s1_hi/index.m3u8", exp)
            .unwrap();
        let key = SECRETS
            .iter()
            .find(|(k, _)| *k == "ALIBABA_LIVE_PLAY_KEY")
            .unwrap()
            .1;
        let auth =
            signing::alibaba_type_a_auth_key("/live/s1_hi/index.m3u8", key, exp, "0", "0").unwrap();
        assert_eq!(
            v,
            format!("https://pull.live-intl.example.com/live/s1_hi/index.m3u8?auth_key={auth}")
        );
        assert!(!play.contains(&auth), "{play}");
        // The reference's own query stays, before the signature.
        let v = p
            .variant_url("s1", "tw", &play, "audio/en.m3u8?lang=en", exp)
            .unwrap();
        assert!(
            v.starts_with(
                "https://pull.live-intl.example.com/live/audio/en.m3u8?lang=en&auth_key="
            ),
            "{v}"
        );
        assert!(
            p.variant_url("s1", "tw", &play, "https://elsewhere.example/x.m3u8", exp)
                .is_err()
        );
    }
}
