//! `/v1/payments`: signed batches from the payment centres, and reconciliation.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::nodes::{parse_json, read_body, signature_headers};
use super::openapi::Error;
use crate::auth::signed::{self, AuthError};
use crate::codes::Code;
use crate::metrics as m;
use crate::payments::{Batch, Ledger, fmt_ms};
use crate::state::AppState;
use crate::store::CurrencyTotal;

/// Largest batch body.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

fn refused(endpoint: &'static str, e: &AuthError) -> ApiError {
    metrics::counter!(m::SIGNED_REFUSED.name, "endpoint" => endpoint, "reason" => e.code().as_str())
        .increment(1);
    ApiError::new(e.code(), e.to_string())
}

/// `POST /v1/payments/sync`: stores a centre's batch durably, then answers what is stored.
/// Order: shape (400), signature and timestamp (401, nothing changed), values (400, nothing
/// changed), one transaction, the answer.
#[utoipa::path(
    post,
    path = "/v1/payments/sync",
    tag = "payments",
    params(("X-Livesteer-Timestamp" = String, Header, description = "Unix seconds of the signature"),
        ("X-Livesteer-Signature" = String, Header, description = "Hex HMAC-SHA256 of the timestamp, a line feed and the body, with the sender's secret")),
    request_body = crate::payments::Batch,
    responses(
        (status = 200, description = "What is stored", body = crate::payments::SyncAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 401, description = "`invalid_timestamp`, `stale_timestamp`, `invalid_signature` or `unknown_signer`", body = Error),
        (status = 413, description = "`payload_too_large` or `batch_too_large`", body = Error),
        (status = 415, description = "`unsupported_media_type`", body = Error),
        (status = 503, description = "`database_unavailable`: nothing stored", body = Error),
    )
)]
pub async fn sync(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, MAX_BATCH_BYTES).await?;
    let batch: Batch = parse_json(&req, &body)?;
    let catalog = state.catalog.load_full();
    let key = catalog.keys.centres.get(&batch.centre).ok_or_else(|| {
        refused(
            "payments_sync",
            &AuthError::UnknownSigner(format!(
                "centre {:?} is not in services.payment_centres",
                batch.centre.chars().take(64).collect::<String>()
            )),
        )
    })?;
    let (ts, sig) = signature_headers(&req);
    let now_ms = state.clock.now_ms();
    let window = catalog.policy.services.replay_window_seconds;
    signed::verify(&key.bytes, ts, sig, &body, now_ms.div_euclid(1000), window)
        .map_err(|e| refused("payments_sync", &e))?;
    let rows = Ledger::validate(&batch, now_ms).map_err(|e| ApiError::new(e.code, e.message))?;

    let st = state.clone().into_inner();
    let centre = batch.centre.clone();
    let answer = tokio::task::spawn_blocking(move || st.payments.store(&centre, &rows))
        .await
        .map_err(|e| ApiError::new(Code::Internal, format!("payment writer failed: {e}")))?
        .map_err(|e| {
            tracing::error!(error = %e, centre = %batch.centre, "payment batch not stored");
            ApiError::new(
                Code::DatabaseUnavailable,
                format!("the batch was not stored (send it again): {e}"),
            )
        })?;
    let centre = answer.centre.clone();
    for (outcome, n) in [
        ("accepted", answer.inserted.len()),
        ("duplicate", answer.duplicates.len()),
        ("conflict", answer.conflicts.len()),
    ] {
        if n > 0 {
            metrics::counter!(m::PAYMENT_RECORDS.name, "centre" => centre.clone(), "outcome" => outcome)
                .increment(n as u64);
        }
    }
    for c in &answer.conflicts {
        tracing::warn!(centre = %centre, payment = %c.id, message = %c.message, "payment record refused");
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET /v1/payments/reconcile?centre=&from=&to=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconcileQuery {
    #[serde(default)]
    pub centre: Option<String>,
    /// RFC 3339, inclusive; the beginning of time when absent.
    #[serde(default)]
    pub from: Option<String>,
    /// RFC 3339, exclusive; the end of time when absent.
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReconcileAnswer {
    centre: String,
    from: Option<String>,
    to: Option<String>,
    count: i64,
    /// Per currency: `currency`, `count`, `amount_minor`.
    #[schema(value_type = Vec<Object>)]
    currencies: Vec<CurrencyTotal>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|e| {
                ApiError::new(
                    Code::InvalidQuery,
                    format!(
                        "{name} {:?} is not an RFC 3339 time: {e}",
                        s.chars().take(64).collect::<String>()
                    ),
                )
            }),
    }
}

/// Counts and sums per currency of a centre's payments created in `[from, to)`. Allowed with
/// the admin bearer token (`LIVESTEER_ADMIN_TOKEN`) or when signed by that centre (the signed
/// payload is the raw query string).
#[utoipa::path(
    get,
    path = "/v1/payments/reconcile",
    tag = "payments",
    params(ReconcileQuery, ("X-Livesteer-Timestamp" = Option<String>, Header, description = "Unix seconds of the signature"),
        ("X-Livesteer-Signature" = Option<String>, Header, description = "Hex HMAC-SHA256 of the timestamp, a line feed and the raw query string, with the sender's secret (or an admin bearer token)")),
    responses(
        (status = 200, description = "Counts and sums per currency", body = ReconcileAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 401, description = "`invalid_timestamp`, `stale_timestamp`, `invalid_signature` or `unknown_signer`", body = Error),
        (status = 404, description = "`unknown_centre`", body = Error),
        (status = 503, description = "`database_unavailable`", body = Error),
    )
)]
pub async fn reconcile(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ReconcileQuery>,
) -> Result<HttpResponse, ApiError> {
    let centre = q
        .centre
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(Code::MissingArgument, "the centre parameter is required"))?
        .to_string();
    let catalog = state.catalog.load_full();
    let key = catalog.keys.centres.get(&centre).ok_or_else(|| {
        ApiError::new(
            Code::UnknownCentre,
            format!(
                "centre {:?} is not in services.payment_centres",
                centre.chars().take(64).collect::<String>()
            ),
        )
    })?;
    let admin = state.config.admin_token.as_deref().is_some_and(|t| {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        crate::auth::bearer::matches(given, t)
    });
    if !admin {
        let (ts, sig) = signature_headers(&req);
        let window = catalog.policy.services.replay_window_seconds;
        signed::verify(
            &key.bytes,
            ts,
            sig,
            req.query_string().as_bytes(),
            state.clock.now_secs(),
            window,
        )
        .map_err(|e| refused("payments_reconcile", &e))?;
    }
    let from = time_param("from", q.from.as_deref())?;
    let to = time_param("to", q.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::new(Code::InvalidQuery, "from must be before to"));
    }
    let st = state.clone().into_inner();
    let c = centre.clone();
    let totals = tokio::task::spawn_blocking(move || {
        st.payments
            .reconcile(&c, from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX))
    })
    .await
    .map_err(|e| ApiError::new(Code::Internal, format!("reconcile failed: {e}")))?
    .map_err(|e| ApiError::new(Code::DatabaseUnavailable, e.to_string()))?;
    Ok(HttpResponse::Ok().json(ReconcileAnswer {
        centre,
        from: from.map(fmt_ms),
        to: to.map(fmt_ms),
        count: totals.iter().map(|t| t.count).sum(),
        currencies: totals,
    }))
}
