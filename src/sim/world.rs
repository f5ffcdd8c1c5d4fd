//! The simulated world: the catalog of providers that sign nothing, the scenario's names
//! interned as indexes (`World`, `Ix`), the truth by provider and region (quality, incidents,
//! shared capacities, ingest incidents, uplinks), prices, the policy's orders and maximum
//! shares, and the anchors and their broadcasts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::policy::{Policy, raw};
use crate::providers::spec::{EndpointSpec, ProviderFile, ProviderInfo};
use crate::providers::{Provider, ProviderError, ProviderKind, Registry};
use crate::steering;
use crate::streams::{Stream, StreamState};
use crate::vocab::Protocol;
use crate::vocab::{Diagnostics, diag};

use super::scenario::{Quality, Scenario};

/// A provider of the simulated world: it signs nothing, its URLs only name it.
#[derive(Debug)]
struct SimProvider {
    info: ProviderInfo,
}

impl Provider for SimProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn push_url(
        &self,
        stream: &str,
        _region: &str,
        _expires_at: i64,
    ) -> Result<String, ProviderError> {
        Ok(format!("rtmp://{}.sim/live/{stream}", self.info.id))
    }

    fn play_url(
        &self,
        stream: &str,
        _region: &str,
        protocol: Protocol,
        _expires_at: i64,
    ) -> Result<String, ProviderError> {
        Ok(format!("{protocol}://{}.sim/live/{stream}", self.info.id))
    }
}

/// The policy and the world's providers, as the server would load them; each provider's
/// price is the scenario's `prices`, else the `cost_per_gb` of `<providers_dir>/<id>.yaml`
/// when that file exists, else 0.
pub fn catalog(
    policy_file: &Path,
    scenario_file: &Path,
    providers_dir: Option<&Path>,
) -> Result<(Catalog, Scenario), Diagnostics> {
    // The policy may name providers the world lacks; they are simply absent.
    let raw_policy: raw::PolicyFile = diag::read_yaml(policy_file)?;
    let named: BTreeSet<String> = raw_policy
        .regions
        .iter()
        .flat_map(|r| r.providers.iter().map(|p| p.value.clone()))
        .collect();
    let policy = Policy::load(policy_file, &named)?;
    let regions: BTreeSet<String> = policy.regions.iter().map(|r| r.id.clone()).collect();
    let scenario = Scenario::load(scenario_file, &regions, &named)?;
    let endpoints = EndpointSpec {
        push: Some("rtmp://sim/live".into()),
        rtmp: Some("rtmp://sim/live".into()),
        flv: Some("http://sim/live".into()),
        hls: Some("http://sim/live".into()),
        dash: Some("http://sim/live".into()),
    };
    let mut prices = BTreeMap::new();
    for id in scenario.providers.keys() {
        let price = match scenario.prices.get(id) {
            Some(p) => Some(p.value),
            None => match providers_dir.map(|d| d.join(format!("{id}.yaml"))) {
                Some(file) if file.is_file() => {
                    let spec: ProviderFile = diag::read_yaml(&file)?;
                    spec.cost_per_gb
                }
                _ => None,
            },
        };
        prices.insert(id.clone(), price);
    }
    let providers: Vec<Arc<dyn Provider>> = scenario
        .providers
        .keys()
        .map(|id| {
            Arc::new(SimProvider {
                info: ProviderInfo {
                    id: id.clone(),
                    name: id.clone(),
                    kind: ProviderKind::Srs,
                    regions: Vec::new(),
                    protocols: Protocol::ALL.to_vec(),
                    origin: None,
                    endpoints: [("default".to_string(), endpoints.clone())].into(),
                    cost_per_gb: prices.get(id).copied().flatten(),
                    capacity_gbps: None,
                    file: scenario_file.to_path_buf(),
                },
            }) as Arc<dyn Provider>
        })
        .collect();
    let catalog = Catalog::new(policy, Registry::new(providers, named));
    Ok((catalog, scenario))
}

/// A provider or a region of the world, by its position in `World::providers` or
/// `World::regions`.
pub(super) type Ix = usize;

/// No provider (a session not yet on a pathway).
pub(super) const NONE: Ix = usize::MAX;

/// The world's names as indices and its truth in tables by them, so that the hot loops index
/// and compare numbers rather than hash and copy names.
pub(super) struct World<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) providers: Vec<String>,
    pub(super) regions: Vec<String>,
    /// `[p * regions + r]`: the quality before incidents.
    base: Vec<Quality>,
    /// `[p * regions + r]`: the scenario's occurrences on that provider in that region.
    occurrences: Vec<Vec<usize>>,
    /// Per provider: capacities shared by several regions (region indices, sessions).
    pub(super) pools: Vec<Vec<(Vec<Ix>, f64)>>,
    /// `[p * regions + r]`: ingest incidents on `p` for the anchors of `r`.
    ingest: Vec<Vec<usize>>,
    /// Per provider: price per GB delivered.
    pub(super) price: Vec<f64>,
    /// Per region: the policy's order, then every other provider.
    pub(super) static_orders: Vec<Vec<Ix>>,
    /// Per region: the share of its viewers watching anchors of their own region.
    pub(super) locality: Vec<Option<f64>>,
    /// Anchors per region, and in all, arrivals included.
    pub(super) anchors_in: Vec<f64>,
    pub(super) anchors: f64,
    /// Per region, when the policy caps shares there: each provider's maximum share.
    pub(super) max_share: Vec<Option<Vec<Option<f64>>>>,
}

impl<'a> World<'a> {
    pub(super) fn new(catalog: &Catalog, scenario: &'a Scenario) -> Self {
        let providers: Vec<String> = scenario.providers.keys().cloned().collect();
        let regions: Vec<String> = scenario.regions.keys().cloned().collect();
        let nr = regions.len();
        let ix = |names: &[String], n: &str| names.iter().position(|x| x == n);
        let mut base = Vec::new();
        let mut occurrences = vec![Vec::new(); providers.len() * nr];
        let mut ingest = vec![Vec::new(); providers.len() * nr];
        for p in &providers {
            for r in &regions {
                base.push(scenario.base_quality(p, r));
            }
        }
        for (k, o) in scenario.occurrences.iter().enumerate() {
            if let (Some(p), Some(r)) = (ix(&providers, &o.provider), ix(&regions, &o.region)) {
                occurrences[p * nr + r].push(k);
            }
        }
        for (k, i) in scenario.ingest_incidents.iter().enumerate() {
            let i = &i.value;
            if let (Some(p), Some(r)) = (ix(&providers, &i.provider), ix(&regions, &i.region)) {
                ingest[p * nr + r].push(k);
            }
        }
        let mut pools = vec![Vec::new(); providers.len()];
        for pool in &scenario.shared_capacity {
            let v = &pool.value;
            if let Some(p) = ix(&providers, &v.provider) {
                let rs = v.regions.iter().filter_map(|r| ix(&regions, r)).collect();
                pools[p].push((rs, v.sessions));
            }
        }
        let price = providers
            .iter()
            .map(|p| {
                catalog
                    .registry
                    .get(p)
                    .and_then(|p| p.info().cost_per_gb)
                    .unwrap_or(0.0)
            })
            .collect();
        let static_orders = regions
            .iter()
            .map(|r| {
                static_order(catalog, r)
                    .iter()
                    .filter_map(|p| ix(&providers, p))
                    .collect()
            })
            .collect();
        let locality = scenario
            .regions
            .values()
            .map(|r| r.value.locality.as_ref().map(|l| l.value))
            .collect();
        let mut anchors_in = vec![0.0; nr];
        for (r, n) in &scenario.anchors.per_region {
            if let Some(r) = ix(&regions, r) {
                anchors_in[r] += f64::from(*n);
            }
        }
        for a in &scenario.anchors.arrivals {
            if let Some(r) = ix(&regions, &a.value.region) {
                anchors_in[r] += f64::from(a.value.count);
            }
        }
        let max_share = regions
            .iter()
            .map(|r| {
                let control = catalog.policy.scoring.regions.get(r)?;
                (!control.max_share.is_empty()).then(|| {
                    providers
                        .iter()
                        .map(|p| control.max_share.get(p).copied())
                        .collect()
                })
            })
            .collect();
        World {
            scenario,
            max_share,
            anchors: anchors_in.iter().sum(),
            anchors_in,
            providers,
            regions,
            base,
            occurrences,
            pools,
            ingest,
            price,
            static_orders,
            locality,
        }
    }

    pub(super) fn provider(&self, name: &str) -> Option<Ix> {
        self.providers.iter().position(|p| p == name)
    }

    /// The truth of provider `p` in region `r` at `t`, before load.
    pub(super) fn quality(&self, p: Ix, r: Ix, t: f64) -> Quality {
        let k = p * self.regions.len() + r;
        let base = self.base[k];
        self.occurrences[k]
            .iter()
            .find_map(|&o| self.scenario.occurrences[o].at(base, t))
            .unwrap_or(base)
    }

    /// The first second from `from` to `until` at which `p`'s bad chance in `r` (stall plus
    /// error, before load) is at least twice the best other provider's.
    pub(super) fn twice_the_best(&self, p: Ix, r: Ix, from: f64, until: f64) -> Option<f64> {
        let bad = |x: Ix, t: f64| {
            let q = self.quality(x, r, t);
            q.stall + q.error
        };
        let mut t = from;
        while t < until {
            let best = (0..self.providers.len())
                .filter(|&x| x != p)
                .map(|x| bad(x, t))
                .fold(f64::INFINITY, f64::min);
            if bad(p, t) >= 2.0 * best {
                return Some(t);
            }
            t += 1.0;
        }
        None
    }

    /// Extra stall chance of `anchor`'s stream on `p` from its upload at `t`: its poor uplink
    /// and any ingest incident under way.
    pub(super) fn uplink(&self, anchor: &Anchor, p: Ix, t: f64) -> f64 {
        let mut u = anchor.uplink[p];
        for &k in &self.ingest[p * self.regions.len() + anchor.region] {
            let i = &self.scenario.ingest_incidents[k].value;
            if t >= i.start_seconds && t < i.end_seconds {
                u = 1.0 - (1.0 - u) * (1.0 - i.stall);
            }
        }
        u
    }
}

/// The policy's order for `region`, then every other provider of the world: the server's
/// order (`steering::ordered`).
fn static_order(catalog: &Catalog, region: &str) -> Vec<String> {
    let r = catalog
        .policy
        .region(region)
        .expect("scenario regions are the policy's");
    steering::ordered(catalog, r, |_| true)
        .into_iter()
        .map(|p| p.id().to_string())
        .collect()
}

pub(super) struct Anchor {
    pub(super) id: String,
    pub(super) region: Ix,
    /// Per provider: extra stall chance from this anchor's upload.
    pub(super) uplink: Vec<f64>,
    /// When the anchor is there: from, until (seconds).
    pub(super) from_s: f64,
    pub(super) until_s: f64,
}

/// Anchors of the world, with their uplinks: the regions' own, then those arriving later.
pub(super) fn anchors(world: &World) -> Vec<Anchor> {
    let scenario = world.scenario;
    let np = world.providers.len();
    let duration = scenario.duration_seconds.value as f64;
    let region = |r: &str| world.regions.iter().position(|x| x == r);
    let mut out = Vec::new();
    for (r, n) in &scenario.anchors.per_region {
        let Some(ri) = region(r) else { continue };
        for i in 0..*n {
            out.push(Anchor {
                id: format!("{r}-anchor-{i}"),
                region: ri,
                uplink: vec![0.0; np],
                from_s: 0.0,
                until_s: f64::INFINITY,
            });
        }
    }
    for poor in &scenario.anchors.poor_uplinks {
        let (Some(ri), Some(p)) = (region(&poor.region), world.provider(&poor.provider)) else {
            continue;
        };
        for a in out
            .iter_mut()
            .filter(|a| a.region == ri)
            .take(poor.count as usize)
        {
            a.uplink[p] = poor.stall;
        }
    }
    for (k, arrival) in scenario.anchors.arrivals.iter().enumerate() {
        let v = &arrival.value;
        let Some(ri) = region(&v.region) else {
            continue;
        };
        for i in 0..v.count {
            out.push(Anchor {
                id: format!("{}-new{k}-anchor-{i}", v.region),
                region: ri,
                uplink: vec![0.0; np],
                from_s: v.from_seconds,
                until_s: v.until_seconds.unwrap_or(duration + 1.0),
            });
        }
    }
    out
}

pub(super) struct Live {
    pub(super) stream: Arc<Stream>,
    /// The providers it is pushed to.
    pub(super) on: Vec<Ix>,
    /// Per viewer region: the providers carrying it, in the policy's order there (as
    /// `steering::carriers` answers the server), listed once per broadcast rather than per
    /// session.
    pub(super) carriers: Vec<Vec<Ix>>,
    pub(super) until_s: f64,
    /// When its app last asked where to push it (s).
    pub(super) asked_s: f64,
}

impl Live {
    /// A broadcast of `stream`, pushed to its `providers` at `asked_s`, on air until `until_s`.
    pub(super) fn new(
        catalog: &Catalog,
        world: &World,
        stream: Stream,
        asked_s: f64,
        until_s: f64,
    ) -> Live {
        let on = stream
            .providers
            .iter()
            .filter_map(|p| world.provider(p))
            .collect();
        let carriers = world
            .regions
            .iter()
            .map(|r| {
                let region = catalog.policy.region(r).expect("known region");
                steering::carriers(catalog, region, &stream, Protocol::Flv)
                    .iter()
                    .filter_map(|p| world.provider(p.id()))
                    .collect()
            })
            .collect();
        Live {
            stream: Arc::new(stream),
            on,
            carriers,
            until_s,
            asked_s,
        }
    }
}

pub(super) fn new_stream(id: &str, a: &Anchor, world: &World, providers: Vec<String>) -> Stream {
    Stream {
        id: id.to_string(),
        anchor_id: a.id.clone(),
        region: world.regions[a.region].clone(),
        providers,
        state: StreamState::Live,
        reason: String::new(),
        started_ms: 0,
        ended_ms: None,
        updated_ms: 0,
    }
}
