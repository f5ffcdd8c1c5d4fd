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
    Protocol, Provider, ProviderError, ProviderInfo, ProviderKind, signing, url_path, with_query,
};

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
}
