//! The vocabulary every other module shares: `file:line` diagnostics, delivery protocols,
//! secrets, the grammars of ids, and which providers carry a stream.
//!
//! **Architecture invariant:** a leaf. It imports nothing of livesteer, so `policy`,
//! `providers`, `rooms`, `steering`, `probes`, `callbacks` and `sim` can all point down to it
//! and never at each other for these words.

pub mod diag;
pub mod ids;
mod protocol;
pub mod secrets;

pub use diag::{Diagnostic, Diagnostics};
pub use protocol::Protocol;
pub use secrets::{EnvSecrets, SecretMode, Secrets};

/// Whether the provider `id` (pulling from `origin`, for a CDN in front of an origin) carries a
/// stream pushed to `pushed_to`: it was pushed there, or it pulls from a provider that was.
/// Steering, probes, callbacks and the simulator all ask this one question.
pub fn carries(id: &str, origin: Option<&str>, pushed_to: &[String]) -> bool {
    pushed_to
        .iter()
        .any(|p| p == id || origin.is_some_and(|o| p == o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_carries_what_was_pushed_to_it_or_to_its_origin() {
        let pushed = vec!["srs".to_string(), "tencent".to_string()];
        assert!(carries("tencent", None, &pushed));
        assert!(carries("cloudfront", Some("srs"), &pushed));
        assert!(!carries("cloudfront", Some("nginx"), &pushed));
        assert!(!carries("alibaba", None, &pushed));
        assert!(!carries("alibaba", None, &[]));
    }
}
