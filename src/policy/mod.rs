//! The policy ops edit in `policies/*.yaml`: regions, provider preferences, ingest and delivery
//! knobs.
//!
//! Loading is `parse → validate`: [`raw`] mirrors the YAML (unknown keys rejected, values carry
//! their line), [`Policy::from_raw`] checks it and builds the runtime form, which has no spans and
//! indexes what the hot path looks up. Cross-file checks (a provider id named here must exist)
//! take the set of known provider ids as an argument: this module reads its own files only.

pub mod raw;
pub mod rooms;
pub mod scoring;
pub mod services;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::vocab::diag::{self, Diagnostic, Diagnostics};
use crate::vocab::ids::{is_valid_country, is_valid_region_id};

use crate::vocab::Protocol;

/// A region: where anchors and viewers are, as ops name it (`tw`, `hk`, `gulf`, …).
#[derive(Debug, Clone, Serialize)]
pub struct Region {
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes, upper case.
    pub countries: Vec<String>,
    pub cidrs: Vec<IpNet>,
    /// Provider ids in order of preference for this region.
    pub providers: Vec<String>,
}

/// How region lookup treats the request (see `geo`).
#[derive(Debug, Clone, Serialize)]
pub struct GeoSettings {
    /// A header set by a trusted edge carrying the viewer's country (`CloudFront-Viewer-Country`).
    pub trusted_header: Option<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Optional MaxMind country database.
    pub mmdb_path: Option<PathBuf>,
}

/// How push targets are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStrategy {
    /// The region's preference order.
    Static,
}

/// Ingest (push) knobs.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSettings {
    pub strategy: IngestStrategy,
    /// Backup push targets besides the primary (0 = primary only).
    pub backups: usize,
    /// How long a signed push URL stays valid.
    pub url_ttl_seconds: u64,
    /// How long after a push answer the app asks again whether its stream should move
    /// (`POST /v1/streams/{id}/push`); 0: never.
    pub ask_again_seconds: u64,
}

/// Delivery (play) knobs.
#[derive(Debug, Clone, Serialize)]
pub struct DeliverySettings {
    pub protocols: Vec<Protocol>,
    pub default_protocol: Protocol,
    /// At most this many candidates in a play answer.
    pub max_candidates: usize,
    /// How long a signed play URL stays valid.
    pub url_ttl_seconds: u64,
    /// How long a client may reuse a play answer before asking again.
    pub answer_ttl_seconds: u64,
    /// The origin's playlist is fetched at most once per stream this often.
    pub origin_refresh_seconds: u64,
    /// Longest one fetch of the origin's playlist may take.
    pub origin_timeout_ms: u64,
    /// How long a failed origin fetch is remembered.
    pub origin_retry_seconds: u64,
}

/// A validated policy, ready for the hot path.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// Content hash of the file (first 16 hex digits of SHA-256).
    pub version: String,
    pub source: PathBuf,
    pub regions: Vec<Region>,
    pub default_region: String,
    pub geo: GeoSettings,
    pub ingest: IngestSettings,
    pub delivery: DeliverySettings,
    pub scoring: scoring::ScoringSettings,
    pub steering: scoring::SteeringSettings,
    /// Room state machine settings.
    pub rooms: rooms::RoomSettings,
    /// Active probe settings.
    pub probes: rooms::ProbeSettings,
    /// Service directory settings.
    pub services: services::ServicesPolicy,
    /// Job name → schedule; a job missing here is disabled.
    #[serde(skip)]
    pub jobs: BTreeMap<&'static str, cron::Schedule>,
    #[serde(skip)]
    region_index: foldhash::HashMap<String, usize>,
    #[serde(skip)]
    country_index: HashMap<String, usize>,
    /// (network, region index), longest prefix first.
    #[serde(skip)]
    cidr_table: Vec<(IpNet, usize)>,
}

impl Policy {
    /// Reads and validates a policy file. `provider_ids` are the ids the registry knows.
    pub fn load(path: &Path, provider_ids: &BTreeSet<String>) -> Result<Policy, Diagnostics> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read: {e}")))?;
        Self::parse(path, &text, provider_ids)
    }

    /// Parses and validates policy text that came from `path`.
    pub fn parse(
        path: &Path,
        text: &str,
        provider_ids: &BTreeSet<String>,
    ) -> Result<Policy, Diagnostics> {
        let raw: raw::PolicyFile = diag::parse_yaml(path, text)?;
        let version = hex::encode(&Sha256::digest(text.as_bytes())[..8]);
        Self::from_raw(path, raw, version, provider_ids)
    }

    /// Validates the parsed file; every problem found is reported, not just the first.
    pub fn from_raw(
        path: &Path,
        raw: raw::PolicyFile,
        version: String,
        provider_ids: &BTreeSet<String>,
    ) -> Result<Policy, Diagnostics> {
        let mut errs = Vec::new();
        let mut regions = Vec::new();
        let mut region_index = foldhash::HashMap::default();
        let mut country_index: HashMap<String, usize> = HashMap::new();
        let mut cidr_table = Vec::new();
        let mut cidr_seen: HashMap<IpNet, String> = HashMap::new();

        if raw.regions.is_empty() {
            errs.push(Diagnostic::at(
                path,
                1,
                "regions: at least one region is required",
            ));
        }
        for r in &raw.regions {
            let id = r.id.value.clone();
            if !is_valid_region_id(&id) {
                errs.push(Diagnostic::spanned(
                    path,
                    &r.id,
                    format!("region id {id:?} must be 1 to 32 lower-case letters, digits or '-'"),
                ));
            }
            if region_index.contains_key(&id) {
                errs.push(Diagnostic::spanned(
                    path,
                    &r.id,
                    format!("region {id:?} is defined twice"),
                ));
                continue;
            }
            let idx = regions.len();
            region_index.insert(id.clone(), idx);
            let mut countries = Vec::new();
            for c in &r.countries {
                let code = c.value.to_ascii_uppercase();
                if !is_valid_country(&code) {
                    errs.push(Diagnostic::spanned(
                        path,
                        c,
                        format!("country {:?} is not a two-letter ISO 3166-1 code", c.value),
                    ));
                    continue;
                }
                if let Some(other) = country_index.get(&code) {
                    errs.push(Diagnostic::spanned(
                        path,
                        c,
                        format!(
                            "country {code} is already in region {:?}",
                            raw.regions[*other].id.value
                        ),
                    ));
                    continue;
                }
                country_index.insert(code.clone(), idx);
                countries.push(code);
            }
            let mut cidrs = Vec::new();
            for c in &r.cidrs {
                match c.value.trim().parse::<IpNet>() {
                    Ok(net) => {
                        let net = net.trunc();
                        if let Some(other) = cidr_seen.get(&net) {
                            errs.push(Diagnostic::spanned(
                                path,
                                c,
                                format!("CIDR {net} is already in region {other:?}"),
                            ));
                            continue;
                        }
                        cidr_seen.insert(net, id.clone());
                        cidrs.push(net);
                        cidr_table.push((net, idx));
                    }
                    Err(e) => errs.push(Diagnostic::spanned(
                        path,
                        c,
                        format!("bad CIDR {:?}: {e}", c.value),
                    )),
                }
            }
            let mut providers = Vec::new();
            for p in &r.providers {
                if !provider_ids.contains(&p.value) {
                    errs.push(Diagnostic::spanned(
                        path,
                        p,
                        format!(
                            "unknown provider id {:?} (known: {})",
                            p.value,
                            join(provider_ids)
                        ),
                    ));
                } else if providers.contains(&p.value) {
                    errs.push(Diagnostic::spanned(
                        path,
                        p,
                        format!("provider {:?} is listed twice", p.value),
                    ));
                } else {
                    providers.push(p.value.clone());
                }
            }
            regions.push(Region {
                id,
                name: r.name.clone().unwrap_or_else(|| r.id.value.clone()),
                countries,
                cidrs,
                providers,
            });
        }

        let default_region = raw.default_region.value.clone();
        if !region_index.contains_key(&default_region) {
            errs.push(Diagnostic::spanned(
                path,
                &raw.default_region,
                format!("default_region {default_region:?} is not one of the regions"),
            ));
        }

        let geo = GeoSettings {
            trusted_header: raw.geo.trusted_header.as_ref().and_then(|h| {
                let name = h.value.trim();
                if name.is_empty() {
                    None
                } else if actix_http_header_name_ok(name) {
                    Some(name.to_string())
                } else {
                    errs.push(Diagnostic::spanned(
                        path,
                        h,
                        format!("trusted_header {name:?} is not a valid HTTP header name"),
                    ));
                    None
                }
            }),
            trust_forwarded_for: raw.geo.trust_forwarded_for,
            mmdb_path: raw.geo.mmdb_path.as_ref().map(|p| {
                let p = PathBuf::from(&p.value);
                if p.is_relative() {
                    path.parent().unwrap_or(Path::new(".")).join(p)
                } else {
                    p
                }
            }),
        };
        if let (Some(spec), Some(resolved)) = (&raw.geo.mmdb_path, &geo.mmdb_path)
            && !resolved.is_file()
        {
            errs.push(Diagnostic::spanned(
                path,
                spec,
                format!("mmdb_path {} is not a readable file", resolved.display()),
            ));
        }

        let ingest = IngestSettings {
            strategy: raw.ingest.strategy,
            backups: raw.ingest.backups.value,
            url_ttl_seconds: raw.ingest.url_ttl_seconds.value,
            ask_again_seconds: raw.ingest.ask_again_seconds.value,
        };
        if ingest.backups > 8 {
            errs.push(Diagnostic::spanned(
                path,
                &raw.ingest.backups,
                "ingest.backups must be at most 8",
            ));
        }
        check_range(
            path,
            &raw.ingest.url_ttl_seconds,
            60,
            7 * 86_400,
            "ingest.url_ttl_seconds",
            &mut errs,
        );
        if ingest.ask_again_seconds != 0 && !(10..=86_400).contains(&ingest.ask_again_seconds) {
            errs.push(Diagnostic::spanned(
                path,
                &raw.ingest.ask_again_seconds,
                format!(
                    "ingest.ask_again_seconds is {}, must be 0 (never) or from 10 to 86400",
                    ingest.ask_again_seconds
                ),
            ));
        }

        let d = &raw.delivery;
        let protocols: Vec<Protocol> = d.protocols.value.clone();
        if protocols.is_empty() {
            errs.push(Diagnostic::spanned(
                path,
                &d.protocols,
                "delivery.protocols must not be empty",
            ));
        }
        let default_protocol = d.default_protocol.value;
        if !protocols.contains(&default_protocol) {
            errs.push(Diagnostic::spanned(
                path,
                &d.default_protocol,
                format!(
                    "delivery.default_protocol {default_protocol} is not in delivery.protocols"
                ),
            ));
        }
        check_range(
            path,
            &d.max_candidates,
            1,
            16,
            "delivery.max_candidates",
            &mut errs,
        );
        check_range(
            path,
            &d.url_ttl_seconds,
            60,
            7 * 86_400,
            "delivery.url_ttl_seconds",
            &mut errs,
        );
        check_range(
            path,
            &d.answer_ttl_seconds,
            1,
            3_600,
            "delivery.answer_ttl_seconds",
            &mut errs,
        );
        check_range(
            path,
            &d.origin_refresh_seconds,
            1,
            3_600,
            "delivery.origin_refresh_seconds",
            &mut errs,
        );
        check_range(
            path,
            &d.origin_timeout_ms,
            100,
            30_000,
            "delivery.origin_timeout_ms",
            &mut errs,
        );
        check_range(
            path,
            &d.origin_retry_seconds,
            1,
            d.origin_refresh_seconds.value.max(1),
            "delivery.origin_retry_seconds",
            &mut errs,
        );
        let delivery = DeliverySettings {
            protocols,
            default_protocol,
            max_candidates: d.max_candidates.value,
            url_ttl_seconds: d.url_ttl_seconds.value,
            answer_ttl_seconds: d.answer_ttl_seconds.value,
            origin_refresh_seconds: d.origin_refresh_seconds.value,
            origin_timeout_ms: d.origin_timeout_ms.value,
            origin_retry_seconds: d.origin_retry_seconds.value,
        };

        let region_ids: BTreeSet<String> = regions.iter().map(|r| r.id.clone()).collect();
        let scoring = scoring::ScoringSettings::from_spec(
            path,
            &raw.scoring,
            &region_ids,
            provider_ids,
            &mut errs,
        );

        let rooms = rooms::RoomSettings::from_spec(path, &raw.rooms, provider_ids, &mut errs);
        let probes = rooms::ProbeSettings::from_spec(path, &raw.probes, provider_ids, &mut errs);

        let services =
            services::ServicesPolicy::from_spec(path, &raw.services, &region_ids, &mut errs);

        let steering = scoring::SteeringSettings::from_spec(path, &raw.steering, &mut errs);
        if steering.token_refresh_seconds > 0
            && steering.token_refresh_seconds >= delivery.url_ttl_seconds
        {
            errs.push(Diagnostic::spanned(
                path,
                &raw.steering.token_refresh_seconds,
                format!(
                    "steering.token_refresh_seconds is {}, must be less than delivery.url_ttl_seconds ({}), or 0",
                    steering.token_refresh_seconds, delivery.url_ttl_seconds
                ),
            ));
        }

        let mut jobs = BTreeMap::new();
        for (name, spec) in [
            ("sweep_streams", &raw.jobs.sweep_streams),
            ("reload_policy", &raw.jobs.reload_policy),
            ("persist_scores", &raw.jobs.persist_scores),
            ("check_nodes", &raw.jobs.check_nodes),
            ("sync_nodes", &raw.jobs.sync_nodes),
            ("probe_streams", &raw.jobs.probe_streams),
            ("sweep_rooms", &raw.jobs.sweep_rooms),
        ] {
            if let Some(s) = parse_schedule(path, name, spec, &mut errs) {
                jobs.insert(name, s);
            }
        }

        if !errs.is_empty() {
            return Err(Diagnostics(errs));
        }
        cidr_table.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        Ok(Policy {
            version,
            source: path.to_path_buf(),
            regions,
            default_region,
            geo,
            ingest,
            delivery,
            scoring,
            steering,
            rooms,
            probes,
            services,
            jobs,
            region_index,
            country_index,
            cidr_table,
        })
    }

    /// The region with this id.
    pub fn region(&self, id: &str) -> Option<&Region> {
        self.region_index.get(id).map(|&i| &self.regions[i])
    }

    /// The region a country belongs to (code in any case).
    pub fn region_for_country(&self, code: &str) -> Option<&Region> {
        if !is_valid_country(code) {
            return None;
        }
        self.country_index
            .get(&code.to_ascii_uppercase())
            .map(|&i| &self.regions[i])
    }

    /// The region whose CIDR table holds this address (longest prefix wins).
    pub fn region_for_ip(&self, ip: IpAddr) -> Option<&Region> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.cidr_table
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|&(_, i)| &self.regions[i])
    }

    /// The region used when nothing else says where a client is.
    pub fn default_region(&self) -> &Region {
        &self.regions[self.region_index[&self.default_region]]
    }

    /// Ids of every provider any region prefers.
    pub fn referenced_providers(&self) -> BTreeSet<&str> {
        self.regions
            .iter()
            .flat_map(|r| r.providers.iter().map(String::as_str))
            .collect()
    }
}

/// A job's cron schedule; `None` when blank (disabled) or invalid (with an error recorded).
fn parse_schedule(
    path: &Path,
    name: &str,
    spec: &serde_saphyr::Spanned<String>,
    errs: &mut Vec<Diagnostic>,
) -> Option<cron::Schedule> {
    let text = spec.value.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<cron::Schedule>() {
        Ok(s) => Some(s),
        Err(e) => {
            errs.push(Diagnostic::spanned(
                path,
                spec,
                format!("jobs.{name}: bad cron schedule {text:?}: {e}"),
            ));
            None
        }
    }
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    path: &Path,
    v: &serde_saphyr::Spanned<T>,
    min: T,
    max: T,
    name: &str,
    errs: &mut Vec<Diagnostic>,
) {
    if v.value < min || v.value > max {
        errs.push(Diagnostic::spanned(
            path,
            v,
            format!("{name} is {}, must be from {min} to {max}", v.value),
        ));
    }
}

fn actix_http_header_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn join(ids: &BTreeSet<String>) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
