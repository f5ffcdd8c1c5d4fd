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
    Protocol, Provider, ProviderError, ProviderInfo, ProviderKind, signing, url_path, with_query,
};

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
        let path = url_path(&url);
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let acl = self.acl.replace("{dir}", dir).replace("{stream}", stream);
        let token =
            signing::edgeauth_acl_token(&with_expiry(&self.auth, expires_at), &[&acl], expires_at)
                .map_err(|e| self.info.signing_error(e))?;
        Ok(with_query(&url, &self.auth.query_pair(&token)))
    }
}

fn with_expiry(auth: &signing::EdgeAuthConfig, expires_at: i64) -> signing::EdgeAuthConfig {
    signing::EdgeAuthConfig {
        end_time: Some(expires_at),
        ..auth.clone()
    }
}
