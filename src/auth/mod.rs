//! Who may ask: every way a request proves its sender, in one place.
//!
//! - [`signed`]: the two HMAC-SHA256 request schemes, `X-Livesteer-Timestamp` and
//!   `X-Livesteer-Signature` over `timestamp "\n" payload` (service nodes' heartbeats, payment
//!   centres) or `timestamp "." body` (CDNs' generic callbacks), with a replay window.
//! - [`bearer`]: the admin bearer token.
//! - [`verify_origin_token`]: the token livesteer put in a push or play URL of a self-hosted
//!   origin, sent back by the origin's callback.
//! - [`keys`]: the secrets these are checked with, resolved once when the catalog is loaded.
//!
//! **Architecture invariant:** secrets are compared in constant time, and no request reads the
//! environment: what the catalog resolved is what is checked against.

pub mod bearer;
pub mod keys;
pub mod signed;

pub use keys::{Keys, Secret};
pub use signed::AuthError;

use crate::codes::Code;
use crate::providers::Provider;
use crate::providers::signing::{Grant, TokenError};

/// Equality of two byte strings in time that depends only on their lengths.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why an origin's callback was refused: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: Code,
    pub message: String,
}

/// Checks the origin token a self-hosted origin's callback carries for `app/stream`: issued by
/// livesteer for `grant` (a play URL's token cannot publish), unexpired at `now_secs`.
pub fn verify_origin_token(
    provider: &dyn Provider,
    grant: Grant,
    app: &str,
    stream: &str,
    token: Option<&str>,
    now_secs: i64,
) -> Result<(), Refused> {
    let refused = |code, message: String| Refused { code, message };
    let origin = provider.as_origin().ok_or_else(|| {
        refused(
            Code::UnsignedCallback,
            format!(
                "provider {} takes signed generic callbacks only",
                provider.id()
            ),
        )
    })?;
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
        refused(
            Code::MissingToken,
            format!(
                "the {} callback for stream {stream} carries no token argument",
                grant.as_str()
            ),
        )
    })?;
    origin
        .verify(grant, app, stream, token, now_secs)
        .map_err(|e| {
            let code = match e {
                TokenError::Expired { .. } => Code::ExpiredToken,
                TokenError::Input(_) => Code::InvalidCallback,
                TokenError::Malformed(_) | TokenError::BadSignature => Code::InvalidToken,
            };
            refused(code, e.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_eq_is_equality() {
        assert!(constant_eq(b"abc", b"abc"));
        assert!(!constant_eq(b"abc", b"abd"));
        assert!(!constant_eq(b"abc", b"ab"));
        assert!(constant_eq(b"", b""));
    }
}
