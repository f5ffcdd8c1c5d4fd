//! Picking the backend from the database URL's scheme.
//!
//! Never by trying each backend: SQLite opens any string as a file name, so a
//! mistyped PostgreSQL URL would silently become a local file, and the
//! PostgreSQL driver's real error (e.g. "Connection refused") would be lost.

use std::path::{Path, PathBuf};

use super::{Backend, StoreError};

/// Where a `Db` connects, decided from the URL alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite database file.
    Sqlite {
        /// What is handed to `SqliteConnection::establish` (a path or a `file:` URI).
        open: String,
        /// The file on disk, whose parent directory is created if missing.
        path: PathBuf,
    },
    /// A PostgreSQL server.
    Postgres {
        /// What is handed to `PgConnection::establish`.
        url: String,
    },
}

/// Seconds libpq waits for a server before giving up, added when the URL does not say.
const PG_CONNECT_TIMEOUT_SECONDS: u32 = 10;

impl Target {
    /// Parses a database URL:
    /// `sqlite://path`, `sqlite:path`, `file:path[?query]`, or a bare path ending in
    /// `.db`, `.sqlite` or `.sqlite3` → SQLite; `postgres://…` or `postgresql://…` →
    /// PostgreSQL; anything else → [`StoreError::UnsupportedScheme`].
    pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();

        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let mut url = url.to_string();
            if !lower.contains("connect_timeout=") {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("connect_timeout={PG_CONNECT_TIMEOUT_SECONDS}"));
            }
            return Ok(Target::Postgres { url });
        }

        if lower.starts_with("sqlite:") {
            let rest = url["sqlite:".len()..]
                .strip_prefix("//")
                .unwrap_or(&url["sqlite:".len()..]);
            return sqlite_target(url, rest, None);
        }

        if lower.starts_with("file:") {
            let rest = &url["file:".len()..];
            // file:///abs/path or file://localhost/abs/path → /abs/path; file:rel → rel.
            let rest = match rest.strip_prefix("//") {
                Some(after) => match after.find('/') {
                    Some(slash) => &after[slash..],
                    None => after,
                },
                None => rest,
            };
            return sqlite_target(url, rest, Some(url.to_string()));
        }

        if url.contains("://") {
            return Err(StoreError::UnsupportedScheme {
                scheme: scheme_of(url).unwrap_or("(none)").to_string(),
            });
        }

        let is_sqlite_file = [".db", ".sqlite", ".sqlite3"]
            .iter()
            .any(|ext| lower.ends_with(ext));
        if is_sqlite_file {
            return sqlite_target(url, url, None);
        }

        Err(StoreError::UnsupportedScheme {
            scheme: scheme_of(url).unwrap_or("(none)").to_string(),
        })
    }

    /// The backend this target uses.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Target::Sqlite { .. } => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The target for messages and logs: a SQLite path, or a PostgreSQL URL with the password masked.
    pub(crate) fn redacted(&self) -> String {
        match self {
            Target::Sqlite { path, .. } => path.display().to_string(),
            Target::Postgres { url } => redact_url(url),
        }
    }
}

/// Builds the SQLite target from the part after the scheme.
///
/// `uri` is the whole URL when it already is a SQLite `file:` URI; otherwise a
/// query string (`?mode=rwc`, …) turns the path into one, and a plain path is
/// passed as is.
fn sqlite_target(url: &str, rest: &str, uri: Option<String>) -> Result<Target, StoreError> {
    let (path_part, query) = match rest.find(['?', '#']) {
        Some(at) => (&rest[..at], Some(&rest[at..])),
        None => (rest, None),
    };
    let path_text = percent_encoding::percent_decode_str(path_part)
        .decode_utf8_lossy()
        .into_owned();
    let invalid = |reason: &str| StoreError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if path_text.is_empty() {
        return Err(invalid("no SQLite file path"));
    }
    let in_memory = path_text == ":memory:"
        || query.is_some_and(|q| q.to_ascii_lowercase().contains("mode=memory"));
    if in_memory {
        return Err(invalid(
            "in-memory SQLite is not supported: each pooled connection would see its own empty database",
        ));
    }
    let open = match (uri, query) {
        (Some(uri), _) => uri,
        (None, Some(_)) => format!("file:{rest}"),
        (None, None) => path_text.clone(),
    };
    Ok(Target::Sqlite {
        open,
        path: PathBuf::from(path_text),
    })
}

/// The scheme of `url` (the letters before the first `:`), if it has one.
fn scheme_of(url: &str) -> Option<&str> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    let first_is_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_is_letter && rest_ok).then_some(scheme)
}

/// Masks the password of a URL (`postgres://user:***@host/db`).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Cannot fail for URLs that already carry a password.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => match scheme_of(url) {
            Some(scheme) => format!("{scheme}://(unparsable URL)"),
            None => "(unparsable URL)".to_string(),
        },
    }
}

/// Creates the parent directory of a SQLite file when it does not exist yet.
pub(crate) fn ensure_parent_dir(path: &Path) -> Result<(), StoreError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => {
            std::fs::create_dir_all(parent).map_err(|cause| StoreError::CreateDir {
                path: parent.to_path_buf(),
                cause,
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(open: &str, path: &str) -> Target {
        Target::Sqlite {
            open: open.to_string(),
            path: PathBuf::from(path),
        }
    }

    #[test]
    fn sqlite_forms() {
        let cases = [
            (
                "sqlite://data/livesteer.db",
                sqlite("data/livesteer.db", "data/livesteer.db"),
            ),
            (
                "sqlite:///var/lib/ls.db",
                sqlite("/var/lib/ls.db", "/var/lib/ls.db"),
            ),
            ("sqlite:data/x.db", sqlite("data/x.db", "data/x.db")),
            ("SQLite://x", sqlite("x", "x")),
            (
                "sqlite://x.db?mode=rwc",
                sqlite("file:x.db?mode=rwc", "x.db"),
            ),
            ("file:data/x.db", sqlite("file:data/x.db", "data/x.db")),
            (
                "file:///tmp/a%20b.db?cache=private",
                sqlite("file:///tmp/a%20b.db?cache=private", "/tmp/a b.db"),
            ),
            (
                "file://localhost/tmp/x.db",
                sqlite("file://localhost/tmp/x.db", "/tmp/x.db"),
            ),
            (
                "data/livesteer.db",
                sqlite("data/livesteer.db", "data/livesteer.db"),
            ),
            ("/abs/x.sqlite3", sqlite("/abs/x.sqlite3", "/abs/x.sqlite3")),
            ("  x.db ", sqlite("x.db", "x.db")),
        ];
        for (url, want) in cases {
            assert_eq!(Target::parse(url).unwrap(), want, "{url}");
        }
    }

    #[test]
    fn postgres_forms_get_a_connect_timeout() {
        assert_eq!(
            Target::parse("postgres://u@h/db").unwrap(),
            Target::Postgres {
                url: "postgres://u@h/db?connect_timeout=10".into()
            }
        );
        assert_eq!(
            Target::parse("postgresql://u@h/db?sslmode=disable").unwrap(),
            Target::Postgres {
                url: "postgresql://u@h/db?sslmode=disable&connect_timeout=10".into()
            }
        );
        assert_eq!(
            Target::parse("postgres://h/db?connect_timeout=3").unwrap(),
            Target::Postgres {
                url: "postgres://h/db?connect_timeout=3".into()
            }
        );
    }

    #[test]
    fn other_schemes_are_named_in_the_error() {
        for (url, scheme) in [
            ("mysql://root@localhost/x.db", "mysql"),
            ("redis://localhost", "redis"),
            ("data/livesteer", "(none)"),
            ("", "(none)"),
            ("c:notadb", "c"),
        ] {
            match Target::parse(url) {
                Err(StoreError::UnsupportedScheme { scheme: got }) => {
                    assert_eq!(got, scheme, "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let message = Target::parse("mysql://x").unwrap_err().to_string();
        assert!(message.contains("`mysql`"), "{message}");
    }

    #[test]
    fn in_memory_and_empty_sqlite_are_rejected() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "file:x?mode=memory",
            "sqlite://",
            "file:",
        ] {
            assert!(
                matches!(Target::parse(url), Err(StoreError::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn passwords_are_masked() {
        let target = Target::parse("postgres://app:s3cret@db.internal:5432/ls").unwrap();
        let shown = target.redacted();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.starts_with("postgres://app:***@db.internal:5432/ls"),
            "{shown}"
        );
        assert_eq!(target.backend(), Backend::Postgres);
    }
}
