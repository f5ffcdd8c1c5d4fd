//! The in-process play decision: rank the providers carrying a stream for the viewer's region
//! and sign a URL for each. `cargo bench --bench play_decision`.
//!
//! The ranking comes from a scores snapshot warmed with three minutes of reports.
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
use livesteer::scoring::{Engine, Snapshot};
use livesteer::steering::{Signer, play_candidates, push_plan};
use livesteer::streams::{Stream, StreamState};
use livesteer::vocab::Protocol;
use livesteer::vocab::SecretMode;
use rand::SeedableRng;
use rand::rngs::SmallRng;

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

/// A snapshot with a few minutes of reports behind it, as in a running server.
fn warmed_scores(cat: &Catalog, now_ms: i64) -> (Engine, std::sync::Arc<Snapshot>) {
    let mut engine = Engine::new();
    let s = &cat.policy.scoring;
    for i in 0..3_000i64 {
        for (provider, region) in [
            ("cloudfront", "na"),
            ("akamai", "na"),
            ("local-srs", "na"),
            ("tencent", "tw"),
            ("alibaba", "tw"),
        ] {
            let signal = livesteer::signals::Signal::Delivery {
                provider: provider.into(),
                region: region.into(),
                protocol: Protocol::Hls,
                anchor_id: Some(format!("anchor{}", i % 50)),
                played_ms: 30_000,
                rebuffer_ms: if i % 17 == 0 { 900 } else { 0 },
                rebuffer_count: u32::from(i % 17 == 0),
                startup_ms: Some(800 + (i % 7) as u64 * 50),
                error: false,
                session: None,
            };
            engine.apply(&signal, now_ms - 180_000 + i * 60, s);
        }
    }
    let snap = engine.refresh(now_ms, cat);
    (engine, snap)
}

fn bench(c: &mut Criterion) {
    let cat = catalog();
    let na = cat.policy.region("na").unwrap().clone();
    let tw = cat.policy.region("tw").unwrap().clone();
    let now = 1_795_000_000;
    let (mut engine, scores) = warmed_scores(&cat, now * 1000);
    let mut rng = SmallRng::seed_from_u64(1);
    let origin_stream = stream("s0123456789abcdef01234567", &["local-srs", "local-nginx"]);
    let vendor_stream = stream("s0123456789abcdef01234568", &["tencent", "alibaba"]);

    let signer = Signer::default();
    let warm = play_candidates(
        &cat,
        &signer,
        &scores,
        &na,
        &origin_stream,
        Protocol::Hls,
        &[],
        now,
        &mut rng,
    )
    .unwrap();
    assert_eq!(warm.candidates.len(), 4);
    c.bench_function("play/warm/na-hls-4-candidates", |b| {
        b.iter(|| {
            play_candidates(
                &cat,
                &signer,
                &scores,
                black_box(&na),
                black_box(&origin_stream),
                Protocol::Hls,
                &[],
                now,
                &mut rng,
            )
        })
    });
    c.bench_function("play/warm/tw-flv-2-candidates", |b| {
        b.iter(|| {
            play_candidates(
                &cat,
                &signer,
                &scores,
                black_box(&tw),
                black_box(&vendor_stream),
                Protocol::Flv,
                &[],
                now,
                &mut rng,
            )
        })
    });

    let mut n: u64 = 0;
    c.bench_function("play/cold/na-hls-4-candidates", |b| {
        b.iter(|| {
            n += 1;
            let s = stream(&format!("cold{n:020}"), &["local-srs", "local-nginx"]);
            play_candidates(
                &cat,
                &signer,
                &scores,
                &na,
                &s,
                Protocol::Hls,
                &[],
                now,
                &mut rng,
            )
        })
    });
    c.bench_function("play/cold/tw-flv-2-candidates", |b| {
        b.iter(|| {
            n += 1;
            let s = stream(&format!("cold{n:020}"), &["tencent", "alibaba"]);
            play_candidates(
                &cat,
                &signer,
                &scores,
                &tw,
                &s,
                Protocol::Flv,
                &[],
                now,
                &mut rng,
            )
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
                &mut engine,
                black_box(&tw),
                "anchor7",
                "s0123456789abcdef01234567",
                now * 1000,
                &mut rng,
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
