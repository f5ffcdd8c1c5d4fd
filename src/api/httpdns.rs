//! HTTPDNS-compatible answers, so an app already built on an HTTPDNS SDK can point it at
//! livesteer by changing the server address. Host names map to services in the policy
//! (`services.httpdns.hosts`); the addresses are the `ips` of the service's nearest healthy
//! nodes for the client, in the order `/v1/resolve` gives them.
//!
//! - Alibaba Cloud EMAS HTTPDNS, "Resolve a domain name"
//!   (<https://www.alibabacloud.com/help/en/httpdns/latest/resolve-a-domain-name>):
//!   `GET /{account_id}/d?host=H[&ip=CLIENT][&query=4|6|4,6]` → JSON
//!   `{"host", "ips", "ttl", "origin_ttl"}`, plus `"ipsv6"` when `query` asks for 6 and
//!   `"client_ip"` when the client address is known.
//! - Tencent Cloud DNSPod D+ HTTPDNS
//!   (<https://www.tencentcloud.com/document/product/1130/44468>): `GET /d?dn=H[&ip=CLIENT]
//!   [&ttl=1][&type=AAAA]` → plain text `ip1;ip2`, with `,ttl` appended when `ttl=1`; an empty
//!   body when there is no address (the SDKs then fall back to the local DNS).
//!
//! The vendors' encrypted variants (DES/AES `dn`, signed Alibaba requests) are not spoken.

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::openapi::Error;
use super::place;
use super::resolve::answer_service;
use super::{ApiError, client_ip};
use crate::codes::Code;
use crate::policy::services::ServiceKind;
use crate::state::AppState;
use crate::vocab::ids::is_valid_hostname;

/// `GET /{account}/d`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlibabaQuery {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
}

/// The Alibaba-shaped answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlibabaAnswer {
    pub host: String,
    pub ips: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipsv6: Option<Vec<String>>,
    pub ttl: u64,
    pub origin_ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// `GET /d`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DnspodQuery {
    #[serde(default)]
    pub dn: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

fn host_service(
    state: &AppState,
    host: Option<&str>,
    param: &str,
) -> Result<(String, ServiceKind), ApiError> {
    let host = host
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingArgument,
                format!("the {param} parameter is required"),
            )
        })?;
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if !is_valid_hostname(&h) {
        return Err(ApiError::new(
            Code::InvalidHost,
            format!(
                "{:?} is not a host name",
                host.chars().take(64).collect::<String>()
            ),
        ));
    }
    let catalog = state.catalog.load();
    let kind = catalog
        .policy
        .services
        .httpdns_hosts
        .get(&h)
        .copied()
        .ok_or_else(|| {
            ApiError::new(
                Code::UnknownHost,
                format!("host {h:?} is not in services.httpdns.hosts"),
            )
        })?;
    Ok((host.to_string(), kind))
}

/// The addresses of the nearest healthy nodes, v4 and v6 apart, without repeats.
fn addresses(
    req: &HttpRequest,
    state: &AppState,
    kind: ServiceKind,
    ip: Option<&str>,
) -> Result<(Vec<IpAddr>, Vec<IpAddr>), ApiError> {
    let catalog = state.catalog.load();
    let (region, _) = place(req, &catalog, None, ip)?;
    let a = answer_service(
        state,
        &catalog.policy,
        kind,
        &region.id,
        state.clock.now_ms(),
    );
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for ip in a.nodes.iter().flat_map(|n| n.ips.iter()) {
        let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
        if !list.contains(ip) {
            list.push(*ip);
        }
    }
    Ok((v4, v6))
}

fn strings(ips: &[IpAddr]) -> Vec<String> {
    ips.iter().map(IpAddr::to_string).collect()
}

/// `GET /{account}/d?host=`: the Alibaba EMAS shape.
#[utoipa::path(
    get,
    path = "/{account}/d",
    tag = "httpdns",
    params(("account" = String, Path, description = "An account of services.httpdns.accounts"), AlibabaQuery),
    responses(
        (status = 200, description = "The addresses", body = AlibabaAnswer),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`invalid_account` or `origin_not_allowed`", body = Error),
    )
)]
pub async fn alibaba(
    req: HttpRequest,
    state: web::Data<AppState>,
    account: web::Path<String>,
    q: web::Query<AlibabaQuery>,
) -> Result<HttpResponse, ApiError> {
    {
        let catalog = state.catalog.load();
        let accounts = &catalog.policy.services.httpdns_accounts;
        if !accounts.is_empty() && !accounts.contains(account.as_str()) {
            return Err(ApiError::new(
                Code::InvalidAccount,
                format!(
                    "account {:?} is not in services.httpdns.accounts",
                    account.chars().take(64).collect::<String>()
                ),
            ));
        }
    }
    let (host, kind) = host_service(&state, q.host.as_deref(), "host")?;
    let (want4, want6) = match q.query.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => (true, false),
        Some(s) => {
            let mut w = (false, false);
            for part in s.split(',') {
                match part.trim() {
                    "4" => w.0 = true,
                    "6" => w.1 = true,
                    other => {
                        return Err(ApiError::new(
                            Code::InvalidQuery,
                            format!(
                                "query {:?} must be 4, 6 or 4,6",
                                other.chars().take(16).collect::<String>()
                            ),
                        ));
                    }
                }
            }
            w
        }
    };
    let (v4, v6) = addresses(&req, &state, kind, q.ip.as_deref())?;
    let trust_xff = state.catalog.load().policy.geo.trust_forwarded_for;
    let client = client_ip(&req, q.ip.as_deref(), trust_xff)?;
    let ttl = state.catalog.load().policy.services.resolve_ttl_seconds;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AlibabaAnswer {
            host,
            ips: if want4 { strings(&v4) } else { Vec::new() },
            ipsv6: want6.then(|| strings(&v6)),
            ttl,
            origin_ttl: ttl,
            client_ip: client.map(|c| c.to_string()),
        }))
}

/// `GET /d?dn=`: the DNSPod D+ shape.
#[utoipa::path(
    get,
    path = "/d",
    tag = "httpdns",
    params(DnspodQuery),
    responses(
        (status = 200, description = "`ip1;ip2[,ttl]`, empty when there is no address", content_type = "text/plain", body = String),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
    )
)]
pub async fn dnspod(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<DnspodQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, kind) = host_service(&state, q.dn.as_deref(), "dn")?;
    let v6 = match q.kind.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("A") => false,
        Some(t) if t.eq_ignore_ascii_case("AAAA") => true,
        Some(t) => {
            return Err(ApiError::new(
                Code::InvalidQuery,
                format!(
                    "type {:?} must be A or AAAA",
                    t.chars().take(16).collect::<String>()
                ),
            ));
        }
    };
    let with_ttl = match q.ttl.as_deref().map(str::trim) {
        None | Some("") | Some("0") => false,
        Some("1") => true,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidQuery,
                format!(
                    "ttl {:?} must be 1 (or absent)",
                    other.chars().take(16).collect::<String>()
                ),
            ));
        }
    };
    let (a, aaaa) = addresses(&req, &state, kind, q.ip.as_deref())?;
    let ips = if v6 { aaaa } else { a };
    let mut text = strings(&ips).join(";");
    if with_ttl && !text.is_empty() {
        let ttl = state.catalog.load().policy.services.resolve_ttl_seconds;
        text.push_str(&format!(",{ttl}"));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/plain; charset=utf-8")
        .body(text))
}
