//! The in-process play decision: rank the providers carrying a stream for the viewer's region
//! and sign a URL for each. `cargo bench --bench play_decision`.
//!
//! - `play/warm`: the steady state, URLs already signed for this expiry step (cache hits).
//! - `play/cold`: every call signs afresh (a new stream key each iteration), all four kinds
//!   that carry an origin-pushed stream in `na`: CloudFront (RSA-2048), Akamai, SRS, nginx.
//! - `sign/<provider>`: one signature per adapter, no cache.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use livesteer::catalog::Catalog;
use livesteer::providers::Protocol;
use livesteer::providers::registry::SecretMode;
use livesteer::steering::{Signer, play_candidates, push_plan};
use livesteer::streams::{Stream, StreamState};

fn catalog() -> Catalog {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let secrets: HashMap<String, String> = [
        ("TENCENT_CSS_PUSH_KEY", "e12c46f2612d5106e2034781ab261ca3"),
        ("TENCENT_CSS_PLAY_KEY", "0d9a3d2f6e3b4c1aa5f1b2c3d4e5f607"),
        ("ALIBABA_LIVE_PUSH_KEY", "aliyuncdnexp1234"),
        ("ALIBABA_LIVE_PLAY_KEY", "aliyunplaykey5678"),
        ("AKAMAI_EDGEAUTH_KEY", "7a5c2be9d1f4e8b0c3a6d9e2f5b8c1a4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Catalog::load(
        &root.join("tests/data/providers-all"),
        &root.join("policies/default.yaml"),
        &secrets,
        SecretMode::Require,
    )
    .expect("bench catalog loads")
}

fn stream(id: &str, providers: &[&str]) -> Stream {
    Stream {
        id: id.to_string(),
        anchor_id: "anchor".into(),
        region: "na".into(),
        providers: providers.iter().map(|s| s.to_string()).collect(),
        state: StreamState::Live,
        reason: String::new(),
        started_ms: 0,
        ended_ms: None,
        updated_ms: 0,
    }
}

fn bench(c: &mut Criterion) {
    let cat = catalog();
    let na = cat.policy.region("na").unwrap().clone();
    let tw = cat.policy.region("tw").unwrap().clone();
    let now = 1_795_000_000;
    let origin_stream = stream("s0123456789abcdef01234567", &["local-srs", "local-nginx"]);
    let vendor_stream = stream("s0123456789abcdef01234568", &["tencent", "alibaba"]);

    let signer = Signer::default();
    let warm = play_candidates(&cat, &signer, &na, &origin_stream, Protocol::Hls, now).unwrap();
    assert_eq!(warm.len(), 4);
    c.bench_function("play/warm/na-hls-4-candidates", |b| {
        b.iter(|| {
            play_candidates(
                &cat,
                &signer,
                black_box(&na),
                black_box(&origin_stream),
                Protocol::Hls,
                now,
            )
        })
    });
    c.bench_function("play/warm/tw-flv-2-candidates", |b| {
        b.iter(|| {
            play_candidates(
                &cat,
                &signer,
                black_box(&tw),
                black_box(&vendor_stream),
                Protocol::Flv,
                now,
            )
        })
    });

    let mut n: u64 = 0;
    c.bench_function("play/cold/na-hls-4-candidates", |b| {
        b.iter(|| {
            n += 1;
            let s = stream(&format!("cold{n:020}"), &["local-srs", "local-nginx"]);
            play_candidates(&cat, &signer, &na, &s, Protocol::Hls, now)
        })
    });
    c.bench_function("play/cold/tw-flv-2-candidates", |b| {
        b.iter(|| {
            n += 1;
            let s = stream(&format!("cold{n:020}"), &["tencent", "alibaba"]);
            play_candidates(&cat, &signer, &tw, &s, Protocol::Flv, now)
        })
    });

    for id in ["tencent", "alibaba", "cloudfront", "akamai", "local-srs"] {
        let p = cat.registry.get(id).unwrap().clone();
        let proto = if p.info().protocols.contains(&Protocol::Flv) {
            Protocol::Flv
        } else {
            Protocol::Hls
        };
        c.bench_function(&format!("sign/{id}"), |b| {
            b.iter(|| {
                p.play_url(
                    black_box("s0123456789abcdef01234567"),
                    "na",
                    proto,
                    now + 3600,
                )
            })
        });
    }

    c.bench_function("push/plan/tw-primary-and-backup", |b| {
        b.iter(|| {
            push_plan(
                &cat,
                &signer,
                black_box(&tw),
                "s0123456789abcdef01234567",
                now,
            )
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
