//! Decisions: which providers an anchor pushes to, and the ranked, signed play candidates a
//! viewer gets.
//!
//! Reads memory only (the catalog, the scores snapshot, the stream) and signs through a cache,
//! so a play decision costs a few map lookups once its URLs are warm. Push decisions ask the
//! scoring engine (anchor first); play decisions rank with the engine's latest snapshot.
//!
//! **Architecture invariant:** no SQL and no network here.

use std::sync::Arc;

use rand::RngExt;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::metrics as m;
use crate::policy::Region;
use crate::providers::Provider;
use crate::scoring::{Engine, Pick, Snapshot};
use crate::streams::Stream;
use crate::vocab::Protocol;

/// One signed URL and the provider behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PushTarget {
    pub provider: String,
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// `primary` or `backup`.
    pub role: &'static str,
}

/// Where an anchor pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPlan {
    pub targets: Vec<PushTarget>,
    pub reason: String,
}

/// One play candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub provider: String,
    pub protocol: Protocol,
    pub url: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why no decision could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("no enabled provider takes ingest in region {0}")]
    NoIngest(String),
    #[error("protocol {0} is not offered (the policy offers {1})")]
    ProtocolNotOffered(Protocol, String),
}

/// Signed URLs are cached by (provider, stream, region, protocol or push, expiry). Expiries are
/// rounded up to a step so that requests within one step share one signature: a URL is valid for
/// at least the policy's TTL and at most one step longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct UrlKey<'a> {
    provider: &'a str,
    stream: &'a str,
    region: &'a str,
    /// `None` for push.
    protocol: Option<Protocol>,
    expires_at: i64,
    /// A variant or rendition playlist, relative to the HLS play URL; `None` for the play URL.
    variant: Option<&'a str>,
}

/// A signed URL and the key it was signed for, stored under the key's hash: a lookup builds
/// no owned key, and a hash shared by two keys is told apart here (the later one replaces the
/// earlier).
#[derive(Debug)]
struct Signed {
    provider: Box<str>,
    stream: Box<str>,
    region: Box<str>,
    protocol: Option<Protocol>,
    expires_at: i64,
    variant: Option<Box<str>>,
    url: Arc<str>,
}

impl Signed {
    fn new(key: &UrlKey<'_>, url: Arc<str>) -> Signed {
        Signed {
            provider: key.provider.into(),
            stream: key.stream.into(),
            region: key.region.into(),
            protocol: key.protocol,
            expires_at: key.expires_at,
            variant: key.variant.map(Into::into),
            url,
        }
    }

    fn is(&self, key: &UrlKey<'_>) -> bool {
        self.expires_at == key.expires_at
            && self.protocol == key.protocol
            && *self.stream == *key.stream
            && *self.provider == *key.provider
            && *self.region == *key.region
            && self.variant.as_deref() == key.variant
    }
}

/// Hashes a `u64` that is already a hash: the cache's keys are [`UrlKey`] hashes.
#[derive(Debug, Clone, Copy, Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Prehash = std::hash::BuildHasherDefault<Prehashed>;

/// Most signed URLs a request thread keeps in front of the shared cache.
const FRONT_CAPACITY: usize = 4096;

/// A request thread's own copy of the signed URLs it served lately, in front of the shared
/// cache: a warm lookup takes no lock, no atomic and no epoch. It belongs to one signer and one
/// generation of it (see [`Signer::clear`]), and is emptied when either changes or it is full.
#[derive(Default)]
struct Front {
    signer: u64,
    generation: u64,
    urls: std::collections::HashMap<u64, Arc<Signed>, Prehash>,
}

thread_local! {
    static FRONT: std::cell::RefCell<Front> = std::cell::RefCell::default();
}

/// What the clones of one signer share besides the cache: who it is and how often it was cleared.
#[derive(Debug)]
struct Generation {
    signer: u64,
    generation: std::sync::atomic::AtomicU64,
}

/// Signs through a bounded cache.
#[derive(Debug, Clone)]
pub struct Signer {
    cache: moka::sync::Cache<u64, Arc<Signed>, Prehash>,
    hasher: foldhash::fast::RandomState,
    generation: Arc<Generation>,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new(200_000)
    }
}

/// Expiry rounded up to a step of a tenth of the TTL (at least a minute, at most ten).
pub fn rounded_expiry(now_secs: i64, ttl_secs: u64) -> i64 {
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 4);
    let step = (ttl / 10).clamp(60, 600);
    let raw = now_secs.saturating_add(ttl);
    raw.div_euclid(step).saturating_add(1).saturating_mul(step)
}

impl Signer {
    pub fn new(capacity: u64) -> Self {
        static SIGNERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(std::time::Duration::from_secs(1800))
                .build_with_hasher(Prehash::default()),
            hasher: foldhash::fast::RandomState::default(),
            generation: Arc::new(Generation {
                signer: SIGNERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Forgets every signed URL (after a reload: keys or endpoints may have changed).
    pub fn clear(&self) {
        // The shared cache first: a thread that sees the new generation finds it empty.
        self.cache.invalidate_all();
        self.generation
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The URL signed for `key`, from this thread's front or the shared cache, or signed now
    /// by `sign` (a failure is not kept: the next request tries again).
    fn cached(
        &self,
        provider: &Arc<dyn Provider>,
        key: UrlKey<'_>,
        sign: impl FnOnce() -> Result<String, crate::providers::ProviderError>,
    ) -> Option<Arc<str>> {
        use std::hash::BuildHasher as _;
        let hash = self.hasher.hash_one(key);
        let generation = self
            .generation
            .generation
            .load(std::sync::atomic::Ordering::Acquire);
        let front = FRONT.with_borrow_mut(|front| {
            if front.signer != self.generation.signer || front.generation != generation {
                front.urls.clear();
                front.signer = self.generation.signer;
                front.generation = generation;
            }
            front
                .urls
                .get(&hash)
                .filter(|s| s.is(&key))
                .map(|s| s.url.clone())
        });
        if front.is_some() {
            return front;
        }
        let signed = match self.cache.get(&hash).filter(|s| s.is(&key)) {
            Some(hit) => hit,
            None => {
                let url = self.keep(provider, sign())?;
                let signed = Arc::new(Signed::new(&key, url));
                self.cache.insert(hash, signed.clone());
                signed
            }
        };
        let url = signed.url.clone();
        FRONT.with_borrow_mut(|front| {
            if front.signer == self.generation.signer && front.generation == generation {
                if front.urls.len() >= FRONT_CAPACITY {
                    front.urls.clear();
                }
                front.urls.insert(hash, signed);
            }
        });
        Some(url)
    }

    fn sign(
        &self,
        provider: &Arc<dyn Provider>,
        stream: &str,
        region: &str,
        protocol: Option<Protocol>,
        expires_at: i64,
    ) -> Option<Arc<str>> {
        let key = UrlKey {
            provider: provider.id(),
            stream,
            region,
            protocol,
            expires_at,
            variant: None,
        };
        self.cached(provider, key, || match protocol {
            Some(p) => provider.play_url(stream, region, p, expires_at),
            None => provider.push_url(stream, region, expires_at),
        })
    }

    /// `provider`'s signed play URL for `stream` in `region`, valid until `expires_at`.
    pub fn play_url(
        &self,
        provider: &Arc<dyn Provider>,
        stream: &str,
        region: &str,
        protocol: Protocol,
        expires_at: i64,
    ) -> Option<Arc<str>> {
        self.sign(provider, stream, region, Some(protocol), expires_at)
    }

    /// What `reference` names relative to `provider`'s `protocol` play URL `play_url` (the one
    /// [`Signer::play_url`] gave for the same stream, region and expiry): an HLS variant
    /// playlist, or the base URL of a DASH service location. Signed as
    /// [`Provider::variant_url`] does, through the same cache: a CloudFront variant is signed
    /// once per expiry step, not per viewer.
    #[allow(clippy::too_many_arguments)]
    pub fn variant_url(
        &self,
        provider: &Arc<dyn Provider>,
        stream: &str,
        region: &str,
        protocol: Protocol,
        play_url: &str,
        reference: &str,
        expires_at: i64,
    ) -> Option<Arc<str>> {
        let key = UrlKey {
            provider: provider.id(),
            stream,
            region,
            protocol: Some(protocol),
            expires_at,
            variant: Some(reference),
        };
        self.cached(provider, key, || {
            provider.variant_url(stream, region, play_url, reference, expires_at)
        })
    }

    fn keep(
        &self,
        provider: &Arc<dyn Provider>,
        signed: Result<String, crate::providers::ProviderError>,
    ) -> Option<Arc<str>> {
        match signed {
            Ok(url) => Some(Arc::from(url)),
            Err(e) => {
                tracing::warn!(provider = provider.id(), error = %e, "signing failed");
                metrics::counter!(m::SIGNING_ERRORS.name, "provider" => provider.id().to_string())
                    .increment(1);
                None
            }
        }
    }
}

/// Providers in the region's preference order, then the rest by id, filtered by `keep`: the
/// order pushes, plays and the simulator's static strategy start from.
pub fn ordered<'c>(
    catalog: &'c Catalog,
    region: &Region,
    keep: impl Fn(&Arc<dyn Provider>) -> bool,
) -> Vec<&'c Arc<dyn Provider>> {
    let mut out: Vec<&Arc<dyn Provider>> = region
        .providers
        .iter()
        .filter_map(|id| catalog.registry.get(id))
        .filter(|p| keep(p))
        .collect();
    for p in catalog.registry.iter() {
        if !region.providers.iter().any(|id| id == p.id()) && keep(p) {
            out.push(p);
        }
    }
    out
}

/// Chooses the primary and backup push targets for `anchor` going live in `region`, anchor
/// first: by how smoothly this anchor's uploads reached each provider before (a new anchor gets
/// its region's prior) and how well each serves the anchor's audience, then signs them. `rng`
/// draws the backups (see [`Engine::ingest_rank`]).
#[allow(clippy::too_many_arguments)]
pub fn push_plan<R: rand::Rng + ?Sized>(
    catalog: &Catalog,
    signer: &Signer,
    engine: &mut Engine,
    region: &Region,
    anchor: &str,
    stream: &str,
    now_ms: i64,
    rng: &mut R,
) -> Result<PushPlan, DecisionError> {
    let policy = &catalog.policy;
    let (ids, mut why, mut fallback) = push_candidates(catalog, region);
    let mut ranked = engine.ingest_rank(anchor, &region.id, &ids, now_ms, &policy.scoring, rng);
    if ranked.is_empty() {
        // Every candidate is drained: push anyway rather than not at all.
        why = format!("{why}; every candidate is drained");
        fallback = Some("drained");
        ranked = ids
            .iter()
            .map(|id| engine.delivery_score(id, &region.id, now_ms, &policy.scoring))
            .collect();
    }
    sign_push(
        catalog, signer, region, stream, &ranked, &why, fallback, now_ms,
    )
}

/// The app asking again, during a broadcast, where `stream` should be pushed (see
/// [`Engine::ingest_recheck`]): `Some` plan, signed, when the stream should move, with the
/// push decisions counted (reason `moved`); `None` when it stays where it is.
pub fn push_recheck(
    catalog: &Catalog,
    signer: &Signer,
    engine: &mut Engine,
    region: &Region,
    stream: &Stream,
    now_ms: i64,
) -> Result<Option<PushPlan>, DecisionError> {
    let (ids, why, _) = push_candidates(catalog, region);
    let Some(ranked) = engine.ingest_recheck(
        &stream.anchor_id,
        &region.id,
        &stream.providers,
        &ids,
        now_ms,
        &catalog.policy.scoring,
    ) else {
        return Ok(None);
    };
    let why = format!(
        "{why}, asked again: moved from {}",
        stream.providers.join(", ")
    );
    sign_push(
        catalog,
        signer,
        region,
        &stream.id,
        &ranked,
        &why,
        Some("moved"),
        now_ms,
    )
    .map(Some)
}

/// The stream's current push targets, signed again (a new expiry), in the order they were
/// given: what an app asking again is told when its stream stays where it is. Providers the
/// catalog no longer holds are left out. No decision is counted: nothing was decided.
pub fn push_targets(
    catalog: &Catalog,
    signer: &Signer,
    region: &Region,
    stream: &Stream,
    now_ms: i64,
) -> Vec<PushTarget> {
    let providers = stream.providers.iter().map(String::as_str);
    sign_targets(
        catalog,
        signer,
        region,
        &stream.id,
        providers,
        usize::MAX,
        now_ms,
    )
    .into_iter()
    .map(|(_, t)| t)
    .collect()
}

/// Push targets for `stream`: the first `want` of `providers` (in order) that the catalog holds
/// and that can be signed, all with one expiry, the first the primary; each with the position
/// of its provider in `providers`.
fn sign_targets<'a>(
    catalog: &Catalog,
    signer: &Signer,
    region: &Region,
    stream: &str,
    providers: impl IntoIterator<Item = &'a str>,
    want: usize,
    now_ms: i64,
) -> Vec<(usize, PushTarget)> {
    let expires_at = rounded_expiry(
        now_ms.div_euclid(1000),
        catalog.policy.ingest.url_ttl_seconds,
    );
    let mut targets: Vec<(usize, PushTarget)> = Vec::new();
    for (i, id) in providers.into_iter().enumerate() {
        if targets.len() == want {
            break;
        }
        let Some(p) = catalog.registry.get(id) else {
            continue;
        };
        if let Some(url) = signer.sign(p, stream, &region.id, None, expires_at) {
            let role = if targets.is_empty() {
                "primary"
            } else {
                "backup"
            };
            targets.push((
                i,
                PushTarget {
                    provider: p.id().to_string(),
                    url: url.to_string(),
                    expires_at,
                    role,
                },
            ));
        }
    }
    targets
}

/// Who may take `region`'s pushes, in the policy's order: the providers that cover it and
/// take ingest, else (nobody covers it) any that takes ingest, in the default region's order.
/// With the start of the reason and the decisions' `reason` label when it is a fallback.
fn push_candidates(
    catalog: &Catalog,
    region: &Region,
) -> (Vec<String>, String, Option<&'static str>) {
    let mut candidates = ordered(catalog, region, |p| {
        p.info().covers(&region.id) && p.info().takes_ingest(&region.id)
    });
    let mut why = String::from("anchor first");
    let mut fallback = None;
    if candidates.is_empty() {
        fallback = Some("uncovered");
        candidates = ordered(catalog, catalog.policy.default_region(), |p| {
            p.info().takes_ingest(&region.id)
        });
        why = format!(
            "no provider covers region {}; anchor first over the default region's providers",
            region.id
        );
    }
    let ids = candidates.iter().map(|p| p.id().to_string()).collect();
    (ids, why, fallback)
}

/// Signs the first `1 + backups` of `ranked` that can be signed as push targets, counting each
/// decision; `fallback` is the decisions' `reason` label when not `anchor_first`/`backup`.
#[allow(clippy::too_many_arguments)]
fn sign_push(
    catalog: &Catalog,
    signer: &Signer,
    region: &Region,
    stream: &str,
    ranked: &[crate::scoring::Score],
    why: &str,
    fallback: Option<&'static str>,
    now_ms: i64,
) -> Result<PushPlan, DecisionError> {
    let want = 1 + catalog.policy.ingest.backups;
    let providers = ranked.iter().map(|sc| sc.provider.as_str());
    let signed = sign_targets(catalog, signer, region, stream, providers, want, now_ms);
    let Some(primary) = signed.first().map(|(i, _)| &ranked[*i]) else {
        return Err(DecisionError::NoIngest(region.id.clone()));
    };
    let targets: Vec<PushTarget> = signed.into_iter().map(|(_, t)| t).collect();
    for t in &targets {
        let reason = fallback.unwrap_or(if t.role == "primary" {
            "anchor_first"
        } else {
            "backup"
        });
        metrics::counter!(m::DECISIONS.name, "kind" => "push", "provider" => t.provider.clone(),
            "region" => region.id.clone(), "protocol" => "rtmp", "reason" => reason)
        .increment(1);
    }
    let mut reason = format!(
        "{why} in region {}: primary {} (ingest unhealthy {:.1}%, cost {:.3})",
        region.id,
        primary.provider,
        primary.ingest_unhealthy * 100.0,
        primary.cost
    );
    if targets.len() > 1 {
        let backups: Vec<&str> = targets[1..].iter().map(|t| t.provider.as_str()).collect();
        reason.push_str(&format!(", backup {}", backups.join(", ")));
    }
    Ok(PushPlan { targets, reason })
}

/// Whether `p` carries `stream`: it was pushed there, or it pulls from a provider that was.
pub fn carries(p: &dyn Provider, stream: &Stream) -> bool {
    crate::vocab::carries(p.id(), p.info().origin.as_deref(), &stream.providers)
}

/// The providers carrying `stream` that offer `protocol` in `region`, in the policy's order.
pub fn carriers<'c>(
    catalog: &'c Catalog,
    region: &Region,
    stream: &Stream,
    protocol: Protocol,
) -> Vec<&'c Arc<dyn Provider>> {
    ordered(catalog, region, |p| {
        carries(p.as_ref(), stream) && p.info().play_base(&region.id, protocol).is_some()
    })
}

/// How a play answer was ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayDecision {
    pub candidates: Vec<Candidate>,
    pub pick: Pick,
}

/// Ranked, signed play candidates for a viewer in `region`: the providers carrying the stream,
/// ordered by the scores snapshot for the region (and the anchor's upload to each), then
/// capped and signed. `avoid` moves providers to the end (a player switching away).
#[allow(clippy::too_many_arguments)]
pub fn play_candidates<R: rand::Rng + ?Sized>(
    catalog: &Catalog,
    signer: &Signer,
    scores: &Snapshot,
    region: &Region,
    stream: &Stream,
    protocol: Protocol,
    avoid: &[&str],
    now_secs: i64,
    rng: &mut R,
) -> Result<PlayDecision, DecisionError> {
    let policy = &catalog.policy;
    if !policy.delivery.protocols.contains(&protocol) {
        let offered: Vec<&str> = policy
            .delivery
            .protocols
            .iter()
            .map(|p| p.as_str())
            .collect();
        return Err(DecisionError::ProtocolNotOffered(
            protocol,
            offered.join(", "),
        ));
    }
    let expires_at = rounded_expiry(now_secs, policy.delivery.url_ttl_seconds);
    let carriers = carriers(catalog, region, stream, protocol);
    let ids: Vec<&str> = carriers.iter().map(|p| p.id()).collect();
    let (mut order, pick) = scores.rank(&region.id, Some(&stream.anchor_id), &ids, rng);
    let ranked_first = order.first().copied();
    if !avoid.is_empty() {
        order.sort_by_key(|p| avoid.contains(p));
    }
    // Why the first candidate is first (the `reason` label): the pick; switch when a switching
    // player's provider was moved out of first place; unsigned when the ranked first could not
    // be signed.
    let reason = |first: &str| {
        if Some(first) == ranked_first {
            pick.as_str()
        } else if ranked_first.is_some_and(|r| avoid.contains(&r)) {
            "switch"
        } else {
            "unsigned"
        }
    };
    let mut out = Vec::with_capacity(policy.delivery.max_candidates);
    for id in order {
        if out.len() == policy.delivery.max_candidates {
            break;
        }
        let Some(p) = catalog.registry.get(id) else {
            continue;
        };
        if let Some(url) = signer.sign(p, &stream.id, &region.id, Some(protocol), expires_at) {
            out.push(Candidate {
                provider: p.id().to_string(),
                protocol,
                url: url.to_string(),
                expires_at,
            });
        }
    }
    if let Some(first) = out.first() {
        m::count(
            m::DECISIONS.name,
            &[
                ("kind", "play"),
                ("provider", &first.provider),
                ("region", &region.id),
                ("protocol", protocol.as_str()),
                ("reason", reason(&first.provider)),
            ],
            1,
        );
    }
    Ok(PlayDecision {
        candidates: out,
        pick,
    })
}

/// What a steering manifest carries between reloads, in its `RELOAD-URI`: the viewer's region,
/// the pathways it struggled on lately, what livesteer last told it, where it was and since
/// when, and which generation of signed URLs it plays. Any replica answers the next reload
/// from it. Pathways here are provider ids (a clone's generation suffix stripped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSession {
    /// Region id.
    pub region: String,
    /// (pathway, until unix seconds): kept at the back of this viewer's list until then.
    pub penalized: Vec<(String, i64)>,
    /// The pathway livesteer last put first for this player; `None` after an answer that lets
    /// the player move where it must (one that starts a generation of pathway clones), so that
    /// its next move is not taken for a failover.
    pub told: Option<String>,
    /// The pathway the player was on at its last contact.
    pub on: Option<String>,
    /// Unix seconds since the player has been on `on`.
    pub since: i64,
    /// Unix seconds of the last contact: the master playlist or the last reload.
    pub last: i64,
    /// The generation of signed URLs the player plays: 0 for the master playlist's own, then
    /// one more each time steering moves it to fresh ones (pathway clones `<provider>.<n>`).
    pub generation: u32,
    /// Unix seconds when the URLs of that generation expire (0: unknown, never refreshed).
    pub expires_at: i64,
}

/// Most pathways a session remembers as penalized.
const MAX_PENALIZED: usize = 8;

/// The first field of an encoded session: its format.
const SESSION_VERSION: &str = "1";

impl SteeringSession {
    /// The session a multivariant playlist starts: the player begins on `first`, which
    /// livesteer put first, now, with URLs that expire at `expires_at`.
    pub fn start(region: &str, first: &str, now_secs: i64, expires_at: i64) -> SteeringSession {
        SteeringSession {
            region: region.to_string(),
            penalized: Vec::new(),
            told: Some(first.to_string()),
            on: Some(first.to_string()),
            since: now_secs,
            last: now_secs,
            generation: 0,
            expires_at,
        }
    }

    /// The `session` query value: the fields in a fixed order, separated by `~`, each
    /// penalized pathway as `<pathway>.<until>`:
    /// `1~<region>~<told>~<on>~<since>~<last>~<generation>~<expires_at>[~<pathway>.<until>…]`
    /// (an absent pathway is empty). Region and provider ids are lower-case letters, digits and
    /// `-`, so the value needs no escaping in a URL and no decoder beyond a split.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(64 + 24 * self.penalized.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends [`SteeringSession::encode`] to `out`.
    pub fn encode_into(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str(SESSION_VERSION);
        for field in [
            self.region.as_str(),
            self.told.as_deref().unwrap_or(""),
            self.on.as_deref().unwrap_or(""),
        ] {
            out.push('~');
            out.push_str(field);
        }
        let _ = write!(
            out,
            "~{}~{}~{}~{}",
            self.since, self.last, self.generation, self.expires_at
        );
        for (pathway, until) in &self.penalized {
            let _ = write!(out, "~{pathway}.{until}");
        }
    }

    /// Reads a `session` query value; `None` for anything malformed (the player then gets a
    /// fresh session, never an error).
    pub fn decode(s: &str) -> Option<SteeringSession> {
        if s.len() > 1024 {
            return None;
        }
        let id = |v: &str| {
            (v.len() <= 32
                && v.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            .then(|| v.to_string())
        };
        let pathway = |v: &str| match v {
            "" => Some(None),
            v => id(v).map(Some),
        };
        let mut f = s.split('~');
        if f.next()? != SESSION_VERSION {
            return None;
        }
        let mut session = SteeringSession {
            region: id(f.next()?)?,
            told: pathway(f.next()?)?,
            on: pathway(f.next()?)?,
            since: f.next()?.parse().ok()?,
            last: f.next()?.parse().ok()?,
            generation: f.next()?.parse().ok()?,
            expires_at: f.next()?.parse().ok()?,
            penalized: Vec::new(),
        };
        for p in f {
            if session.penalized.len() == MAX_PENALIZED {
                return None;
            }
            let (pathway, until) = p.split_once('.')?;
            let pathway = id(pathway).filter(|p| !p.is_empty())?;
            session.penalized.push((pathway, until.parse().ok()?));
        }
        Some(session)
    }

    fn is_penalized(&self, pathway: &str) -> bool {
        self.penalized.iter().any(|(p, _)| p == pathway)
    }

    fn penalize(&mut self, pathway: &str, until: i64) {
        if self.is_penalized(pathway) {
            return;
        }
        if self.penalized.len() == MAX_PENALIZED {
            self.penalized.remove(0);
        }
        self.penalized.push((pathway.to_string(), until));
    }
}

/// The pathway id a provider has in generation `generation` of a player's URLs.
pub fn pathway_id(provider: &str, generation: u32) -> String {
    if generation == 0 {
        provider.to_string()
    } else {
        format!("{provider}.{generation}")
    }
}

/// The provider behind a pathway id (a clone's `.<generation>` stripped; provider ids have no
/// `.`).
pub fn pathway_provider(pathway: &str) -> &str {
    pathway.split('.').next().unwrap_or(pathway)
}

/// A steering answer: the pathway priority (provider ids, in order), the session for the next
/// reload, and what the reload told about the providers (for the scoring engine).
#[derive(Debug, Clone, PartialEq)]
pub struct SteeringAnswer {
    pub priority: Vec<String>,
    pub session: SteeringSession,
    /// Delivery evidence: a player's attributed throughput ([`Signal::Reload`]) and a player
    /// that left a pathway on its own ([`Signal::Switch`]: it failed over).
    pub evidence: Vec<crate::signals::Signal>,
    /// The player's URLs are about to expire: this answer moves it to generation
    /// `session.generation` (pathway clones with freshly signed query parameters).
    pub refreshed: bool,
}

/// The pathway (provider) priority for a player of `stream` in `region`, among the providers
/// carrying it that offer `protocol` (HLS pathways, DASH service locations), currently on
/// `current` (a pathway id, maybe a clone's) and reporting `throughput_bps`.
///
/// Attribution: the session remembers what livesteer last put first, where the player was and
/// since when. A player's throughput counts for its pathway only once it has been there for the
/// policy's `settle_seconds` (its estimate still carries the pathway it left), so a player that
/// just moved is never blamed on the new pathway for what it measured on the old one. A player
/// found on another pathway than the one it was on, without having been told to go there, has
/// failed over: that is evidence against the pathway it left, which goes to the back of its
/// list.
///
/// Ranking: a player on a pathway that is still about as good as the best stays on it (no
/// bouncing); one on a worse pathway is moved with the policy's `move_share` chance per reload,
/// so that a crowd moves over several reloads; a pathway the player struggled on (its
/// throughput under `min_throughput_bps`) goes to the back of its list for the policy's
/// penalty time, so that a struggling player moves at once; so does every player of a pathway
/// whose error rate reaches `failing_error_rate` (a dead edge) while the best's does not.
#[allow(clippy::too_many_arguments)]
pub fn steer<R: rand::Rng + ?Sized>(
    catalog: &Catalog,
    scores: &Snapshot,
    region: &Region,
    stream: &Stream,
    protocol: Protocol,
    current: Option<&str>,
    throughput_bps: Option<u64>,
    mut session: SteeringSession,
    now_secs: i64,
    rng: &mut R,
) -> SteeringAnswer {
    use crate::signals::Signal;
    let st = &catalog.policy.steering;
    if session.region != region.id {
        session.region.clone_from(&region.id);
    }
    session.penalized.retain(|(_, until)| *until > now_secs);
    let until = now_secs.saturating_add(i64::try_from(st.penalty_seconds).unwrap_or(0));
    let carriers = carriers(catalog, region, stream, protocol);
    let ids: Vec<&str> = carriers.iter().map(|p| p.id()).collect();
    // Where the player is now: one of this stream's pathways, or nowhere known.
    let current = current.map(pathway_provider).filter(|p| ids.contains(p));
    let mut evidence = Vec::new();
    let anchor = Some(stream.anchor_id.clone());
    if let Some(cur) = current {
        // Times from the session never lie ahead of now (a forged session gains nothing).
        let since = session.since.min(now_secs);
        let last = session.last.min(now_secs);
        let stayed = session.on.as_deref() == Some(cur);
        if !stayed {
            let followed = session.told.as_deref() == Some(cur);
            if let Some(left) = session.on.take()
                && !followed
                && session.told.is_some()
                && ids.contains(&left.as_str())
            {
                // It left `left` for a pathway livesteer did not send it to: it failed over.
                evidence.push(Signal::Switch {
                    provider: left.clone(),
                    region: region.id.clone(),
                    anchor_id: anchor.clone(),
                });
                session.penalize(&left, until);
            }
            session.on = Some(cur.to_string());
            // A player sent here moved as the last answer arrived; one that failed over moved
            // at some time since.
            session.since = if followed && last > 0 { last } else { now_secs };
        } else if let Some(tp) = throughput_bps
            && now_secs.saturating_sub(since) >= i64::try_from(st.settle_seconds).unwrap_or(0)
        {
            // On `cur` for the whole stretch its estimate covers: the throughput is `cur`'s.
            let covered_ms = u64::try_from(now_secs.saturating_sub(last.max(since)))
                .unwrap_or(0)
                .saturating_mul(1000);
            if st.min_throughput_bps > 0 {
                evidence.push(Signal::Reload {
                    provider: cur.to_string(),
                    region: region.id.clone(),
                    anchor_id: anchor.clone(),
                    covered_ms,
                    throughput_bps: tp,
                    needed_bps: st.min_throughput_bps,
                });
                if tp < st.min_throughput_bps {
                    session.penalize(cur, until);
                }
            }
        }
    }
    session.last = now_secs;
    let (mut order, _) = scores.rank_steady(&region.id, Some(&stream.anchor_id), &ids);
    order.sort_by_key(|p| session.is_penalized(p));
    // A pathway where a plain share of sessions fail (a dead edge: errors, not the stalls of an
    // overloaded one) has no crowd to protect: its players move at once.
    let failing = |p: &str| {
        scores
            .error_rate(&region.id, p)
            .is_some_and(|e| e >= st.failing_error_rate)
    };
    if let Some(cur) = current
        && !session.is_penalized(cur)
        && let Some(pos) = order.iter().position(|p| *p == cur)
        && pos > 0
        && (!failing(cur) || failing(order[0]))
    {
        let best = scores.cost(&region.id, order[0]);
        let mine = scores.cost(&region.id, cur);
        // A player doing well on a worse pathway moves with the policy's chance per reload:
        // moving a whole crowd at once would overload the best before its scores could show
        // it. A player struggling there was penalized above and moves at once.
        if let (Some(best), Some(mine)) = (best, mine)
            && (mine <= best * (1.0 + catalog.policy.scoring.hysteresis_margin)
                || rng.random::<f64>() >= st.move_share)
        {
            let p = order.remove(pos);
            order.insert(0, p);
        }
    }
    session.told = order.first().map(|p| p.to_string());
    // Fresh URLs before the player's expire: the next generation of pathways.
    let refresh = i64::try_from(st.token_refresh_seconds).unwrap_or(0);
    let refreshed = refresh > 0
        && session.expires_at > 0
        && now_secs.saturating_add(refresh) >= session.expires_at;
    if refreshed {
        session.generation = session.generation.saturating_add(1);
        session.expires_at = rounded_expiry(now_secs, catalog.policy.delivery.url_ttl_seconds);
        // Some players reach the clones through another pathway (see `clone_priority`).
        session.told = None;
    }
    SteeringAnswer {
        priority: order.into_iter().map(str::to_string).collect(),
        session,
        evidence,
        refreshed,
    }
}

/// The `PATHWAY-PRIORITY` of an answer in a generation of clones: each provider by its clone
/// (or its pathway of before, when it could not be signed afresh), then the original pathways
/// in the same order, for a player that cannot use the clones.
///
/// Players differ in when they take up clones. hls.js creates them on receipt and moves to the
/// first at once. Video.js (VHS 3.17) picks only among pathways it already has, and creates
/// clones only when it changes pathway: on the answer that starts a generation (`starts`), the
/// original pathways are therefore rotated so that the one the player is on (`current`) is not
/// the first it knows, it changes pathway, creates the clones, and takes its clone at the next
/// reload.
pub fn clone_priority(
    priority: &[String],
    clones: &[PathwayClone],
    current: Option<&str>,
    starts: bool,
) -> Vec<String> {
    let mut out: Vec<String> = priority
        .iter()
        .map(|p| {
            clones
                .iter()
                .find(|c| &c.base_id == p)
                .map_or_else(|| p.clone(), |c| c.id.clone())
        })
        .collect();
    let mut originals: Vec<String> = priority
        .iter()
        .filter(|p| !out.contains(p))
        .cloned()
        .collect();
    if starts
        && originals.len() > 1
        && let Some(cur) = current.map(pathway_provider)
        && originals.first().is_some_and(|p| p == cur)
    {
        originals.rotate_left(1);
    }
    out.extend(originals);
    out
}

/// One `PATHWAY-CLONES` entry: the pathway `id` is `base_id`'s variants with these query
/// parameters set (a fresh signature), as the HLS Content Steering specification's
/// `URI-REPLACEMENT` `PARAMS` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathwayClone {
    #[serde(rename = "BASE-ID")]
    pub base_id: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "URI-REPLACEMENT")]
    pub uri_replacement: UriReplacement,
}

/// What a clone changes in its base's URIs: the host (the same as its base's: hls.js, Shaka
/// and Video.js all set it, and Video.js sets it whether given or not) and the query
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UriReplacement {
    #[serde(rename = "HOST")]
    pub host: String,
    #[serde(rename = "PARAMS")]
    pub params: std::collections::BTreeMap<String, String>,
}

/// The clones that carry `providers` into generation `generation` of signed URLs, expiring at
/// `expires_at`: each provider's original pathway (generation 0, which every player has from
/// its multivariant playlist) with the query parameters of a freshly signed play URL. A
/// provider whose URL cannot be signed is left out (its old pathway stays as it is).
pub fn pathway_clones(
    catalog: &Catalog,
    signer: &Signer,
    region: &Region,
    stream: &Stream,
    providers: &[String],
    generation: u32,
    expires_at: i64,
) -> Vec<PathwayClone> {
    if generation == 0 {
        return Vec::new();
    }
    providers
        .iter()
        .filter_map(|id| {
            let p = catalog.registry.get(id)?;
            let url = signer.sign(p, &stream.id, &region.id, Some(Protocol::Hls), expires_at)?;
            let url = url::Url::parse(&url).ok()?;
            let params = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            Some(PathwayClone {
                base_id: id.clone(),
                id: pathway_id(id, generation),
                uri_replacement: UriReplacement {
                    host: url.host_str()?.to_string(),
                    params,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_garbage_is_ignored() {
        let s = SteeringSession {
            region: "tw".into(),
            penalized: vec![("tencent".into(), 1_800_000_000)],
            ..SteeringSession::start("tw", "alibaba", 1_799_999_000, 1_800_003_600)
        };
        assert_eq!(
            s.encode(),
            "1~tw~alibaba~alibaba~1799999000~1799999000~0~1800003600~tencent.1800000000"
        );
        assert_eq!(SteeringSession::decode(&s.encode()), Some(s));
        let fresh = SteeringSession {
            told: None,
            ..SteeringSession::default()
        };
        assert_eq!(SteeringSession::decode(&fresh.encode()), Some(fresh));
        let too_many = format!("1~tw~~~0~0~0~0{}", "~a.1".repeat(MAX_PENALIZED + 1));
        for bad in [
            "",
            "!!!",
            "e30",
            "2~tw~~~0~0~0~0",
            "1~TW~~~0~0~0~0",
            "1~tw~~~0~0~0",
            "1~tw~~~x~0~0~0",
            "1~tw~a~b~0~0~0~0~c",
            "1~tw~a~b~0~0~0~0~.5",
            "1~tw~a%20b~~0~0~0~0",
            &too_many,
            &"A".repeat(2000),
        ] {
            assert_eq!(SteeringSession::decode(bad), None, "{bad}");
        }
    }

    /// The shipped policy over every vendor, and scores from Taiwan's viewers: Tencent
    /// stalls, Alibaba plays well.
    fn tw_with_tencent_stalling() -> (Catalog, Arc<Snapshot>, Stream) {
        use crate::signals::Signal;
        let catalog = crate::scoring::tests::catalog();
        let mut engine = Engine::new();
        let now_ms = 1_800_000_000_000;
        for i in 0..400 {
            let provider = if i % 2 == 0 { "tencent" } else { "alibaba" };
            let report = Signal::Delivery {
                provider: provider.into(),
                region: "tw".into(),
                protocol: Protocol::Hls,
                anchor_id: None,
                played_ms: 30_000,
                rebuffer_ms: if provider == "tencent" { 3_000 } else { 0 },
                rebuffer_count: u32::from(provider == "tencent"),
                startup_ms: Some(900),
                error: false,
                session: None,
            };
            engine.apply(&report, now_ms, &catalog.policy.scoring);
        }
        engine.refresh(now_ms, &catalog);
        let scores = engine.refresh(now_ms + 10_000, &catalog);
        let stream = Stream {
            id: "s1".into(),
            anchor_id: "a1".into(),
            region: "tw".into(),
            providers: vec!["tencent".into(), "alibaba".into()],
            state: crate::streams::StreamState::Live,
            reason: String::new(),
            started_ms: 0,
            ended_ms: None,
            updated_ms: 0,
        };
        (catalog, scores, stream)
    }

    #[test]
    fn steering_moves_a_struggling_player_at_once_and_a_crowd_gradually() {
        use rand::SeedableRng;
        let (catalog, scores, stream) = tw_with_tencent_stalling();
        let tw = catalog.policy.region("tw").unwrap();
        let now = 1_800_000_010;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut reload = |current: &str, throughput: u64, session: SteeringSession| {
            steer(
                &catalog,
                &scores,
                tw,
                &stream,
                Protocol::Hls,
                Some(current),
                Some(throughput),
                session,
                now,
                &mut rng,
            )
        };
        // On the best pathway: stays.
        for _ in 0..100 {
            let a = reload("alibaba", 6_000_000, SteeringSession::default());
            assert_eq!(a.priority, ["alibaba", "tencent"]);
        }
        // Doing well on the worse pathway: moved in about `move_share` of the reloads.
        let share = catalog.policy.steering.move_share;
        let moved = (0..4000)
            .filter(|_| {
                reload("tencent", 6_000_000, SteeringSession::default()).priority[0] == "alibaba"
            })
            .count() as f64
            / 4000.0;
        assert!(
            (share * 0.7..share * 1.3).contains(&moved),
            "moved {moved}, move_share {share}"
        );
        // Struggling there: moved at once, and kept off it on the next reloads.
        let min = catalog.policy.steering.min_throughput_bps;
        assert!(min > 0, "the shipped policy steers struggling players");
        // (On it since long enough for its estimate to be Tencent's own.)
        let settled = now - catalog.policy.steering.settle_seconds as i64;
        let a = reload(
            "tencent",
            min - 1,
            SteeringSession::start("tw", "tencent", settled, 0),
        );
        assert_eq!(a.priority, ["alibaba", "tencent"]);
        assert_eq!(a.session.penalized.len(), 1);
        assert_eq!(a.session.penalized[0].0, "tencent");
        let again = reload("alibaba", 6_000_000, a.session);
        assert_eq!(again.priority, ["alibaba", "tencent"]);
        assert_eq!(again.session.penalized.len(), 1);
    }

    /// Scores for Taiwan with Tencent and Alibaba alike (neither has reports), and a player
    /// reloading steering every second.
    struct Player {
        catalog: Catalog,
        scores: Arc<Snapshot>,
        stream: Stream,
        session: SteeringSession,
        rng: rand::rngs::SmallRng,
    }

    impl Player {
        /// Starts as `master.m3u8` starts it: on `first` at `now`.
        fn start(first: &str, now: i64) -> Player {
            use rand::SeedableRng;
            let (catalog, _, stream) = tw_with_tencent_stalling();
            let mut engine = Engine::new();
            let scores = engine.refresh(now * 1000, &catalog);
            Player {
                catalog,
                scores,
                stream,
                session: SteeringSession::start("tw", first, now, now + 3600),
                rng: rand::rngs::SmallRng::seed_from_u64(7),
            }
        }

        /// The same player with another session.
        fn clone_at(&self, session: SteeringSession) -> Player {
            use rand::SeedableRng;
            Player {
                catalog: crate::scoring::tests::catalog(),
                scores: self.scores.clone(),
                stream: self.stream.clone(),
                session,
                rng: rand::rngs::SmallRng::seed_from_u64(8),
            }
        }

        fn reload(&mut self, pathway: &str, throughput: u64, now: i64) -> SteeringAnswer {
            let tw = self.catalog.policy.region("tw").unwrap();
            let a = steer(
                &self.catalog,
                &self.scores,
                tw,
                &self.stream,
                Protocol::Hls,
                Some(pathway),
                Some(throughput),
                self.session.clone(),
                now,
                &mut self.rng,
            );
            self.session = a.session.clone();
            a
        }
    }

    fn blamed(a: &SteeringAnswer) -> Vec<(String, u64)> {
        a.evidence
            .iter()
            .filter_map(|e| match e {
                crate::signals::Signal::Reload {
                    provider,
                    throughput_bps,
                    ..
                } => Some((provider.clone(), *throughput_bps)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_stale_estimate_is_not_blamed_on_the_pathway_a_player_just_moved_to() {
        // hls.js on a throttled edge: its estimate is 1.3 Mbps, under the 2.5 Mbps needed.
        let t0 = 1_800_000_000;
        let mut p = Player::start("tencent", t0);
        let settle = p.catalog.policy.steering.settle_seconds as i64;
        // Just started: hls.js sends its default estimate before it has measured anything.
        let a = p.reload("tencent", 500_000, t0 + 1);
        assert_eq!(a.priority[0], "tencent");
        assert!(a.evidence.is_empty(), "{:?}", a.evidence);
        // Long enough on Tencent for the estimate to be Tencent's: moved off it.
        let a = p.reload("tencent", 1_312_495, t0 + settle);
        assert_eq!(a.priority, ["alibaba", "tencent"]);
        assert_eq!(blamed(&a), [("tencent".to_string(), 1_312_495)]);
        // One second later, on Alibaba, with the same stale estimate: it stays on Alibaba and
        // Alibaba is not blamed, then or at any reload while the estimate can still be old.
        for dt in 1..settle {
            let a = p.reload("alibaba", 1_312_495, t0 + settle + dt);
            assert_eq!(a.priority[0], "alibaba", "{dt} s after the move");
            assert!(a.evidence.is_empty(), "{dt} s: {:?}", a.evidence);
        }
        // Settled on Alibaba, playing well there: good evidence for Alibaba.
        let a = p.reload("alibaba", 45_000_000, t0 + 3 * settle);
        assert_eq!(a.priority[0], "alibaba");
        assert_eq!(blamed(&a), [("alibaba".to_string(), 45_000_000)]);
    }

    #[test]
    fn a_player_that_failed_over_counts_against_the_pathway_it_left() {
        let t0 = 1_800_000_000;
        let mut p = Player::start("tencent", t0);
        let a = p.reload("tencent", 6_000_000, t0 + 2);
        assert_eq!(a.priority[0], "tencent");
        // Tencent's edge died; the player's own error handling moved it to Alibaba.
        let a = p.reload("alibaba", 6_000_000, t0 + 4);
        assert_eq!(a.priority, ["alibaba", "tencent"]);
        assert!(
            a.evidence.iter().any(|e| matches!(e,
                crate::signals::Signal::Switch { provider, region, .. }
                    if provider == "tencent" && region == "tw")),
            "{:?}",
            a.evidence
        );
        // A player sent to a pathway by livesteer has not failed over.
        let a = p.reload("alibaba", 6_000_000, t0 + 6);
        assert!(a.evidence.is_empty(), "{:?}", a.evidence);
    }

    #[test]
    fn urls_about_to_expire_are_refreshed_through_pathway_clones() {
        let t0 = 1_800_000_000;
        let mut p = Player::start("tencent", t0);
        let refresh = p.catalog.policy.steering.token_refresh_seconds as i64;
        p.session.expires_at = t0 + refresh + 10;
        let a = p.reload("tencent", 6_000_000, t0 + 5);
        assert!(!a.refreshed);
        assert_eq!(a.session.generation, 0);
        let a = p.reload("tencent", 6_000_000, t0 + 10);
        assert!(a.refreshed);
        assert_eq!(a.session.generation, 1);
        assert!(a.session.expires_at > t0 + 10 + refresh, "{:?}", a.session);
        // A player that reaches its clone through another original pathway has not failed over.
        let mut via = p.clone_at(a.session.clone());
        let v = via.reload("alibaba", 6_000_000, t0 + 11);
        assert!(
            !v.evidence
                .iter()
                .any(|e| matches!(e, crate::signals::Signal::Switch { .. })),
            "{:?}",
            v.evidence
        );
        // The player is now on the clone; its pathway is still Tencent.
        let b = p.reload("tencent.1", 6_000_000, t0 + 12);
        assert!(!b.refreshed);
        assert_eq!(b.session.on.as_deref(), Some("tencent"));
        assert!(
            !b.evidence
                .iter()
                .any(|e| matches!(e, crate::signals::Signal::Switch { .. })),
            "moving to a clone is no failover: {:?}",
            b.evidence
        );
        assert_eq!(pathway_provider("tencent.1"), "tencent");
        assert_eq!(pathway_id("tencent", 0), "tencent");
    }

    #[test]
    fn clone_priority_lists_clones_then_originals() {
        let clone = |p: &str| PathwayClone {
            base_id: p.into(),
            id: pathway_id(p, 2),
            uri_replacement: UriReplacement {
                host: format!("{p}.example"),
                params: Default::default(),
            },
        };
        let order = ["a".to_string(), "b".to_string(), "c".to_string()];
        let clones = [clone("a"), clone("b")];
        // "c" could not be signed afresh: it keeps its pathway.
        assert_eq!(
            clone_priority(&order, &clones, Some("a.1"), false),
            ["a.2", "b.2", "c", "a", "b"]
        );
        // The answer that starts the generation: the player's own original is not first.
        assert_eq!(
            clone_priority(&order, &clones, Some("a.1"), true),
            ["a.2", "b.2", "c", "b", "a"]
        );
        assert_eq!(
            clone_priority(&order, &clones, Some("b"), true),
            ["a.2", "b.2", "c", "a", "b"]
        );
    }

    /// A provider that counts its signatures and tells each one apart.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn Provider>,
        signed: std::sync::atomic::AtomicUsize,
    }

    impl Provider for Counting {
        fn info(&self) -> &crate::providers::ProviderInfo {
            self.inner.info()
        }
        fn play_url(
            &self,
            stream: &str,
            region: &str,
            _protocol: Protocol,
            expires_at: i64,
        ) -> Result<String, crate::providers::ProviderError> {
            let n = self
                .signed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(format!(
                "https://edge.example/{stream}/{region}/{expires_at}?n={n}"
            ))
        }
    }

    #[test]
    fn signed_urls_are_kept_per_key_and_signer_until_cleared() {
        let catalog = crate::scoring::tests::catalog();
        let counting = Arc::new(Counting {
            inner: catalog.registry.get("tencent").unwrap().clone(),
            signed: Default::default(),
        });
        let p: Arc<dyn Provider> = counting.clone();
        let signed = || counting.signed.load(std::sync::atomic::Ordering::Relaxed);
        let signer = Signer::new(100);
        let a = signer.play_url(&p, "s1", "tw", Protocol::Hls, 600).unwrap();
        assert_eq!(
            signer.play_url(&p, "s1", "tw", Protocol::Hls, 600).unwrap(),
            a
        );
        assert_eq!(signed(), 1);
        // Any other part of the key is another URL.
        for (stream, region, protocol, expires_at) in [
            ("s2", "tw", Protocol::Hls, 600),
            ("s1", "hk", Protocol::Hls, 600),
            ("s1", "tw", Protocol::Flv, 600),
            ("s1", "tw", Protocol::Hls, 1200),
        ] {
            let other = signer
                .play_url(&p, stream, region, protocol, expires_at)
                .unwrap();
            assert_ne!(other, a);
        }
        assert_eq!(signed(), 5);
        // Another thread shares the cache.
        let shared = signer.clone();
        let p2 = p.clone();
        let b = std::thread::spawn(move || {
            shared
                .play_url(&p2, "s1", "tw", Protocol::Hls, 600)
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!((b, signed()), (a.clone(), 5));
        // Another signer does not.
        let fresh = Signer::new(100);
        assert_ne!(
            fresh.play_url(&p, "s1", "tw", Protocol::Hls, 600).unwrap(),
            a
        );
        assert_eq!(signed(), 6);
        // Cleared: signed afresh, on this thread and on another.
        signer.clear();
        let c = signer.play_url(&p, "s1", "tw", Protocol::Hls, 600).unwrap();
        assert_ne!(c, a);
        assert_eq!(signed(), 7);
        let shared = signer.clone();
        let d = std::thread::spawn(move || {
            shared.play_url(&p, "s1", "tw", Protocol::Hls, 600).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!((d, signed()), (c, 7));
    }

    #[test]
    fn expiry_rounds_up_within_a_step() {
        let e = rounded_expiry(1_000_000, 3600);
        assert!(
            (1_000_000 + 3600..1_000_000 + 3600 + 360).contains(&e),
            "{e}"
        );
        assert_eq!(rounded_expiry(1_000_001, 3600), e);
        assert_eq!(e % 360, 0);
        // Tiny and huge TTLs stay sane.
        assert!(rounded_expiry(0, 1) >= 1);
        assert!(rounded_expiry(i64::MAX - 5, u64::MAX) > 0);
    }
}
