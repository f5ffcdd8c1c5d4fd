//! `POST /v1/qos`: player reports, one at a time or in batches of up to 1000.
//!
//! The body is one report, an array of reports, or `{"reports": [...]}`. Each report is checked
//! on its own: a bad one is refused with its index and reason, and the good ones in the same
//! batch are kept. Accepted reports go to the scoring engine at once (the signal bus).
//!
//! Fields: `stream_id`, `provider`, `region` or `client_ip`, `protocol`, `startup_ms`,
//! `rebuffer_count`, `rebuffer_ms`, `played_ms`, `bitrate_kbps`, `error` (a code), and these
//! CMCD keys (CTA-5004) where a player already has them: `cid` (content id, for `stream_id`),
//! `sid` (session id), `br` (encoded bitrate, kbps), `bl` (buffer length, ms), `bs` (buffer
//! starvation: counts one rebuffer), `su` (startup), `mtp` (measured throughput, kbps), `sf`
//! (streaming format: `h` HLS).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::openapi::Error;
use super::place;
use super::streams::{known, parse_protocol};
use super::{ApiError, error};
use crate::codes::Code;
use crate::metrics as m;
use crate::signals::Signal;
use crate::state::AppState;
use crate::vocab::Protocol;

/// Most reports in one batch.
pub const MAX_BATCH: usize = 1000;
/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// One report as sent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = QosReport)]
pub struct Report {
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub startup_ms: Option<u64>,
    #[serde(default)]
    pub rebuffer_count: Option<u32>,
    #[serde(default)]
    pub rebuffer_ms: Option<u64>,
    #[serde(default)]
    pub played_ms: Option<u64>,
    #[serde(default)]
    pub bitrate_kbps: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cid: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub br: Option<f64>,
    #[serde(default)]
    pub bl: Option<f64>,
    #[serde(default)]
    pub bs: Option<bool>,
    #[serde(default)]
    pub su: Option<bool>,
    #[serde(default)]
    pub mtp: Option<f64>,
    #[serde(default)]
    pub sf: Option<String>,
}

/// The body of `POST /v1/qos`: one report, an array of reports, or `{"reports": [...]}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum QosBody {
    One(Box<Report>),
    Many(Vec<Report>),
    Wrapped(QosBatch),
}

/// `{"reports": [...]}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct QosBatch {
    pub reports: Vec<Report>,
}

/// A refused report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = QosRefused)]
pub struct Refused {
    pub index: usize,
    pub error: Code,
    pub message: String,
}

const DAY_MS: u64 = 86_400_000;

fn refuse(index: usize, error: Code, message: impl Into<String>) -> Refused {
    Refused {
        index,
        error,
        message: message.into(),
    }
}

/// Checks one report and turns it into a signal.
fn check(
    req: &HttpRequest,
    state: &AppState,
    index: usize,
    value: Value,
) -> Result<(Signal, f64), Refused> {
    let r: Report = serde_json::from_value(value)
        .map_err(|e| refuse(index, Code::InvalidReport, e.to_string()))?;
    let stream_id = r
        .stream_id
        .as_deref()
        .or(r.cid.as_deref())
        .ok_or_else(|| refuse(index, Code::MissingField, "stream_id (or cid) is required"))?;
    let stream = known(state, stream_id).map_err(|e| refuse(index, e.code, e.message))?;
    let provider = r
        .provider
        .as_deref()
        .ok_or_else(|| refuse(index, Code::MissingField, "provider is required"))?;
    let catalog = state.catalog.load();
    if catalog.registry.get(provider).is_none() {
        return Err(refuse(
            index,
            Code::UnknownProvider,
            format!(
                "provider {:?} is not an enabled provider",
                provider.chars().take(64).collect::<String>()
            ),
        ));
    }
    let format_hint = match r.sf.as_deref() {
        None => None,
        Some("h") => Some("hls"),
        Some(other) if other.len() == 1 => None,
        Some(other) => {
            return Err(refuse(
                index,
                Code::InvalidValue,
                format!("sf {other:?} is not a CMCD streaming format"),
            ));
        }
    };
    let protocol = parse_protocol(r.protocol.as_deref().or(format_hint), Protocol::Flv)
        .map_err(|e| refuse(index, e.code, e.message))?;
    let (region, _) = place(req, &catalog, r.region.as_deref(), r.client_ip.as_deref())
        .map_err(|e| refuse(index, e.code, e.message))?;
    for (name, v, max) in [
        ("played_ms", r.played_ms, DAY_MS),
        ("rebuffer_ms", r.rebuffer_ms, DAY_MS),
        ("startup_ms", r.startup_ms, 600_000),
    ] {
        if v.is_some_and(|v| v > max) {
            return Err(refuse(
                index,
                Code::InvalidValue,
                format!("{name} must be at most {max}"),
            ));
        }
    }
    for (name, v) in [
        ("bitrate_kbps", r.bitrate_kbps),
        ("br", r.br),
        ("bl", r.bl),
        ("mtp", r.mtp),
    ] {
        if v.is_some_and(|v| !(v.is_finite() && (0.0..=1e7).contains(&v))) {
            return Err(refuse(
                index,
                Code::InvalidValue,
                format!("{name} must be a number from 0 to 10000000"),
            ));
        }
    }
    if let Some(e) = &r.error
        && !(1..=64).contains(&e.len())
    {
        return Err(refuse(
            index,
            Code::InvalidValue,
            "error must be a code of 1 to 64 characters",
        ));
    }
    if r.sid.as_ref().is_some_and(|s| s.len() > 64) {
        return Err(refuse(
            index,
            Code::InvalidValue,
            "sid must be at most 64 characters",
        ));
    }
    let startup_ms = r.startup_ms;
    let played_ms = r.played_ms.unwrap_or(0);
    let rebuffer_ms = r.rebuffer_ms.unwrap_or(0);
    let rebuffer_count = r
        .rebuffer_count
        .unwrap_or(0)
        .max(u32::from(r.bs == Some(true)));
    let error = r.error.is_some();
    if played_ms == 0 && rebuffer_ms == 0 && startup_ms.is_none() && !error && rebuffer_count == 0 {
        return Err(refuse(
            index,
            Code::EmptyReport,
            "a report needs played_ms, rebuffer_ms, startup_ms, rebuffer_count or error",
        ));
    }
    let total = played_ms.saturating_add(rebuffer_ms);
    let ratio = if total == 0 {
        0.0
    } else {
        rebuffer_ms as f64 / total as f64
    };
    Ok((
        Signal::Delivery {
            provider: provider.to_string(),
            region: region.id.clone(),
            protocol,
            anchor_id: Some(stream.anchor_id.clone()),
            played_ms,
            rebuffer_ms,
            rebuffer_count,
            startup_ms,
            error,
            session: r.sid.as_deref().map(crate::signals::session_key),
        },
        ratio,
    ))
}

/// Takes a report or a batch.
#[utoipa::path(
    post,
    path = "/v1/qos",
    tag = "viewers",
    request_body = QosBody,
    responses(
        (status = 200, description = "At least one report taken; each refused one listed", body = super::openapi::QosAnswer),
        (status = 400, description = "Bad input; `no_valid_reports` carries `accepted` (0) and `refused` too (`QosAllRefused`)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
    )
)]
pub async fn ingest(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|e| error::body_error(&e, MAX_BODY_BYTES))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!(
                "body is {} bytes, more than the {MAX_BODY_BYTES} allowed",
                body.len()
            ),
        ));
    }
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(error::json_error(
            actix_web::error::JsonPayloadError::ContentType,
        ));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(Code::InvalidJson, format!("invalid JSON body: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut o) if o.contains_key("reports") => match o.remove("reports") {
            Some(Value::Array(items)) if o.is_empty() => items,
            _ => {
                return Err(ApiError::new(
                    Code::InvalidJson,
                    "`reports` must be the only key, holding an array",
                ));
            }
        },
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ApiError::new(
                Code::InvalidJson,
                "body must be a report, an array of reports or {\"reports\": [...]}",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::new(Code::EmptyBatch, "no reports in the body"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            Code::BatchTooLarge,
            format!(
                "{} reports in one batch, more than the {MAX_BATCH} allowed",
                items.len()
            ),
        ));
    }
    let mut accepted = 0usize;
    let mut refused = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match check(&req, &state, i, item) {
            Ok((signal, ratio)) => {
                if let Signal::Delivery {
                    provider, region, ..
                } = &signal
                {
                    metrics::histogram!(m::QOS_REBUFFER.name, "provider" => provider.clone(), "region" => region.clone())
                        .record(ratio);
                }
                if state.signals.emit(signal) {
                    accepted += 1;
                } else {
                    refused.push(refuse(
                        i,
                        Code::Overloaded,
                        "the scoring engine is behind; send this report again later",
                    ));
                }
            }
            Err(r) => refused.push(r),
        }
    }
    metrics::counter!(m::QOS_REPORTS.name, "outcome" => "accepted").increment(accepted as u64);
    metrics::counter!(m::QOS_REPORTS.name, "outcome" => "refused").increment(refused.len() as u64);
    let body = json!({ "accepted": accepted, "refused": refused });
    if accepted == 0 {
        let mut b = body;
        b["error"] = json!(Code::NoValidReports);
        b["message"] = json!("every report was refused; see `refused`");
        return Ok(HttpResponse::build(error::status_of(Code::NoValidReports)).json(b));
    }
    Ok(HttpResponse::Ok().json(body))
}
