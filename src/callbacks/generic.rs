//! livesteer's generic JSON callback, for CDNs that post stream start and stop events.
//!
//! ```text
//! POST /v1/callbacks/{provider}
//! Content-Type: application/json
//! X-Livesteer-Timestamp: 1795583880
//! X-Livesteer-Signature: <hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>
//!
//! {"event": "publish" | "unpublish" | "update", "stream": "<stream key>", "bitrate_kbps": 1800}
//! ```
//!
//! The secret is the value of the environment variable `rooms.callback_secret_env.<provider>`
//! names. The timestamp (unix seconds) must be within `rooms.callback_max_skew_seconds` of
//! livesteer's clock. `bitrate_kbps` is optional. Unknown fields are refused.

use serde::Deserialize;

use super::{Action, Callback, Refusal};
use crate::auth::signed::Scheme;
use crate::codes::Code;

/// The header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "x-livesteer-timestamp";
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-livesteer-signature";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    event: String,
    stream: String,
    #[serde(default)]
    bitrate_kbps: Option<f64>,
}

/// The signature of `body` at `timestamp` (what a CDN-side sender computes).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    Scheme::Callback.sign(secret, timestamp, body)
}

/// Verifies the signature, then parses the body.
pub fn parse(
    secret: Option<&[u8]>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
    max_skew_secs: i64,
) -> Result<Callback, Refusal> {
    let secret = secret.ok_or_else(|| {
        Refusal::new(
            Code::CallbacksNotConfigured,
            "no callback secret is configured for this provider (rooms.callback_secret_env)",
        )
    })?;
    let window = u64::try_from(max_skew_secs).unwrap_or(0);
    Scheme::Callback
        .verify(secret, timestamp, signature, body, now_secs, window)
        .map_err(|e| Refusal::new(e.code(), e.to_string()))?;

    let b: Body = serde_json::from_slice(body)
        .map_err(|e| Refusal::malformed(format!("invalid JSON body: {e}")))?;
    let action = match b.event.as_str() {
        "publish" => Action::Publish,
        "unpublish" => Action::Unpublish,
        "update" => {
            if let Some(k) = b.bitrate_kbps
                && !(k.is_finite() && k >= 0.0)
            {
                return Err(Refusal::malformed(format!(
                    "bitrate_kbps {k} is not a rate"
                )));
            }
            Action::Update {
                bitrate_kbps: b.bitrate_kbps,
            }
        }
        other => {
            return Err(Refusal::malformed(format!(
                "event {:?} is not publish, unpublish or update",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    Ok(Callback {
        action,
        app: String::new(),
        stream: b.stream,
        token: None,
        signed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123";

    fn call(ts: &str, sig: &str, body: &[u8], now: i64) -> Result<Callback, Refusal> {
        parse(Some(KEY), Some(ts), Some(sig), body, now, 300)
    }

    #[test]
    fn a_signed_event_parses() {
        let body = br#"{"event":"update","stream":"s1","bitrate_kbps":1200.5}"#;
        let sig = sign(KEY, "1000", body);
        let cb = call("1000", &sig, body, 1100).unwrap();
        assert_eq!(
            cb.action,
            Action::Update {
                bitrate_kbps: Some(1200.5)
            }
        );
        assert!(cb.signed);
    }

    #[test]
    fn wrong_signatures_and_times_are_refused() {
        let body = br#"{"event":"publish","stream":"s1"}"#;
        let sig = sign(KEY, "1000", body);
        assert_eq!(
            call("1001", &sig, body, 1000).unwrap_err().code,
            Code::InvalidSignature
        );
        let other = br#"{"event":"publish","stream":"s2"}"#;
        assert_eq!(
            call("1000", &sig, other, 1000).unwrap_err().code,
            Code::InvalidSignature
        );
        assert_eq!(
            call("1000", &sig, body, 1301).unwrap_err().code,
            Code::StaleTimestamp
        );
        assert_eq!(
            call("1000", "zz", body, 1000).unwrap_err().code,
            Code::InvalidSignature
        );
        assert_eq!(
            call("-5", &sig, body, 1000).unwrap_err().code,
            Code::InvalidTimestamp
        );
        assert_eq!(
            parse(None, Some("1000"), Some(&sig), body, 1000, 300)
                .unwrap_err()
                .code,
            Code::CallbacksNotConfigured
        );
    }

    #[test]
    fn a_signed_but_malformed_body_is_a_400() {
        for body in [
            &br#"{"event":"start","stream":"s1"}"#[..],
            br#"{"event":"publish"}"#,
            br#"{"event":"publish","stream":"s1","extra":1}"#,
            br#"{"event":"update","stream":"s1","bitrate_kbps":-1}"#,
            b"nope",
        ] {
            let sig = sign(KEY, "1000", body);
            let err = call("1000", &sig, body, 1000).unwrap_err();
            assert_eq!(err.code, Code::InvalidCallback, "{err:?}");
            assert_eq!(err.status(), 400);
        }
    }
}
