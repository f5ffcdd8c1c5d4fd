//! Signed requests: how node heartbeats, payment-centre batches and CDNs' generic callbacks
//! prove who sent them.
//!
//! The sender shares a secret with livesteer (named by the policy, held in the environment) and
//! sends two headers:
//!
//! - `X-Livesteer-Timestamp`: the unix time in whole seconds, as decimal digits;
//! - `X-Livesteer-Signature`: lower- or upper-case hex of `HMAC-SHA256(secret, canonical)`,
//!   where `canonical` is the timestamp, one line feed (`\n`), then the request body byte for
//!   byte (for a `GET`, the raw query string as sent, without the `?`).
//!
//! livesteer recomputes the HMAC and compares in constant time, and refuses a timestamp more
//! than the policy's `services.replay_window_seconds` away from its own clock. A replay inside
//! the window is harmless by construction: heartbeats older than the last applied one change
//! nothing, and payment records are idempotent by (centre, payment id).
//!
//! Generic callbacks from CDNs ([`Scheme::Callback`]) sign `timestamp "." body` with the same
//! headers, within the policy's `rooms.callback_max_skew_seconds`; a replayed start or stop
//! event repeats what the room already knows.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::codes::Code;

/// Header carrying the unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "X-Livesteer-Timestamp";
/// Header carrying the hex HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Livesteer-Signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the X-Livesteer-Timestamp header is missing")]
    MissingTimestamp,
    #[error("X-Livesteer-Timestamp {0:?} is not a unix time in seconds")]
    BadTimestamp(String),
    #[error(
        "X-Livesteer-Timestamp {timestamp} is {skew} s away from livesteer's clock ({now}); \
         the replay window is {window} s"
    )]
    Stale {
        timestamp: i64,
        now: i64,
        skew: i64,
        window: u64,
    },
    #[error("the X-Livesteer-Signature header is missing")]
    MissingSignature,
    #[error("X-Livesteer-Signature does not match the request")]
    BadSignature,
    #[error("{0}")]
    UnknownSigner(String),
}

impl AuthError {
    /// The error code (all are 401).
    pub fn code(&self) -> Code {
        match self {
            AuthError::MissingTimestamp | AuthError::BadTimestamp(_) => Code::InvalidTimestamp,
            AuthError::Stale { .. } => Code::StaleTimestamp,
            AuthError::MissingSignature | AuthError::BadSignature => Code::InvalidSignature,
            AuthError::UnknownSigner(_) => Code::UnknownSigner,
        }
    }
}

/// The two HMAC-SHA256 schemes: what separates the timestamp from the payload it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Node heartbeats and payment-centre requests: `timestamp "\n" payload`.
    Request,
    /// CDNs' generic callbacks: `timestamp "." body`.
    Callback,
}

impl Scheme {
    fn separator(self) -> u8 {
        match self {
            Scheme::Request => b'\n',
            Scheme::Callback => b'.',
        }
    }

    /// The canonical bytes that are signed: `timestamp`, the separator, `payload`.
    pub fn canonical(self, timestamp: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(timestamp.len() + 1 + payload.len());
        out.extend_from_slice(timestamp.as_bytes());
        out.push(self.separator());
        out.extend_from_slice(payload);
        out
    }

    fn mac(self, secret: &[u8], timestamp: &str, payload: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut m = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
        m.update(&self.canonical(timestamp, payload));
        m
    }

    /// The hex signature a sender puts in `X-Livesteer-Signature`.
    pub fn sign(self, secret: &[u8], timestamp: &str, payload: &[u8]) -> String {
        hex::encode(self.mac(secret, timestamp, payload).finalize().into_bytes())
    }

    /// Checks the two headers against the payload (the signature in constant time, then the
    /// timestamp against `window_secs` either way of `now_secs`); returns the signed timestamp
    /// (unix seconds).
    pub fn verify(
        self,
        secret: &[u8],
        timestamp: Option<&str>,
        signature: Option<&str>,
        payload: &[u8],
        now_secs: i64,
        window_secs: u64,
    ) -> Result<i64, AuthError> {
        let ts_text = timestamp
            .map(str::trim)
            .ok_or(AuthError::MissingTimestamp)?;
        let ts = parse_timestamp(ts_text)?;
        let sig = signature
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::MissingSignature)?;
        let sig = hex::decode(sig).map_err(|_| AuthError::BadSignature)?;
        self.mac(secret, ts_text, payload)
            .verify_slice(&sig)
            .map_err(|_| AuthError::BadSignature)?;
        let skew = ts.saturating_sub(now_secs).saturating_abs();
        if skew > i64::try_from(window_secs).unwrap_or(i64::MAX) {
            return Err(AuthError::Stale {
                timestamp: ts,
                now: now_secs,
                skew,
                window: window_secs,
            });
        }
        Ok(ts)
    }
}

/// [`Scheme::sign`] for a heartbeat or payment-centre request.
pub fn sign(secret: &[u8], timestamp: &str, payload: &[u8]) -> String {
    Scheme::Request.sign(secret, timestamp, payload)
}

/// [`Scheme::verify`] for a heartbeat or payment-centre request.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    payload: &[u8],
    now_secs: i64,
    window_secs: u64,
) -> Result<i64, AuthError> {
    Scheme::Request.verify(secret, timestamp, signature, payload, now_secs, window_secs)
}

fn parse_timestamp(text: &str) -> Result<i64, AuthError> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::BadTimestamp(text.chars().take(32).collect()));
    }
    text.parse()
        .map_err(|_| AuthError::BadTimestamp(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    #[test]
    fn round_trip_and_canonical_form() {
        let body = br#"{"id":"chat-1"}"#;
        let sig = sign(b"k", "1795000000", body);
        // The canonical string is the timestamp, a line feed, then the body.
        let mut m = HmacSha256::new_from_slice(b"k").unwrap();
        m.update(b"1795000000\n{\"id\":\"chat-1\"}");
        assert_eq!(sig, hex::encode(m.finalize().into_bytes()));
        assert_eq!(
            verify(b"k", Some("1795000000"), Some(&sig), body, NOW, 300),
            Ok(NOW)
        );
        assert_eq!(
            verify(
                b"k",
                Some("1795000000"),
                Some(&sig.to_uppercase()),
                body,
                NOW,
                300
            ),
            Ok(NOW)
        );
    }

    /// RFC 4231 test case 2: HMAC-SHA256 with key "Jefe".
    #[test]
    fn hmac_matches_rfc_4231() {
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn every_tampering_is_refused() {
        let body = b"{}";
        let sig = sign(b"k", "1795000000", body);
        let v = |secret: &[u8], ts: Option<&str>, s: Option<&str>, b: &[u8]| {
            verify(secret, ts, s, b, NOW, 300)
        };
        assert_eq!(
            v(b"other", Some("1795000000"), Some(&sig), body),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v(b"k", Some("1795000000"), Some(&sig), b"{ }"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v(b"k", Some("1795000001"), Some(&sig), body),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v(b"k", Some("1795000000"), Some("zz"), body),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v(b"k", Some("1795000000"), None, body),
            Err(AuthError::MissingSignature)
        );
        assert_eq!(
            v(b"k", None, Some(&sig), body),
            Err(AuthError::MissingTimestamp)
        );
        assert!(matches!(
            v(b"k", Some("-5"), Some(&sig), body),
            Err(AuthError::BadTimestamp(_))
        ));
        assert!(matches!(
            v(b"k", Some("99999999999999999999"), Some(&sig), body),
            Err(AuthError::BadTimestamp(_))
        ));
    }

    #[test]
    fn stale_timestamps_are_refused_both_ways() {
        for ts in [NOW - 301, NOW + 301] {
            let t = ts.to_string();
            let sig = sign(b"k", &t, b"");
            assert!(matches!(
                verify(b"k", Some(&t), Some(&sig), b"", NOW, 300),
                Err(AuthError::Stale { skew: 301, .. })
            ));
        }
        let t = (NOW - 300).to_string();
        let sig = sign(b"k", &t, b"");
        assert!(verify(b"k", Some(&t), Some(&sig), b"", NOW, 300).is_ok());
    }

    #[test]
    fn the_callback_scheme_signs_timestamp_dot_body() {
        let body = br#"{"event":"publish","stream":"s1"}"#;
        let sig = Scheme::Callback.sign(b"k", "1795000000", body);
        let mut m = HmacSha256::new_from_slice(b"k").unwrap();
        m.update(b"1795000000.");
        m.update(body);
        assert_eq!(sig, hex::encode(m.finalize().into_bytes()));
        assert_eq!(
            Scheme::Callback.verify(b"k", Some("1795000000"), Some(&sig), body, NOW, 300),
            Ok(NOW)
        );
        // A signature of one scheme is no signature of the other.
        assert_eq!(
            verify(b"k", Some("1795000000"), Some(&sig), body, NOW, 300),
            Err(AuthError::BadSignature)
        );
    }
}
