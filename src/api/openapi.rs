//! `GET /openapi.json`: the HTTP API as an OpenAPI 3.1 document, built by `utoipa` from the
//! handlers' `#[utoipa::path]` annotations (one per route and method, next to the handler) and
//! the `ToSchema` derives of the request and answer types. Answers a handler builds with
//! `json!` are described by the small types here. The error body is [`super::error::Body`];
//! its `error` enumerates [`Code::ALL`], so the document lists every code of the table.
//!
//! `tests/it/api.rs` checks that the document lists every route `configure` registers and
//! that real answers match it; CI runs schemathesis against a live server with it
//! (`scripts/schemathesis.sh`).

use std::borrow::Cow;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ServerBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{
    admin, callbacks, cmcd, health, httpdns, master, mpd, nodes, payments, qos, resolve, rooms,
    steering, streams,
};
use crate::codes::Code;

/// The error body, as the annotations name it.
pub type Error = super::error::Body<'static>;

impl PartialSchema for Code {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An error code of the table (README, \"Error codes\"); each always comes with the \
                 same HTTP status.",
            ))
            .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl ToSchema for Code {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Healthy {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// `SQLite` or `PostgreSQL`.
    pub database: String,
    pub policy_version: String,
    /// Enabled providers.
    pub providers: u64,
    /// Stream changes not yet written.
    pub write_queue: u64,
}

/// `POST /v1/qos`: how many reports were taken, and each refused one.
#[derive(ToSchema)]
pub struct QosAnswer {
    pub accepted: u64,
    pub refused: Vec<qos::Refused>,
}

/// `POST /v1/qos` when every report was refused: an error body with the counts.
#[derive(ToSchema)]
pub struct QosAllRefused {
    /// `no_valid_reports`.
    pub error: Code,
    pub message: String,
    /// Always 0.
    pub accepted: u64,
    pub refused: Vec<qos::Refused>,
}

/// `POST /v1/rooms`: the rooms in the order asked.
#[derive(ToSchema)]
pub struct RoomList {
    pub rooms: Vec<crate::rooms::RoomView>,
}

/// `POST /v1/resolve`: one answer per request, in order.
#[derive(ToSchema)]
pub struct ResolveAnswers {
    pub answers: Vec<resolve::ResolveAnswer>,
}

/// `GET /admin/scores`.
#[derive(ToSchema)]
pub struct Scores {
    pub generated_ms: i64,
    pub policy_version: String,
    pub exploration_rate: f64,
    /// Providers drained by an admin or by the policy.
    pub drained: Vec<String>,
    /// Each region's ranking (see the README's "Scoring").
    #[schema(value_type = Vec<Object>)]
    pub regions: Vec<serde_json::Value>,
}

/// `POST`/`DELETE /admin/providers/{id}/drain`.
#[derive(ToSchema)]
pub struct Drain {
    pub provider: String,
    pub drained: bool,
}

/// `POST /admin/policies/reload`.
#[derive(ToSchema)]
pub struct Reloaded {
    /// Always true.
    pub reloaded: bool,
    pub policy_version: String,
}

/// `POST /admin/policies/reload` refused: every problem, and the version still in force.
#[derive(ToSchema)]
pub struct PolicyProblems {
    /// `invalid_policy`.
    pub error: Code,
    pub message: String,
    /// `file:line: message`.
    pub problems: Vec<String>,
    pub policy_version: String,
}

/// An SRS callback allowed: SRS reads `code` 0 as yes.
#[derive(serde::Serialize, ToSchema)]
pub struct SrsAllowed {
    /// Always 0.
    pub code: i64,
}

/// The document's security scheme: the admin bearer token.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("LIVESTEER_ADMIN_TOKEN"))
                    .build(),
            ),
        );
        doc.servers = Some(vec![ServerBuilder::new().url("/").build()]);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "livesteer",
        description = "Control plane for live streaming over several CDNs: signed push and play \
            URLs, scoring, steering, room state. Every error is JSON `{\"error\": code, \
            \"message\": …}` (`Error`)."
    ),
    paths(
        streams::create,
        streams::show,
        streams::delete,
        streams::push,
        streams::play,
        streams::switch,
        master::master,
        mpd::mpd,
        steering::hls,
        steering::dash,
        qos::ingest,
        cmcd::ingest,
        callbacks::receive,
        rooms::list,
        rooms::many,
        rooms::show,
        rooms::chat,
        resolve::get,
        resolve::post,
        nodes::list,
        nodes::heartbeat,
        payments::sync,
        payments::reconcile,
        admin::scores,
        admin::drain,
        admin::undrain,
        admin::reload,
        health::healthz,
        health::readyz,
        health::metrics,
        httpdns::dnspod,
        httpdns::alibaba,
        openapi_json,
    ),
    components(schemas(Code, super::error::Body, QosAllRefused)),
    modifiers(&AdminToken)
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_json_with_every_error_code() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let table: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes, table);
        let error = &doc["components"]["schemas"]["Error"];
        assert_eq!(error["required"], serde_json::json!(["error", "message"]));
        // Every operation answers JSON errors for something, except the always-200 ones.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let errors = op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|s| s.starts_with('4') || s.starts_with('5'))
                    .count();
                let always_ok = ["/healthz", "/metrics", "/openapi.json"].contains(&path.as_str());
                assert_eq!(errors == 0, always_ok, "{method} {path}");
            }
        }
    }
}
