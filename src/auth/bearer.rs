//! The admin bearer token: `Authorization: Bearer <token>`, compared in constant time with the
//! configured one (`LIVESTEER_ADMIN_TOKEN`).

/// Whether the `Authorization` header value carries `token`.
pub fn matches(authorization: Option<&str>, token: &str) -> bool {
    authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| super::constant_eq(given.trim().as_bytes(), token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        assert!(matches(Some("Bearer s3cret"), "s3cret"));
        assert!(matches(Some("Bearer s3cret "), "s3cret"));
        assert!(!matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!matches(Some("s3cret"), "s3cret"));
        assert!(!matches(Some("Basic s3cret"), "s3cret"));
        assert!(!matches(None, "s3cret"));
        assert!(!matches(Some("Bearer "), "s3cret"));
    }
}
