//! The storage error type.

use std::path::PathBuf;

use super::Backend;

/// An error from the storage layer.
///
/// Every message names the operation that failed and the cause reported by the
/// database or the driver, on one line and without a trailing period. The cause
/// is part of the message (not a separate `source()`), so printing the error,
/// or an `anyhow` chain around it, shows it exactly once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme names no supported backend.
    #[error(
        "unsupported database URL scheme `{scheme}`: expected sqlite://, sqlite:, file:, \
         a path ending in .db, postgres:// or postgresql://"
    )]
    UnsupportedScheme {
        /// The scheme as written (`(none)` when the URL has none).
        scheme: String,
    },

    /// The URL has a supported scheme but cannot be used.
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The directory that should hold the SQLite file could not be created.
    #[error("create directory {} for the SQLite database: {cause}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },

    /// The first connection could not be established.
    #[error("connect to {backend} at {url}: {}", one_line(&cause.to_string()))]
    Connect {
        /// The backend chosen from the URL.
        backend: Backend,
        /// The URL, with any password masked.
        url: String,
        /// The driver's error (for PostgreSQL, libpq's message such as "Connection refused").
        cause: diesel::ConnectionError,
    },

    /// No pooled connection could be had for an operation.
    #[error("{op}: no database connection: {}", one_line(&cause.to_string()))]
    Pool {
        /// The operation, e.g. `save streams`.
        op: &'static str,
        /// The pool's error, carrying the last connection error when there was one.
        cause: diesel::r2d2::PoolError,
    },

    /// A query failed.
    #[error("{op}: {}", one_line(&cause.to_string()))]
    Query {
        /// The operation, e.g. `save streams`.
        op: &'static str,
        /// Diesel's error.
        cause: diesel::result::Error,
    },

    /// Running the migrations failed.
    #[error("run {backend} migrations: {}", one_line(&cause.to_string()))]
    Migration {
        /// The backend whose migration set was run.
        backend: Backend,
        /// The migration harness's error.
        cause: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The blocking task running a database call did not finish (it panicked, or the runtime is
    /// shutting down).
    #[error("database task failed: {0}")]
    Task(String),

    /// A value could not be encoded as JSON for a TEXT column.
    #[error("{op}: encode JSON: {cause}")]
    Json {
        /// The operation.
        op: &'static str,
        /// serde_json's error.
        cause: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn query(op: &'static str) -> impl FnOnce(diesel::result::Error) -> StoreError {
        move |cause| StoreError::Query { op, cause }
    }

    pub(crate) fn pool(op: &'static str) -> impl FnOnce(diesel::r2d2::PoolError) -> StoreError {
        move |cause| StoreError::Pool { op, cause }
    }

    /// True when the error is a uniqueness or primary-key violation reported by the database.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query {
                cause: diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ),
                ..
            }
        )
    }
}

/// Collapses a driver message (libpq's span several lines and end with a newline) to one line.
pub(crate) fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for part in message
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(part);
    }
    while out.ends_with('.') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_collapses_libpq_messages() {
        let libpq = "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\
                     \tIs the server running on that host and accepting TCP/IP connections?\n";
        assert_eq!(
            one_line(libpq),
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused; \
             Is the server running on that host and accepting TCP/IP connections?"
        );
        assert_eq!(one_line("database is locked."), "database is locked");
    }
}
