//! `providers/<id>.yaml`: one CDN or origin per file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::{ProviderError, ProviderKind};

use crate::vocab::Diagnostic;
use crate::vocab::Protocol;
use crate::vocab::ids::is_valid_provider_id;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    /// Provider id, the same as the file name without `.yaml`; used in APIs and metric labels.
    pub id: Spanned<String>,
    /// Human name.
    #[serde(default)]
    pub name: Option<String>,
    /// The adapter: `tencent_css`, `alibaba_live`, `cloudfront`, `akamai`, `nginx_rtmp`, `srs`.
    pub kind: Spanned<ProviderKind>,
    /// A disabled provider is validated but not loaded, and needs no secrets.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Region ids this provider serves; empty means every region.
    #[serde(default)]
    pub regions: Vec<Spanned<String>>,
    /// Protocols it delivers.
    pub protocols: Spanned<Vec<Protocol>>,
    /// For a CDN that pulls from another provider (CloudFront in front of an origin): that
    /// provider's id. A stream pushed to the origin is then playable here too.
    #[serde(default)]
    pub origin: Option<Spanned<String>>,
    /// URL bases per region id, with `default` for the rest.
    pub endpoints: BTreeMap<String, Spanned<EndpointSpec>>,
    /// Signing settings for the adapter; which keys apply depends on `kind`.
    #[serde(default)]
    pub signing: SigningSpec,
    /// Price per GB delivered, in the account currency.
    #[serde(default)]
    pub cost_per_gb: Option<f64>,
    /// Committed or contracted capacity, in Gbit/s.
    #[serde(default)]
    pub capacity_gbps: Option<f64>,
}

fn yes() -> bool {
    true
}

/// URL bases; the stream key (and `.flv`/`.m3u8`) is appended.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// RTMP publish base, e.g. `rtmp://push.example.com/live`.
    #[serde(default)]
    pub push: Option<String>,
    /// RTMP play base.
    #[serde(default)]
    pub rtmp: Option<String>,
    /// HTTP-FLV base: `<flv>/<stream>.flv`.
    #[serde(default)]
    pub flv: Option<String>,
    /// HLS base: `<hls>/<stream>.m3u8`.
    #[serde(default)]
    pub hls: Option<String>,
    /// MPEG-DASH base: `<dash>/<stream>.mpd`, its segments beside it.
    #[serde(default)]
    pub dash: Option<String>,
}

/// Endpoints after validation.
pub type Endpoints = EndpointSpec;

/// Signing keys. Secrets are never written here: only the names of the environment variables
/// (or files) that hold them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningSpec {
    /// Tencent, Alibaba: variable holding the push authentication key.
    #[serde(default)]
    pub push_key_env: Option<Spanned<String>>,
    /// Tencent, Alibaba: variable holding the play authentication key.
    #[serde(default)]
    pub play_key_env: Option<Spanned<String>>,
    /// Akamai: variable holding the EdgeAuth key (hex).
    #[serde(default)]
    pub key_env: Option<Spanned<String>>,
    /// Akamai: token query parameter (`__token__`).
    #[serde(default)]
    pub token_name: Option<Spanned<String>>,
    /// Akamai: `sha256` (default), `sha1` or `md5`.
    #[serde(default)]
    pub algorithm: Option<Spanned<String>>,
    /// Akamai: ACL pattern; `{dir}` (the path of the play base URL) and `{stream}` are replaced
    /// (default `{dir}/{stream}*`, which covers the playlist and its segments).
    #[serde(default)]
    pub acl: Option<Spanned<String>>,
    /// CloudFront: the public key id (`K2JCJMDEHXQW5F`) or legacy key pair id.
    #[serde(default)]
    pub key_pair_id: Option<Spanned<String>>,
    /// CloudFront: variable holding the PEM private key.
    #[serde(default)]
    pub private_key_env: Option<Spanned<String>>,
    /// CloudFront: file holding the PEM private key (relative to the provider file).
    #[serde(default)]
    pub private_key_file: Option<Spanned<String>>,
    /// Self-hosted origins: variable holding the token secret livesteer signs with.
    #[serde(default)]
    pub token_secret_env: Option<Spanned<String>>,
    /// Self-hosted origins only: secret used when `token_secret_env` is unset. DEMO ONLY: anyone
    /// who reads the repository can sign URLs with it.
    #[serde(default)]
    pub demo_secret: Option<Spanned<String>>,
}

/// What every adapter shares, validated.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub kind: ProviderKind,
    /// Covered regions; empty means all.
    pub regions: Vec<String>,
    pub protocols: Vec<Protocol>,
    pub origin: Option<String>,
    /// Region id (or `default`) → endpoints.
    pub endpoints: BTreeMap<String, Endpoints>,
    pub cost_per_gb: Option<f64>,
    pub capacity_gbps: Option<f64>,
    #[serde(skip)]
    pub file: PathBuf,
}

impl ProviderInfo {
    /// Endpoints for a region, falling back to `default`.
    pub fn endpoints_for(&self, region: &str) -> Option<&Endpoints> {
        self.endpoints
            .get(region)
            .or_else(|| self.endpoints.get("default"))
    }

    /// Whether it serves the region.
    pub fn covers(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
    }

    /// Whether anchors can publish to it in the region.
    pub fn takes_ingest(&self, region: &str) -> bool {
        self.endpoints_for(region).is_some_and(|e| e.push.is_some())
    }

    /// The push base URL for a region, or why there is none.
    pub fn push_base(&self, region: &str) -> Result<&str, ProviderError> {
        self.endpoints_for(region)
            .and_then(|e| e.push.as_deref())
            .ok_or_else(|| ProviderError::NoIngest {
                provider: self.id.clone(),
            })
    }

    /// A signing failure of this provider.
    pub fn signing_error(&self, e: impl std::fmt::Display) -> ProviderError {
        ProviderError::Signing {
            provider: self.id.clone(),
            message: e.to_string(),
        }
    }

    /// The base URL for a protocol in a region.
    pub fn play_base(&self, region: &str, protocol: Protocol) -> Option<&str> {
        if !self.protocols.contains(&protocol) {
            return None;
        }
        let e = self.endpoints_for(region)?;
        match protocol {
            Protocol::Flv => e.flv.as_deref(),
            Protocol::Hls => e.hls.as_deref(),
            Protocol::Rtmp => e.rtmp.as_deref(),
            Protocol::Dash => e.dash.as_deref(),
        }
    }
}

impl ProviderFile {
    /// Checks what does not depend on other files and returns the shared part.
    pub fn validate(&self, file: &Path, errs: &mut Vec<Diagnostic>) -> ProviderInfo {
        let id = self.id.value.clone();
        if !is_valid_provider_id(&id) {
            errs.push(Diagnostic::spanned(
                file,
                &self.id,
                format!("provider id {id:?} must be 1 to 32 lower-case letters, digits or '-'"),
            ));
        }
        if file.file_stem().and_then(|s| s.to_str()) != Some(id.as_str()) {
            errs.push(Diagnostic::spanned(
                file,
                &self.id,
                format!("provider id {id:?} must match the file name"),
            ));
        }
        if self.protocols.value.is_empty() {
            errs.push(Diagnostic::spanned(
                file,
                &self.protocols,
                "protocols must not be empty",
            ));
        }
        if self.endpoints.is_empty() {
            errs.push(Diagnostic::at(
                file,
                self.id.referenced.line(),
                "endpoints: at least one entry is required",
            ));
        }
        let mut endpoints = BTreeMap::new();
        for (key, ep) in &self.endpoints {
            let e = &ep.value;
            for (name, url, schemes) in [
                ("push", &e.push, &["rtmp", "rtmps", "srt"][..]),
                ("rtmp", &e.rtmp, &["rtmp", "rtmps"][..]),
                ("flv", &e.flv, &["http", "https"][..]),
                ("hls", &e.hls, &["http", "https"][..]),
                ("dash", &e.dash, &["http", "https"][..]),
            ] {
                if let Some(u) = url
                    && let Err(msg) = check_base_url(u, schemes)
                {
                    errs.push(Diagnostic::spanned(
                        file,
                        ep,
                        format!("endpoints.{key}.{name}: {msg}"),
                    ));
                }
            }
            endpoints.insert(key.clone(), trimmed(e));
        }
        for p in &self.protocols.value {
            let offered = endpoints.values().any(|e| match p {
                Protocol::Flv => e.flv.is_some(),
                Protocol::Hls => e.hls.is_some(),
                Protocol::Rtmp => e.rtmp.is_some(),
                Protocol::Dash => e.dash.is_some(),
            });
            if !offered {
                errs.push(Diagnostic::spanned(
                    file,
                    &self.protocols,
                    format!("protocol {p} is listed but no endpoint has a {p} base"),
                ));
            }
        }
        for (name, v) in [
            ("cost_per_gb", self.cost_per_gb),
            ("capacity_gbps", self.capacity_gbps),
        ] {
            if let Some(x) = v
                && !(x.is_finite() && x >= 0.0)
            {
                errs.push(Diagnostic::spanned(
                    file,
                    &self.id,
                    format!("{name} must be a number >= 0, not {x}"),
                ));
            }
        }
        ProviderInfo {
            id,
            name: self.name.clone().unwrap_or_else(|| self.id.value.clone()),
            kind: self.kind.value,
            regions: self.regions.iter().map(|r| r.value.clone()).collect(),
            protocols: self.protocols.value.clone(),
            origin: self.origin.as_ref().map(|o| o.value.clone()),
            endpoints,
            cost_per_gb: self.cost_per_gb,
            capacity_gbps: self.capacity_gbps,
            file: file.to_path_buf(),
        }
    }

    /// Checks the references to regions and other providers.
    pub fn validate_refs(
        &self,
        file: &Path,
        region_ids: &BTreeSet<String>,
        providers: &BTreeMap<String, ProviderKind>,
        errs: &mut Vec<Diagnostic>,
    ) {
        for r in &self.regions {
            if !region_ids.contains(&r.value) {
                errs.push(Diagnostic::spanned(
                    file,
                    r,
                    format!("unknown region {:?}", r.value),
                ));
            }
        }
        for (key, ep) in &self.endpoints {
            if key != "default" && !region_ids.contains(key) {
                errs.push(Diagnostic::spanned(
                    file,
                    ep,
                    format!("endpoints key {key:?} is neither `default` nor a region id"),
                ));
            }
        }
        let has_push = self.endpoints.values().any(|e| e.value.push.is_some());
        match &self.origin {
            Some(o) if o.value == self.id.value => {
                errs.push(Diagnostic::spanned(
                    file,
                    o,
                    "origin must be another provider",
                ));
            }
            Some(o) if !providers.contains_key(&o.value) => {
                errs.push(Diagnostic::spanned(
                    file,
                    o,
                    format!("unknown origin provider {:?}", o.value),
                ));
            }
            Some(_) => {}
            None if !has_push => errs.push(Diagnostic::spanned(
                file,
                &self.id,
                "a provider with no push endpoint needs an `origin` it pulls from",
            )),
            None => {}
        }
    }
}

fn trimmed(e: &EndpointSpec) -> EndpointSpec {
    let t = |s: &Option<String>| {
        s.as_ref()
            .map(|u| u.trim().trim_end_matches('/').to_string())
    };
    EndpointSpec {
        push: t(&e.push),
        rtmp: t(&e.rtmp),
        flv: t(&e.flv),
        hls: t(&e.hls),
        dash: t(&e.dash),
    }
}

fn check_base_url(u: &str, schemes: &[&str]) -> Result<(), String> {
    let parsed = url::Url::parse(u.trim()).map_err(|e| format!("{u:?} is not a URL: {e}"))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(format!("{u:?} must use {}", schemes.join(" or ")));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{u:?} has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{u:?} must not carry a query or fragment"));
    }
    Ok(())
}
