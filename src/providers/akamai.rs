//! Akamai with EdgeAuth (Token Auth 2.0): `__token__=exp=…~acl=…~hmac=…` on play URLs.
//!
//! The token is ACL-based, so one token covers the playlist and its segments: the ACL defaults
//! to `{dir}/{stream}*`. The key is hex, from the variable `signing.key_env` names; HMAC-SHA256
//! unless `signing.algorithm` says `sha1` or `md5`. Delivery only: it carries what is pushed to
//! its `origin`.

use std::sync::Arc;

use super::registry::BuildCtx;
use super::spec::SigningSpec;
use super::{
    Provider, ProviderError, ProviderInfo, ProviderKind, resolve_reference, signing, url_path,
    with_query,
};
use crate::vocab::Protocol;

#[derive(Debug)]
pub struct Akamai {
    info: ProviderInfo,
    auth: signing::EdgeAuthConfig,
    acl: String,
}

pub(crate) fn build(
    info: ProviderInfo,
    s: &SigningSpec,
    ctx: &mut BuildCtx<'_>,
) -> Option<Arc<dyn Provider>> {
    let kind = ProviderKind::Akamai;
    ctx.only(s, &["key_env", "token_name", "algorithm", "acl"], kind);
    let algorithm = match s.algorithm.as_ref().map(|a| a.value.as_str()) {
        None | Some("sha256") => signing::EdgeAuthAlgorithm::Sha256,
        Some("sha1") => signing::EdgeAuthAlgorithm::Sha1,
        Some("md5") => signing::EdgeAuthAlgorithm::Md5,
        Some(other) => {
            let line = s
                .algorithm
                .as_ref()
                .map_or(ctx.kind_line, |a| a.referenced.line());
            ctx.error(
                line,
                format!("signing.algorithm {other:?} must be sha256, sha1 or md5"),
            );
            return None;
        }
    };
    let acl = s
        .acl
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or_else(|| "{dir}/{stream}*".to_string());
    if !acl.contains("{stream}") {
        let line = s
            .acl
            .as_ref()
            .map_or(ctx.kind_line, |a| a.referenced.line());
        ctx.error(
            line,
            "signing.acl must contain {stream}, or one token would open every stream",
        );
        return None;
    }
    let token_name = s
        .token_name
        .as_ref()
        .map(|t| t.value.clone())
        .unwrap_or_else(|| "__token__".to_string());
    let env = ctx.required(&s.key_env, "key_env", kind)?;
    let key_hex = ctx.secret(env)?;
    let mut auth = signing::EdgeAuthConfig::new(key_hex);
    auth.algorithm = algorithm;
    auth.token_name = token_name;
    // Sign once now, so that a bad key fails at start rather than on the first play.
    if let Err(e) = signing::edgeauth_acl_token(&with_expiry(&auth, 1), &["/check"], 0) {
        ctx.error(env.referenced.line(), format!("provider {}: {e}", info.id));
        return None;
    }
    Some(Arc::new(Akamai { info, auth, acl }))
}

impl Provider for Akamai {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn play_url(
        &self,
        stream: &str,
        region: &str,
        protocol: Protocol,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let url = super::origin::play_path(&self.info, stream, region, protocol)?;
        let acl = self.acl_for(stream, url_path(&url));
        self.sign(&url, &acl, expires_at)
    }

    /// The play URL's token opens a variant its ACL covers (the default `{dir}/{stream}*` covers
    /// `<stream>_hi/index.m3u8`): that one is carried over. A variant outside it gets a token
    /// whose ACL is its own path.
    fn variant_url(
        &self,
        stream: &str,
        _region: &str,
        play_url: &str,
        reference: &str,
        expires_at: i64,
    ) -> Result<String, ProviderError> {
        let (url, query) =
            resolve_reference(play_url, reference).map_err(|e| self.info.signing_error(e))?;
        let path = url_path(&url);
        if acl_covers(&self.acl_for(stream, url_path(play_url)), path)
            && let Some(q) = query
        {
            return Ok(with_query(&url, q));
        }
        let own = path.to_string();
        self.sign(&url, &own, expires_at)
    }
}

impl Akamai {
    /// The ACL of `stream`'s play URL, whose path is `play_path`.
    fn acl_for(&self, stream: &str, play_path: &str) -> String {
        let dir = play_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        self.acl.replace("{dir}", dir).replace("{stream}", stream)
    }

    fn sign(&self, url: &str, acl: &str, expires_at: i64) -> Result<String, ProviderError> {
        let token =
            signing::edgeauth_acl_token(&with_expiry(&self.auth, expires_at), &[acl], expires_at)
                .map_err(|e| self.info.signing_error(e))?;
        Ok(with_query(url, &self.auth.query_pair(&token)))
    }
}

/// Whether an EdgeAuth ACL entry grants `path`: `*` matches any run of characters (`/`
/// included), `?` any one character, as the edge matches them.
fn acl_covers(acl: &str, path: &str) -> bool {
    let (a, p): (Vec<char>, Vec<char>) = (acl.chars().collect(), path.chars().collect());
    // Greedy glob matching with one backtrack point (the last `*`).
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < p.len() {
        if i < a.len() && (a[i] == '?' || a[i] == p[j]) {
            i += 1;
            j += 1;
        } else if i < a.len() && a[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    a[i..].iter().all(|c| *c == '*')
}

fn with_expiry(auth: &signing::EdgeAuthConfig, expires_at: i64) -> signing::EdgeAuthConfig {
    signing::EdgeAuthConfig {
        end_time: Some(expires_at),
        ..auth.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::provider;

    #[test]
    fn acls_match_as_globs() {
        assert!(acl_covers("/hls/s1*", "/hls/s1.m3u8"));
        assert!(acl_covers("/hls/s1*", "/hls/s1_hi/index.m3u8"));
        assert!(acl_covers("/hls/*/index.m3u8", "/hls/s1_hi/index.m3u8"));
        assert!(acl_covers("/hls/s?.m3u8", "/hls/s1.m3u8"));
        assert!(acl_covers("/hls/s1.m3u8", "/hls/s1.m3u8"));
        assert!(!acl_covers("/hls/s1.m3u8", "/hls/s1_hi/index.m3u8"));
        assert!(!acl_covers("/hls/s1*", "/hls/s2.m3u8"));
        assert!(!acl_covers("/hls/s1*", "/other/s1.m3u8"));
    }

    fn token(url: &str) -> &str {
        url.split_once("__token__=").unwrap().1
    }

    #[test]
    fn a_variant_the_acl_covers_carries_the_play_token() {
        let p = provider("akamai");
        let exp = 1_800_003_600;
        let play = p.play_url("s1", "eu", Protocol::Hls, exp).unwrap();
        assert!(token(&play).contains("acl=/hls/s1*"), "{play}");
        let v = p
            .variant_url("s1", "eu", &play, "s1_hi/index.m3u8", exp)
            .unwrap();
        assert_eq!(
            v,
            format!(
                "https://live.example.akamaized.net/hls/s1_hi/index.m3u8?__token__={}",
                token(&play)
            )
        );
    }

    #[test]
    fn a_variant_outside_the_acl_gets_a_token_for_its_own_path() {
        let akamai = provider("akamai").info().clone();
        let auth = signing::EdgeAuthConfig::new("7a5c2be9d1f4e8b0c3a6d9e2f5b8c1a4");
        // An exact ACL: the play URL's token opens the playlist alone.
        let p = Akamai {
            info: akamai,
            auth: auth.clone(),
            acl: "{dir}/{stream}.m3u8".into(),
        };
        let exp = 1_800_003_600;
        let play = p.play_url("s1", "eu", Protocol::Hls, exp).unwrap();
        let v = p
            .variant_url("s1", "eu", &play, "s1_hi/index.m3u8", exp)
            .unwrap();
        let expected =
            signing::edgeauth_acl_token(&with_expiry(&auth, exp), &["/hls/s1_hi/index.m3u8"], exp)
                .unwrap();
        assert_eq!(
            v,
            format!("https://live.example.akamaized.net/hls/s1_hi/index.m3u8?__token__={expected}")
        );
        assert_ne!(token(&v), token(&play));
    }
}
