//! Tencent Cloud CSS (Cloud Streaming Services).
//!
//! Push: `rtmp://<push domain>/<app>/<stream>?txSecret=…&txTime=…` signed with the push key;
//! play: `rtmp://…/<app>/<stream>`, `https://…/<app>/<stream>.flv`, `…/<stream>.m3u8`, each with
//! `txSecret`/`txTime` signed with the play key. `txSecret = md5(key + stream + txTime)`, `txTime`
//! the expiry in hex (see [`super::signing`]).

use std::sync::Arc;

use super::registry::BuildCtx;
use super::spec::SigningSpec;
use super::{Provider, ProviderError, ProviderInfo, ProviderKind, signing, with_query};
use crate::vocab::Protocol;

#[derive(Debug)]
pub struct Tencent {
    info: ProviderInfo,
    push_key: String,
    play_key: String,
}

pub(crate) fn build(
    info: ProviderInfo,
    s: &SigningSpec,
    ctx: &mut BuildCtx<'_>,
) -> Option<Arc<dyn Provider>> {
    let (push_key, play_key) = ctx.push_play_keys(s, ProviderKind::TencentCss)?;
    Some(Arc::new(Tencent {
        info,
        push_key,
        play_key,
    }))
}

impl Tencent {
    fn sign(
        &self,
        url: &str,
        key: &str,
        stream: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let q = signing::tencent_tx_query(key, stream, expires_at)
            .map_err(|e| self.info.signing_error(e))?;
        Ok(with_query(url, &q))
    }
}

impl Provider for Tencent {
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
        self.sign(
            &format!("{base}/{stream}"),
            &self.push_key,
            stream,
            expires_at,
        )
    }

    fn play_url(
        &self,
        stream: &str,
        region: &str,
        protocol: Protocol,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let url = super::origin::play_path(&self.info, stream, region, protocol)?;
        self.sign(&url, &self.play_key, stream, expires_at)
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::signing;
    use crate::providers::testing::provider;
    use crate::vocab::Protocol;

    #[test]
    fn a_variant_carries_the_play_signature() {
        let p = provider("tencent");
        let exp = 1_800_003_600;
        let play = p.play_url("s1", "tw", Protocol::Hls, exp).unwrap();
        let v = p
            .variant_url("s1", "tw", &play, "s1_hi/index.m3u8", exp)
            .unwrap();
        // txSecret = md5(key + stream + txTime): the stream's, whatever the path.
        let q = signing::tencent_tx_query("0d9a3d2f6e3b4c1aa5f1b2c3d4e5f607", "s1", exp).unwrap();
        assert_eq!(
            v,
            format!("https://play.live.example.com/live/s1_hi/index.m3u8?{q}")
        );
        assert!(play.ends_with(&q), "{play}");
    }
}
