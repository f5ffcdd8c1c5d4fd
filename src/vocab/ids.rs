//! The grammars of the ids livesteer takes from files, clients and callbacks.

/// A region id: lower-case letters, digits and `-`, 1 to 32 characters.
pub fn is_valid_region_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A country code: two ASCII letters.
pub fn is_valid_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A provider id: lower-case letters, digits and `-`, 1 to 32 characters.
pub fn is_valid_provider_id(id: &str) -> bool {
    is_valid_region_id(id)
}

/// A stream key as it may appear in a URL path: 1 to 128 of `[A-Za-z0-9_-]`.
pub fn is_valid_stream_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A service node, payment centre or area id: 1 to 64 of `[A-Za-z0-9_.:-]`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// An anchor id: 1 to 64 of `[A-Za-z0-9_.:-]`.
pub fn is_valid_anchor_id(id: &str) -> bool {
    is_valid_id(id)
}

/// A DNS host name: dot-separated labels of letters, digits and `-`, 253 characters at most.
pub fn is_valid_hostname(h: &str) -> bool {
    (1..=253).contains(&h.len())
        && h.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys() {
        assert!(is_valid_stream_key("ls_0af3-9"));
        for bad in ["", "a/b", "a b", "a?x", "é", &"x".repeat(129)] {
            assert!(!is_valid_stream_key(bad), "{bad:?}");
        }
    }
}
