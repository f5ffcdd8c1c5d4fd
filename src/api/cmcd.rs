//! `/v1/cmcd`: CMCD reports (CTA-5004, CTA-5004-B) straight from stock players.
//!
//! - **Event mode:** `POST` with `Content-Type: application/cmcd` (or `text/plain`, as a
//!   beacon may send it), one CMCD dictionary per line. A malformed line is refused and counted
//!   while the rest of the body is kept.
//! - **Request mode:** `GET` or `POST` with the `CMCD` query parameter, or the `CMCD-Request`,
//!   `CMCD-Object`, `CMCD-Status` and `CMCD-Session` headers: one report.
//! - `?region=` places the reporter as `/v1/qos`'s `region` does; otherwise the trusted country
//!   header or the client's address does.
//!
//! The answer is 204 once the body is taken (its `livesteer-cmcd` header counts the lines
//! accepted, unattributed and malformed): a reporter that is told 5xx or 429 resends, and
//! one told 410 stops reporting, so neither is ever answered for a body livesteer has read.
//! Past 1 MiB or 1000 lines, 413 with a JSON body. See [`crate::cmcd`] for what the reports
//! mean.

use actix_web::{HttpRequest, HttpResponse, web};

use super::openapi::Error;
use super::{ApiError, place};
use crate::cmcd::{Context, Outcome, parse};
use crate::codes::Code;
use crate::metrics as m;
use crate::state::AppState;

/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most lines in one body.
pub const MAX_LINES: usize = 1000;

fn count(outcome: Outcome, n: usize) {
    if n > 0 {
        metrics::counter!(m::CMCD_LINES.name, "outcome" => outcome.as_str()).increment(n as u64);
    }
}

/// Takes event-mode lines and request-mode CMCD.
#[utoipa::path(
    method(get, post),
    path = "/v1/cmcd",
    tag = "viewers",
    params(
        ("CMCD" = Option<String>, Query, description = "Request mode: one CMCD dictionary"),
        ("region" = Option<String>, Query, description = "Places the reporter, as `/v1/qos`'s `region`"),
        ("CMCD-Request" = Option<String>, Header, description = "Request mode, CMCD header form"),
        ("CMCD-Object" = Option<String>, Header, description = "Request mode, CMCD header form"),
        ("CMCD-Status" = Option<String>, Header, description = "Request mode, CMCD header form"),
        ("CMCD-Session" = Option<String>, Header, description = "Request mode, CMCD header form"),
    ),
    request_body(
        description = "Event mode: one CMCD dictionary per line",
        content(
            (String = "application/cmcd"),
            (String = "text/plain"),
        ),
    ),
    responses(
        (status = 204, description = "Taken; `livesteer-cmcd` counts the lines accepted, unattributed and malformed",
            headers(("livesteer-cmcd" = String, description = "accepted=N, unattributed=N, malformed=N"))),
        (status = 400, description = "`no_valid_lines`, `empty_report`, `unknown_region` or bad input", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
    )
)]
pub async fn ingest(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let region = region_param(req.query_string());
    let headers = parse::HEADERS
        .iter()
        .filter_map(|h| req.headers().get(*h))
        .filter_map(|v| v.to_str().ok());
    let mut reports = Vec::new();
    let mut malformed = 0usize;
    let mut first_problem: Option<String> = None;
    let mut refuse = |e: parse::LineError, line: usize| {
        if first_problem.is_none() {
            first_problem = Some(format!("line {line}: {e}"));
        }
    };
    match parse::parse_request(req.query_string(), headers) {
        Ok(Some(r)) => reports.push(r),
        Ok(None) => {}
        Err(e) => {
            malformed += 1;
            refuse(e, 0);
        }
    }
    let body = super::nodes::read_body(payload, MAX_BODY_BYTES).await?;
    if !body.is_empty() {
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !(mime.is_empty()
            || mime.eq_ignore_ascii_case("application/cmcd")
            || mime.eq_ignore_ascii_case("text/plain"))
        {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                format!(
                    "body must be CMCD lines (Content-Type: application/cmcd), not {:?}",
                    mime.chars().take(64).collect::<String>()
                ),
            ));
        }
        let lines = body.split(|&b| b == b'\n').filter(|l| !is_blank(l)).count();
        if lines > MAX_LINES {
            return Err(ApiError::new(
                Code::BatchTooLarge,
                format!("{lines} lines in one body, more than the {MAX_LINES} allowed"),
            ));
        }
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if is_blank(line) {
                continue;
            }
            let parsed = std::str::from_utf8(line)
                .map_err(|_| parse::LineError::Syntax("not UTF-8".into()))
                .and_then(parse::parse_line);
            match parsed {
                Ok(r) => reports.push(r),
                Err(e) => {
                    malformed += 1;
                    refuse(e, i + 1);
                }
            }
        }
    }
    count(Outcome::Malformed, malformed);
    if reports.is_empty() {
        return Err(match first_problem {
            Some(p) => ApiError::new(
                Code::NoValidLines,
                format!("{malformed} malformed line(s) and none taken; {p}"),
            ),
            None => ApiError::new(
                Code::EmptyReport,
                "no CMCD: send lines in the body, the CMCD query parameter or CMCD-* headers",
            ),
        });
    }
    let catalog = state.catalog.load_full();
    let (region, _) = place(&req, &catalog, region.as_deref(), None)?;
    let streams = |id: &str| {
        crate::vocab::ids::is_valid_stream_key(id)
            .then(|| state.streams.get(id))
            .flatten()
    };
    let cx = Context {
        catalog: &catalog,
        region: &region.id,
        now_ms: state.clock.now_ms(),
        stream: &streams,
    };
    let taken = state
        .cmcd
        .take(reports, &cx, |signal| state.signals.emit(signal));
    count(Outcome::Accepted, taken.accepted);
    count(Outcome::Unattributed, taken.unattributed);
    // What became of the lines, as an RFC 8941 dictionary, for whoever tunes a reporter
    // (`curl -i`, a test); players ignore it.
    Ok(HttpResponse::NoContent()
        .insert_header((
            "livesteer-cmcd",
            format!(
                "accepted={}, unattributed={}, malformed={malformed}",
                taken.accepted, taken.unattributed
            ),
        ))
        .finish())
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// `region` from the query string (which may hold `CMCD` too).
fn region_param(q: &str) -> Option<String> {
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "region")
        .map(|(_, v)| v.into_owned())
}
