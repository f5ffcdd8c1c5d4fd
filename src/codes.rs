//! The error-code table: every error code livesteer answers with, the HTTP status it always
//! has and what it means. The API (`api::ApiError`), the callbacks (`callbacks::Refusal`), the
//! per-report refusals of a QoS batch and actix's own extractor, routing and payload errors
//! all answer with a [`Code`]; the README's "Error codes" table is generated from [`Code::ALL`]
//! (a test keeps the two the same).
//!
//! A leaf: it imports nothing of livesteer, so every layer may use it.

/// One error condition. Its wire spelling is [`Code::as_str`]; its HTTP status, [`Code::status`].
macro_rules! codes {
    ($($variant:ident = $wire:literal, $status:literal, $meaning:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(
                #[doc = $meaning]
                $variant,
            )+
        }

        impl Code {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The code as it appears in the `error` field of an answer.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $wire,)+
                }
            }

            /// The HTTP status every answer with this code has.
            pub const fn status(self) -> u16 {
                match self {
                    $(Code::$variant => $status,)+
                }
            }

            /// What the code means, in one line.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)+
                }
            }
        }
    };
}

codes! {
    // The request's shape.
    InvalidRequest = "invalid_request", 400, "a request actix refused before a route saw it, for a reason no more specific code names";
    InvalidJson = "invalid_json", 400, "the body is not JSON, or not the shape the route takes (a missing or unknown field, a wrong type)";
    InvalidBody = "invalid_body", 400, "the body cannot be read (cut short, or a content encoding that does not decode)";
    InvalidQuery = "invalid_query", 400, "a query-string parameter is malformed or out of range";
    MissingArgument = "missing_argument", 400, "a required query-string parameter is missing";
    InvalidPath = "invalid_path", 400, "a path segment is malformed";
    EmptyBatch = "empty_batch", 400, "a batch holds no entries (QoS reports, resolve requests, payment records)";
    InvalidPreflight = "invalid_preflight", 400, "a CORS preflight without an Origin header";
    // The request's values.
    InvalidAnchorId = "invalid_anchor_id", 400, "an anchor id is not 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'";
    InvalidClientIp = "invalid_client_ip", 400, "client_ip is not an IP address";
    InvalidState = "invalid_state", 400, "a room state other than live, starting, stalled, offline or all";
    InvalidCursor = "invalid_cursor", 400, "a page cursor this API did not give";
    InvalidLimit = "invalid_limit", 400, "a page size outside the policy's bounds";
    InvalidThroughput = "invalid_throughput", 400, "a steering throughput that is not bits per second, or not one per pathway";
    InvalidReason = "invalid_reason", 400, "a switch reason that is not up to 64 characters of A-Z, a-z, 0-9, '_' or '-'";
    InvalidHost = "invalid_host", 400, "an HTTPDNS host that is not a host name";
    InvalidNode = "invalid_node", 400, "a heartbeat whose node id, region, endpoints or numbers are invalid";
    InvalidRecord = "invalid_record", 400, "a payment record with a missing, malformed or repeated field";
    InvalidReport = "invalid_report", 400, "a QoS report that is not the documented shape (in `refused` of a QoS batch)";
    MissingField = "missing_field", 400, "a QoS report without stream_id (or cid) or provider (in `refused` of a QoS batch)";
    InvalidValue = "invalid_value", 400, "a QoS report value out of range (in `refused` of a QoS batch)";
    EmptyReport = "empty_report", 400, "a QoS or CMCD report that carries nothing livesteer reads";
    NoValidReports = "no_valid_reports", 400, "every report of a QoS batch was refused (see `refused`)";
    NoValidLines = "no_valid_lines", 400, "every CMCD line was malformed";
    InvalidCallback = "invalid_callback", 400, "a callback body that is not the origin's documented format, or names no valid stream key";
    UnknownRegion = "unknown_region", 400, "a region the policy does not have";
    UnknownProtocol = "unknown_protocol", 400, "a protocol other than flv, hls, rtmp or dash, or one the route does not serve";
    UnknownService = "unknown_service", 400, "a service kind the directory does not have";
    UnknownHost = "unknown_host", 400, "an HTTPDNS host that is not in services.httpdns.hosts";
    NotACarrier = "not_a_carrier", 400, "a switch away from a provider that does not carry the stream";
    // Who is asking.
    Unauthorized = "unauthorized", 401, "an admin route without the right bearer token";
    InvalidTimestamp = "invalid_timestamp", 401, "a signed request whose X-Livesteer-Timestamp is missing or not unix seconds";
    StaleTimestamp = "stale_timestamp", 401, "a signed request whose timestamp is outside the replay window";
    InvalidSignature = "invalid_signature", 401, "a signed request whose X-Livesteer-Signature is missing or does not match";
    UnknownSigner = "unknown_signer", 401, "a signed request from a sender livesteer has no key for";
    AdminDisabled = "admin_disabled", 403, "admin routes are off (no LIVESTEER_ADMIN_TOKEN)";
    OriginNotAllowed = "origin_not_allowed", 403, "a CORS request from an origin LIVESTEER_CORS_ORIGINS does not list";
    InvalidAccount = "invalid_account", 403, "an HTTPDNS account that is not in services.httpdns.accounts";
    CallbacksNotConfigured = "callbacks_not_configured", 403, "a generic callback for a provider without a usable callback secret";
    UnsignedCallback = "unsigned_callback", 403, "an unsigned callback for a provider that takes signed generic callbacks only";
    MissingToken = "missing_token", 403, "a callback whose publish or play URL carries no token";
    InvalidToken = "invalid_token", 403, "a callback whose token is malformed or not signed by livesteer";
    ExpiredToken = "expired_token", 403, "a callback whose token has expired";
    WrongProvider = "wrong_provider", 403, "a callback from a provider the stream is not pushed to";
    // What is named.
    NotFound = "not_found", 404, "no route has this path";
    UnknownStream = "unknown_stream", 404, "livesteer issued no such stream";
    UnknownProvider = "unknown_provider", 404, "no enabled provider has this id";
    UnknownCentre = "unknown_centre", 404, "a payment centre that is not in services.payment_centres";
    MethodNotAllowed = "method_not_allowed", 405, "the route does not take this method (the Allow header lists those it takes)";
    StaticNode = "static_node", 409, "a heartbeat for a node the policy declares statically";
    NodeKindMismatch = "node_kind_mismatch", 409, "a heartbeat that changes a registered node's service kind";
    StreamEnded = "stream_ended", 410, "the stream has ended (play, steering, manifests, publish and update callbacks)";
    PayloadTooLarge = "payload_too_large", 413, "the body is larger than the route accepts";
    BatchTooLarge = "batch_too_large", 413, "a batch holds more entries than allowed (QoS reports, resolve requests, payment records, CMCD lines, room anchor ids)";
    UnsupportedMediaType = "unsupported_media_type", 415, "the body's Content-Type is not one the route takes";
    InvalidPolicy = "invalid_policy", 422, "a policy reload found problems (listed in `problems`); the policy in force stays";
    // livesteer or what it depends on.
    Internal = "internal", 500, "livesteer itself failed";
    OriginUnavailable = "origin_unavailable", 502, "a stream's origin playlist or MPD cannot be had (the message names the origin and its URL)";
    NoProvider = "no_provider", 503, "no enabled provider can carry or serve the stream here";
    DatabaseUnavailable = "database_unavailable", 503, "the database did not answer; nothing was changed";
    Overloaded = "overloaded", 503, "the scoring engine is behind; send the report again later (in `refused` of a QoS batch)";
}

impl Code {
    /// The code of an answer actix made itself (routing, payload, extractor), by its status:
    /// the table's generic code for it, or `invalid_request` or `internal` for the rest.
    pub fn for_status(status: u16) -> Code {
        match status {
            404 => Code::NotFound,
            405 => Code::MethodNotAllowed,
            413 => Code::PayloadTooLarge,
            415 => Code::UnsupportedMediaType,
            500.. => Code::Internal,
            _ => Code::InvalidRequest,
        }
    }

    /// The README's "Error codes" table.
    pub fn markdown() -> String {
        let mut out = String::from("| code | status | meaning |\n|---|---|---|\n");
        for c in Code::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                c.as_str(),
                c.status(),
                c.meaning()
            ));
        }
        out
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "<!-- error-codes:start -->\n";
    const END: &str = "<!-- error-codes:end -->";

    #[test]
    fn codes_are_distinct_snake_case_with_error_statuses() {
        let mut wires: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        wires.sort();
        wires.dedup();
        assert_eq!(wires.len(), Code::ALL.len(), "a code is spelled twice");
        for c in Code::ALL {
            let w = c.as_str();
            assert!(
                !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{w}"
            );
            assert!((400..600).contains(&c.status()), "{w}");
            let m = c.meaning();
            assert!(!m.is_empty() && !m.ends_with('.'), "{w}: {m}");
        }
    }

    #[test]
    fn actix_statuses_map_to_codes_with_that_status() {
        for s in [400, 404, 405, 413, 415, 500] {
            assert_eq!(Code::for_status(s).status(), s, "{s}");
        }
        assert_eq!(Code::for_status(411), Code::InvalidRequest);
        assert_eq!(Code::for_status(503), Code::Internal);
    }

    /// The README's "Error codes" table is the table here: every code, its status and meaning.
    #[test]
    fn readme_lists_every_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = readme
            .split_once(START)
            .expect("README has the error-codes marker");
        let (table, tail) = rest
            .split_once(END)
            .expect("README has the error-codes end marker");
        let want = Code::markdown();
        if table != want && std::env::var_os("LIVESTEER_WRITE_ERROR_CODES").is_some() {
            std::fs::write(&path, format!("{head}{START}{want}{END}{tail}")).unwrap();
            return;
        }
        // Code and status row by row, so a failure names the row.
        let rows: Vec<(String, u16)> = table
            .lines()
            .skip(2)
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells[1].trim_matches('`').to_string();
                (code, cells[2].parse().unwrap_or(0))
            })
            .collect();
        let codes: Vec<(String, u16)> = Code::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.status()))
            .collect();
        assert_eq!(rows, codes, "README error codes differ from Code::ALL");
        assert!(
            table == want,
            "README's error-code table is stale: run `LIVESTEER_WRITE_ERROR_CODES=1 cargo test --lib codes`"
        );
    }
}
