//! What the hot path reads: the active policy, the provider registry and the country database,
//! loaded and cross-checked together so that one never refers to what the other lacks.
//! Swapped whole on reload; a bad set of files leaves the last good catalog in force.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::Keys;
use crate::geo::CountryDb;
use crate::policy::Policy;
use crate::providers::Registry;
use crate::providers::registry::ProviderFiles;
use crate::vocab::{Diagnostic, Diagnostics};
use crate::vocab::{SecretMode, Secrets};

/// The catalog in force, as every component holds it: replaced whole on reload, read without
/// locks.
pub type SharedCatalog = Arc<arc_swap::ArcSwap<Catalog>>;

/// Reloads the provider and policy files and everything that depends on them. `Ok(None)` when
/// nothing changed since the last load (unless `force`); a bad set is refused whole and the
/// catalog in force stays. The composition root implements it; jobs and the replica follower
/// call it.
pub trait Reload: Send + Sync {
    fn reload(&self, force: bool) -> Result<Option<String>, Diagnostics>;
}

/// Policy, providers and geo data, valid together.
#[derive(Debug)]
pub struct Catalog {
    pub policy: Arc<Policy>,
    pub registry: Registry,
    pub mmdb: Option<CountryDb>,
    /// The secrets requests are checked with (none when secrets are skipped).
    pub keys: Keys,
}

impl Catalog {
    /// A catalog of `policy` over `registry`, without a country database or secrets. The simulator
    /// assembles its world's catalog with it; [`Catalog::load`] adds the database the policy
    /// names.
    pub fn new(policy: Policy, registry: Registry) -> Catalog {
        Catalog {
            policy: Arc::new(policy),
            registry,
            mmdb: None,
            keys: Keys::default(),
        }
    }

    /// Loads `providers_dir/*.yaml` and `policy_file`, resolving secrets as `mode` says.
    pub fn load(
        providers_dir: &Path,
        policy_file: &Path,
        secrets: &dyn Secrets,
        mode: SecretMode,
    ) -> Result<Catalog, Diagnostics> {
        let files = ProviderFiles::read_dir(providers_dir)?;
        // A broken provider file and a broken policy are reported together.
        let policy = match Policy::load(policy_file, &files.ids()) {
            Ok(p) => p,
            Err(mut e) => {
                e.0.extend(files.errors().iter().cloned());
                return Err(e);
            }
        };
        let region_ids: BTreeSet<String> = policy.regions.iter().map(|r| r.id.clone()).collect();
        let registry = files.build(&region_ids, secrets, mode)?;
        if mode == SecretMode::Require {
            let enabled_anywhere = policy
                .referenced_providers()
                .iter()
                .any(|id| registry.get(id).is_some());
            if !enabled_anywhere {
                return Err(Diagnostic::file(
                    policy_file,
                    "no region prefers an enabled provider: nothing could be pushed or played",
                )
                .into());
            }
        }
        let mmdb = match &policy.geo.mmdb_path {
            Some(p) => Some(CountryDb::open(p).map_err(|m| Diagnostic::file(policy_file, m))?),
            None => None,
        };
        // Resolved once, here: no request reads the environment.
        let keys = match mode {
            SecretMode::Require => Keys::resolve(&policy, secrets).map_err(|missing| {
                Diagnostics(
                    missing
                        .into_iter()
                        .map(|m| Diagnostic::file(policy_file, m))
                        .collect(),
                )
            })?,
            SecretMode::Skip => Keys::default(),
        };
        Ok(Catalog {
            mmdb,
            keys,
            ..Catalog::new(policy, registry)
        })
    }
}

/// Every policy file in a directory (what `livesteer check` validates).
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::file(dir, format!("cannot read policy directory: {e}")))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A content hash of the provider files and the policy file: it changes when any of them does.
pub fn fingerprint(providers_dir: &Path, policy_file: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut files: Vec<PathBuf> = std::fs::read_dir(providers_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.push(policy_file.to_path_buf());
    let mut h = Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        match std::fs::read(&f) {
            Ok(bytes) => h.update(&bytes),
            Err(e) => h.update(e.to_string().as_bytes()),
        }
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn shipped_policies_load_against_shipped_providers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = ProviderFiles::read_dir(&root.join("providers")).unwrap();
        for entry in std::fs::read_dir(root.join("policies")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
                let p = Policy::load(&path, &files.ids()).unwrap_or_else(|e| panic!("{e}"));
                assert!(p.region(&p.default_region).is_some());
            }
        }
    }
}
