//! Adapters for unit tests: every kind in `tests/data/providers-all`, with made-up secrets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::Provider;
use super::registry::{ProviderFiles, Registry};
use crate::vocab::SecretMode;

/// The made-up secrets of `tests/data/providers-all`'s vendor providers.
pub const SECRETS: &[(&str, &str)] = &[
    ("TENCENT_CSS_PUSH_KEY", "e12c46f2612d5106e2034781ab261ca3"),
    ("TENCENT_CSS_PLAY_KEY", "0d9a3d2f6e3b4c1aa5f1b2c3d4e5f607"),
    ("ALIBABA_LIVE_PUSH_KEY", "aliyuncdnexp1234"),
    ("ALIBABA_LIVE_PLAY_KEY", "aliyunplaykey5678"),
    ("AKAMAI_EDGEAUTH_KEY", "7a5c2be9d1f4e8b0c3a6d9e2f5b8c1a4"),
];

/// Every adapter of `tests/data/providers-all`.
pub fn registry() -> Registry {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = ProviderFiles::read_dir(&root.join("tests/data/providers-all")).unwrap();
    let regions = files.named_regions();
    let secrets: HashMap<String, String> = SECRETS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    files
        .build(&regions, &secrets, SecretMode::Require)
        .unwrap()
}

/// One adapter of [`registry`].
pub fn provider(id: &str) -> Arc<dyn Provider> {
    registry().get(id).unwrap().clone()
}
