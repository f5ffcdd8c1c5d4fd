//! AWS CloudFront in front of an origin: HLS playback as signed URLs with a canned policy.
//!
//! The policy `{"Statement":[{"Resource":"<url>","Condition":{"DateLessThan":{"AWS:EpochTime":<expires>}}}]}`
//! is signed with RSA-SHA1; the URL gets `Expires`, `Signature` (CloudFront's URL-safe base64)
//! and `Key-Pair-Id`. The private key is PEM, from a variable or a file. CloudFront takes no
//! ingest: it carries what is pushed to its `origin`.

use std::path::Path;
use std::sync::Arc;

use super::registry::BuildCtx;
use super::spec::SigningSpec;
use super::{Provider, ProviderError, ProviderInfo, ProviderKind, resolve_reference, signing};
use crate::vocab::Protocol;

#[derive(Debug)]
pub struct CloudFront {
    info: ProviderInfo,
    key_pair_id: String,
    key: rsa::RsaPrivateKey,
}

pub(crate) fn build(
    info: ProviderInfo,
    s: &SigningSpec,
    ctx: &mut BuildCtx<'_>,
) -> Option<Arc<dyn Provider>> {
    let kind = ProviderKind::Cloudfront;
    ctx.only(
        s,
        &["key_pair_id", "private_key_env", "private_key_file"],
        kind,
    );
    let key_pair_id = ctx.required(&s.key_pair_id, "key_pair_id", kind)?;
    let pem = match (&s.private_key_env, &s.private_key_file) {
        (Some(env), None) => ctx.secret(env)?,
        (None, Some(file)) => {
            if ctx.skipping_secrets() {
                return None;
            }
            let path = Path::new(&file.value);
            let path = if path.is_relative() {
                ctx.file.parent().unwrap_or(Path::new(".")).join(path)
            } else {
                path.to_path_buf()
            };
            match std::fs::read_to_string(&path) {
                Ok(p) => p,
                Err(e) => {
                    ctx.error(
                        file.referenced.line(),
                        format!("cannot read private key {}: {e}", path.display()),
                    );
                    return None;
                }
            }
        }
        _ => {
            ctx.error(ctx.kind_line, "kind cloudfront needs exactly one of signing.private_key_env and signing.private_key_file");
            return None;
        }
    };
    let key = match signing::parse_rsa_private_key_pem(&pem) {
        Ok(k) => k,
        Err(e) => {
            ctx.error(
                ctx.kind_line,
                format!("provider {}: bad CloudFront private key: {e}", info.id),
            );
            return None;
        }
    };
    Some(Arc::new(CloudFront {
        info,
        key_pair_id: key_pair_id.value.clone(),
        key,
    }))
}

impl Provider for CloudFront {
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
        signing::cloudfront_signed_url(&url, &self.key_pair_id, &self.key, expires_at)
            .map_err(|e| self.info.signing_error(e))
    }

    /// A canned policy names one exact URL: a variant gets a policy and signature of its own.
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
        signing::cloudfront_signed_url(&url, &self.key_pair_id, &self.key, expires_at)
            .map_err(|e| self.info.signing_error(e))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::{Pkcs1v15Sign, RsaPublicKey};
    use sha1::{Digest, Sha1};

    use crate::providers::testing::provider;
    use crate::vocab::Protocol;

    fn param<'u>(url: &'u str, name: &str) -> &'u str {
        url.split_once('?')
            .unwrap()
            .1
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap()
    }

    #[test]
    fn a_variant_gets_a_policy_for_its_own_url() {
        let p = provider("cloudfront");
        let exp = 1_800_003_600;
        let play = p.play_url("s1", "eu", Protocol::Hls, exp).unwrap();
        let v = p
            .variant_url("s1", "eu", &play, "s1_hi/index.m3u8", exp)
            .unwrap();
        let resource = "https://d111111abcdef8.cloudfront.net/live/s1_hi/index.m3u8";
        assert!(
            v.starts_with(&format!("{resource}?Expires={exp}&Signature=")),
            "{v}"
        );
        assert_eq!(param(&v, "Key-Pair-Id"), "K2JCJMDEHXQW5F");
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/signing/TEST_ONLY_cloudfront_rsa2048_public.pem"
        ))
        .unwrap();
        let public = RsaPublicKey::from_public_key_pem(&pem).unwrap();
        let sig: String = param(&v, "Signature")
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '=',
                '~' => '/',
                c => c,
            })
            .collect();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        let policy = format!(
            r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{exp}}}}}}}]}}"#
        );
        public
            .verify(
                Pkcs1v15Sign::new::<Sha1>(),
                &Sha1::digest(policy.as_bytes()),
                &sig,
            )
            .expect("the variant's signature verifies with the public key");
        assert_ne!(param(&v, "Signature"), param(&play, "Signature"));
    }
}
