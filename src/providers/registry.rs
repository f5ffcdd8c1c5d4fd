//! Builds the adapters from `providers/*.yaml` and the secrets those files name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::spec::{ProviderFile, SigningSpec};
use super::{Provider, ProviderInfo, ProviderKind};
use crate::vocab::diag::{self, Diagnostic, Diagnostics};
use crate::vocab::{SecretMode, Secrets};

/// What an adapter's `build` gets: the file it came from, secrets, and where to put problems.
pub struct BuildCtx<'a> {
    pub file: &'a Path,
    pub provider: &'a str,
    /// Line of the `kind:` key, where problems with the signing block as a whole are reported.
    pub kind_line: u64,
    secrets: &'a dyn Secrets,
    mode: SecretMode,
    errs: &'a mut Vec<Diagnostic>,
}

impl BuildCtx<'_> {
    /// Records a problem.
    pub fn error(&mut self, line: u64, message: impl Into<String>) {
        self.errs.push(Diagnostic::at(self.file, line, message));
    }

    /// A signing key the adapter cannot do without.
    pub fn required<'s>(
        &mut self,
        value: &'s Option<Spanned<String>>,
        key: &str,
        kind: ProviderKind,
    ) -> Option<&'s Spanned<String>> {
        if value.is_none() {
            self.error(
                self.kind_line,
                format!("signing.{key} is required for kind {kind}"),
            );
        }
        value.as_ref()
    }

    /// Resolves the secret held by the variable a key names. `None` with an error recorded when
    /// it is unset (or with none recorded, when secrets are skipped).
    pub fn secret(&mut self, env_name: &Spanned<String>) -> Option<String> {
        if self.mode == SecretMode::Skip {
            return None;
        }
        let found = self.secrets.get(&env_name.value);
        if found.is_none() {
            let msg = format!(
                "provider {}: environment variable {} is not set",
                self.provider, env_name.value
            );
            self.errs
                .push(Diagnostic::spanned(self.file, env_name, msg));
        }
        found
    }

    /// The push and play keys of the vendors that sign each with its own key (Tencent,
    /// Alibaba).
    pub fn push_play_keys(
        &mut self,
        s: &SigningSpec,
        kind: ProviderKind,
    ) -> Option<(String, String)> {
        self.only(s, &["push_key_env", "play_key_env"], kind);
        let push = self.required(&s.push_key_env, "push_key_env", kind);
        let play = self.required(&s.play_key_env, "play_key_env", kind);
        let (push, play) = (push?, play?);
        // Look both up before returning, so that both missing variables are reported.
        let push_key = self.secret(push);
        let play_key = self.secret(play);
        Some((push_key?, play_key?))
    }

    /// Looks a variable up without recording anything when it is unset.
    pub fn try_secret(&self, env_name: &Spanned<String>) -> Option<String> {
        if self.mode == SecretMode::Skip {
            return None;
        }
        self.secrets.get(&env_name.value)
    }

    /// Whether secrets are being skipped (adapters then build nothing, quietly).
    pub fn skipping_secrets(&self) -> bool {
        self.mode == SecretMode::Skip
    }

    /// Rejects keys that mean nothing for this kind, so a misplaced key is not silently ignored.
    pub fn only(&mut self, signing: &SigningSpec, allowed: &[&str], kind: ProviderKind) {
        let present: [(&str, &Option<Spanned<String>>); 11] = [
            ("push_key_env", &signing.push_key_env),
            ("play_key_env", &signing.play_key_env),
            ("key_env", &signing.key_env),
            ("token_name", &signing.token_name),
            ("algorithm", &signing.algorithm),
            ("acl", &signing.acl),
            ("key_pair_id", &signing.key_pair_id),
            ("private_key_env", &signing.private_key_env),
            ("private_key_file", &signing.private_key_file),
            ("token_secret_env", &signing.token_secret_env),
            ("demo_secret", &signing.demo_secret),
        ];
        for (name, v) in present {
            if let Some(v) = v
                && !allowed.contains(&name)
            {
                self.errs.push(Diagnostic::spanned(
                    self.file,
                    v,
                    format!("signing.{name} does not apply to kind {kind}"),
                ));
            }
        }
    }
}

/// The provider files of a directory, parsed and checked one by one.
#[derive(Debug)]
pub struct ProviderFiles {
    pub dir: PathBuf,
    files: Vec<(PathBuf, ProviderFile, ProviderInfo)>,
    /// Problems found file by file; [`ProviderFiles::build`] reports them with its own.
    errors: Vec<Diagnostic>,
}

impl ProviderFiles {
    /// Reads every `*.yaml` / `*.yml` in `dir`. Fails only when the directory cannot be read;
    /// problems inside files are kept for [`ProviderFiles::build`], so that one run reports them
    /// all.
    pub fn read_dir(dir: &Path) -> Result<ProviderFiles, Diagnostics> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Diagnostic::file(dir, format!("cannot read provider directory: {e}")))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
            })
            .collect();
        paths.sort();
        let mut errs = Vec::new();
        let mut files = Vec::new();
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in paths {
            match diag::read_yaml::<ProviderFile>(&path) {
                Ok(f) => {
                    let info = f.validate(&path, &mut errs);
                    if let Some(first) = seen.get(&info.id) {
                        errs.push(Diagnostic::spanned(
                            &path,
                            &f.id,
                            format!(
                                "provider id {:?} is also used by {}",
                                info.id,
                                first.display()
                            ),
                        ));
                    }
                    seen.insert(info.id.clone(), path.clone());
                    files.push((path, f, info));
                }
                Err(d) => errs.push(d),
            }
        }
        if files.is_empty() && errs.is_empty() {
            errs.push(Diagnostic::file(dir, "no provider files (*.yaml) found"));
        }
        Ok(ProviderFiles {
            dir: dir.to_path_buf(),
            files,
            errors: errs,
        })
    }

    /// Problems found in the files themselves.
    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    /// Every provider id, enabled or not.
    pub fn ids(&self) -> BTreeSet<String> {
        self.files.iter().map(|(_, _, i)| i.id.clone()).collect()
    }

    /// Every region the files name (`regions:` and per-region endpoints), for tests that build
    /// adapters without a policy.
    #[cfg(test)]
    pub(crate) fn named_regions(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (_, file, _) in &self.files {
            out.extend(file.regions.iter().map(|r| r.value.clone()));
            out.extend(file.endpoints.keys().filter(|k| *k != "default").cloned());
        }
        out
    }

    /// Builds the enabled adapters after checking references to regions and other providers.
    pub fn build(
        &self,
        region_ids: &BTreeSet<String>,
        secrets: &dyn Secrets,
        mode: SecretMode,
    ) -> Result<Registry, Diagnostics> {
        let kinds: BTreeMap<String, ProviderKind> = self
            .files
            .iter()
            .map(|(_, _, i)| (i.id.clone(), i.kind))
            .collect();
        let enabled: BTreeSet<&str> = self
            .files
            .iter()
            .filter(|(_, f, _)| f.enabled)
            .map(|(_, _, i)| i.id.as_str())
            .collect();
        let mut errs = self.errors.clone();
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for (path, file, info) in &self.files {
            file.validate_refs(path, region_ids, &kinds, &mut errs);
            if let Some(o) = &file.origin
                && file.enabled
                && kinds.contains_key(&o.value)
                && !enabled.contains(o.value.as_str())
            {
                errs.push(Diagnostic::spanned(
                    path,
                    o,
                    format!(
                        "origin {:?} is disabled, so this provider would carry nothing",
                        o.value
                    ),
                ));
            }
            let mut ctx = BuildCtx {
                file: path,
                provider: &info.id,
                kind_line: file.kind.referenced.line(),
                secrets,
                // A disabled provider's signing block is still checked, but its secrets are not
                // looked up.
                mode: if file.enabled { mode } else { SecretMode::Skip },
                errs: &mut errs,
            };
            let built = build_adapter(info.clone(), &file.signing, &mut ctx);
            if file.enabled
                && let Some(p) = built
            {
                providers.push(p);
            }
        }
        if !errs.is_empty() {
            return Err(Diagnostics(errs));
        }
        Ok(Registry::new(providers, self.ids()))
    }
}

fn build_adapter(
    info: ProviderInfo,
    signing: &SigningSpec,
    ctx: &mut BuildCtx<'_>,
) -> Option<Arc<dyn Provider>> {
    match info.kind {
        ProviderKind::TencentCss => super::tencent::build(info, signing, ctx),
        ProviderKind::AlibabaLive => super::alibaba::build(info, signing, ctx),
        ProviderKind::Cloudfront => super::cloudfront::build(info, signing, ctx),
        ProviderKind::Akamai => super::akamai::build(info, signing, ctx),
        ProviderKind::NginxRtmp | ProviderKind::Srs => super::origin::build(info, signing, ctx),
    }
}

/// The enabled adapters, by id.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
    index: foldhash::HashMap<String, usize>,
    known: BTreeSet<String>,
}

impl Registry {
    pub fn new(providers: Vec<Arc<dyn Provider>>, known: BTreeSet<String>) -> Self {
        let index = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id().to_string(), i))
            .collect();
        Self {
            providers,
            index,
            known,
        }
    }

    /// An enabled provider.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.index.get(id).map(|&i| &self.providers[i])
    }

    /// Enabled providers in file-name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.providers.iter()
    }

    /// Ids of every provider file, enabled or not.
    pub fn known_ids(&self) -> &BTreeSet<String> {
        &self.known
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}
