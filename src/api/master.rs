//! `GET /v1/streams/{id}/master.m3u8`: the multivariant playlist that puts a stock player on
//! livesteer's Content Steering.
//!
//! It is the origin's own ladder (every variant and rendition group, with their attributes)
//! once per pathway, that is per provider carrying the stream in the viewer's play order, each
//! copy with `PATHWAY-ID` and that provider's signed, absolute URIs; and an
//! `#EXT-X-CONTENT-STEERING` tag whose absolute `SERVER-URI` starts the player's steering
//! session on the first pathway. An origin that answers a media playlist (no ladder) gives one
//! variant per pathway at the policy's `steering.bandwidth_bps`. The origin's playlist comes
//! from the per-stream cache (`manifests::OriginCache`): a cold stream's first viewers wait for
//! one bounded fetch, everyone else is answered from memory; an origin that cannot be had is a
//! JSON 502 naming it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::ApiError;
use super::openapi::Error;
use super::streams::{hold, live};
use super::{place, push_public_base};
use crate::codes::Code;
use crate::manifests::hls::{self, HlsPlaylist, Pathway};
use crate::manifests::{self, Limits, OriginTarget};
use crate::state::AppState;
use crate::steering::{self, SteeringSession};
use crate::vocab::Protocol;

/// The multivariant playlist query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MasterQuery {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// What a manifest route starts from: the live stream, the catalog it was ranked under, the
/// viewer's region and the ranked, signed candidates for one protocol.
pub(super) struct Ranked {
    pub stream: std::sync::Arc<crate::streams::Stream>,
    pub catalog: std::sync::Arc<crate::catalog::Catalog>,
    pub region: String,
    pub now: i64,
    pub candidates: Vec<steering::Candidate>,
}

impl Ranked {
    /// The stream (read through once if this replica has not heard of it), the viewer placed,
    /// and its play order for `protocol`: memory only.
    pub(super) async fn for_viewer(
        req: &HttpRequest,
        state: &web::Data<AppState>,
        id: &str,
        q: &MasterQuery,
        protocol: Protocol,
    ) -> Result<Ranked, ApiError> {
        hold(state, id).await;
        let stream = live(state, id)?;
        let catalog = state.catalog.load_full();
        let (region, _) = place(req, &catalog, q.region.as_deref(), q.client_ip.as_deref())?;
        let now = state.clock.now_secs();
        let decision = state
            .scorer
            .rank_play(
                &catalog,
                &state.signer,
                region,
                &stream,
                protocol,
                &[],
                now,
                &mut rand::rng(),
            )
            .map_err(|e| ApiError::new(Code::UnknownProtocol, e.to_string()))?;
        let region = region.id.clone();
        Ok(Ranked {
            stream,
            catalog,
            region,
            now,
            candidates: decision.candidates,
        })
    }

    /// [`Code::NoProvider`]: no carrier of the stream offers `protocol` here.
    pub(super) fn no_provider(&self, protocol: &str) -> ApiError {
        ApiError::new(
            Code::NoProvider,
            format!(
                "no provider carrying stream {:?} offers {protocol} in region {}",
                self.stream.id, self.region
            ),
        )
    }
}

/// `GET /v1/streams/{id}/master.m3u8`.
#[utoipa::path(
    get,
    path = "/v1/streams/{id}/master.m3u8",
    tag = "viewers",
    params(("id" = String, Path, description = "The stream id"), MasterQuery),
    responses(
        (status = 200, description = "The multivariant playlist, one copy of the ladder per provider", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 400, description = "Bad input (see the code)", body = Error),
        (status = 403, description = "`origin_not_allowed` (CORS)", body = Error),
        (status = 404, description = "`unknown_stream`, or `not_found` for a malformed path", body = Error),
        (status = 410, description = "`stream_ended`", body = Error),
        (status = 502, description = "`origin_unavailable`: the origin's playlist cannot be had", body = Error),
        (status = 503, description = "`no_provider`", body = Error),
    )
)]
pub async fn master(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<MasterQuery>,
) -> Result<HttpResponse, ApiError> {
    let ranked = Ranked::for_viewer(&req, &state, &id, &q, Protocol::Hls).await?;
    let Ranked {
        stream,
        catalog,
        region,
        now,
        candidates,
    } = &ranked;
    let no_provider = || ranked.no_provider("HLS");
    let Some(first) = candidates.first() else {
        return Err(no_provider());
    };
    // The stream's origin; failing that, the viewer's first pathway.
    let target = manifests::origin_target(catalog, &state.signer, stream, Protocol::Hls, *now)
        .unwrap_or_else(|| OriginTarget {
            provider: first.provider.clone(),
            url: first.url.clone(),
        });
    let origin = state
        .manifests
        .hls
        .get(&target, Limits::from_policy(&catalog.policy.delivery))
        .await
        .map_err(|e| ApiError::new(Code::OriginUnavailable, e.to_string()))?;
    let mut base = String::with_capacity(64);
    push_public_base(&mut base, &req, &state.config);
    let key = rendered::Key {
        catalog,
        origin: &origin,
        base: &base,
        stream: &stream.id,
        region,
        now: *now,
        candidates,
    };
    let body: web::Bytes = match origin.as_ref() {
        HlsPlaylist::Media => hls::single_variant(
            candidates,
            &steering_uri(&key, &first.provider, first.expires_at),
            catalog.policy.steering.bandwidth_bps,
        )
        .into(),
        HlsPlaylist::Ladder(ladder) => match rendered::get(&key) {
            Some(body) => body,
            None => {
                let (body, whole) =
                    ladder_playlist(&state.signer, &key, ladder).ok_or_else(no_provider)?;
                if whole {
                    rendered::put(&key, body.clone());
                }
                body
            }
        },
    };
    Ok(playlist(body))
}

/// The playlist of `k` from the origin's `ladder`: every reference signed on each pathway (a
/// pathway with one that cannot be is left out whole: its players would miss a rendition), the
/// ladder written once per pathway, and whether no pathway was left out. `None` when none is
/// left.
pub(crate) fn ladder_playlist(
    signer: &steering::Signer,
    k: &rendered::Key<'_>,
    ladder: &hls::Ladder,
) -> Option<(web::Bytes, bool)> {
    let references = ladder.references();
    let pathways: Vec<(&steering::Candidate, Pathway)> = k
        .candidates
        .iter()
        .filter_map(|c| {
            let p = k.catalog.registry.get(&c.provider)?;
            let uris = references
                .iter()
                .map(|r| {
                    signer.variant_url(
                        p,
                        k.stream,
                        k.region,
                        Protocol::Hls,
                        &c.url,
                        r,
                        c.expires_at,
                    )
                })
                .collect::<Option<Vec<_>>>()?;
            Some((
                c,
                Pathway {
                    id: c.provider.clone(),
                    uris,
                },
            ))
        })
        .collect();
    let (first, _) = pathways.first()?;
    let uri = steering_uri(k, &first.provider, first.expires_at);
    let whole = pathways.len() == k.candidates.len();
    let pathways: Vec<Pathway> = pathways.into_iter().map(|(_, p)| p).collect();
    Some((hls::replicate(ladder, &uri, &pathways).into(), whole))
}

/// The absolute `SERVER-URI` that starts a viewer's steering session on `first` now.
fn steering_uri(k: &rendered::Key<'_>, first: &str, expires_at: i64) -> String {
    let session = SteeringSession::start(k.region, first, k.now, expires_at);
    let mut uri = String::with_capacity(192);
    uri.push_str(k.base);
    uri.push_str("/v1/steering/hls/");
    uri.push_str(k.stream);
    uri.push_str("?session=");
    session.encode_into(&mut uri);
    uri
}

/// A `master.m3u8` answer: not to be cached (the steering session in it starts now).
fn playlist(body: web::Bytes) -> HttpResponse {
    super::no_store(
        body,
        actix_web::http::header::HeaderValue::from_static("application/vnd.apple.mpegurl"),
    )
}

/// The playlists this thread wrote lately, one per (stream, region, play order): a viewer's
/// playlist is a function of the catalog (its providers, keys and policy), the origin's fetched
/// ladder, the public base of its URIs, the stream, the region, the second it starts the
/// steering session in, and the play candidates in their order (each signed URL and expiry). A
/// request whose inputs are all the same as the kept playlist's copies its bytes instead of
/// signing the variant URLs and writing the ladder again. A reload (a new catalog), an origin
/// refetch (a new ladder), a new expiry step (new candidate URLs) or the next second each miss
/// and replace the entry.
pub(crate) mod rendered {
    use std::cell::RefCell;
    use std::hash::{BuildHasher as _, Hash, Hasher};
    use std::sync::{Arc, Weak};

    use actix_web::web::Bytes;

    use crate::catalog::Catalog;
    use crate::manifests::hls::HlsPlaylist;
    use crate::steering::Candidate;

    /// Most playlists a thread keeps; all are dropped when it is full.
    const PER_THREAD: usize = 1024;

    /// What a playlist is written from.
    #[derive(Clone, Copy)]
    pub(crate) struct Key<'a> {
        pub catalog: &'a Arc<Catalog>,
        pub origin: &'a Arc<HlsPlaylist>,
        pub base: &'a str,
        pub stream: &'a str,
        pub region: &'a str,
        pub now: i64,
        pub candidates: &'a [Candidate],
    }

    struct Entry {
        // Weak: a kept playlist does not keep an old catalog or ladder alive, and the pointer
        // it compares cannot be reused while it holds the allocation.
        catalog: Weak<Catalog>,
        origin: Weak<HlsPlaylist>,
        base: String,
        stream: String,
        region: String,
        now: i64,
        candidates: Vec<Candidate>,
        body: Bytes,
    }

    impl Entry {
        fn is(&self, k: &Key<'_>) -> bool {
            self.now == k.now
                && std::ptr::eq(self.catalog.as_ptr(), Arc::as_ptr(k.catalog))
                && std::ptr::eq(self.origin.as_ptr(), Arc::as_ptr(k.origin))
                && self.stream == k.stream
                && self.region == k.region
                && self.base == k.base
                && self.candidates == k.candidates
        }
    }

    thread_local! {
        static KEPT: RefCell<foldhash::HashMap<u64, Entry>> = RefCell::default();
    }

    /// One entry per (stream, region, play order): viewers drawn into different orders (an
    /// exploration draw, a challenger's canary share) do not evict each other's playlist.
    fn slot(k: &Key<'_>) -> u64 {
        let mut h = foldhash::fast::FixedState::default().build_hasher();
        k.stream.hash(&mut h);
        k.region.hash(&mut h);
        for c in k.candidates {
            c.provider.hash(&mut h);
        }
        h.finish()
    }

    /// The kept playlist written from exactly `k`, if any.
    pub(crate) fn get(k: &Key<'_>) -> Option<Bytes> {
        KEPT.with_borrow(|kept| {
            kept.get(&slot(k))
                .filter(|e| e.is(k))
                .map(|e| e.body.clone())
        })
    }

    /// Keeps `body`, written from `k`, in place of its (stream, region, order)'s last one.
    pub(crate) fn put(k: &Key<'_>, body: Bytes) {
        KEPT.with_borrow_mut(|kept| {
            let slot = slot(k);
            if kept.len() >= PER_THREAD && !kept.contains_key(&slot) {
                kept.clear();
            }
            kept.insert(
                slot,
                Entry {
                    catalog: Arc::downgrade(k.catalog),
                    origin: Arc::downgrade(k.origin),
                    base: k.base.to_owned(),
                    stream: k.stream.to_owned(),
                    region: k.region.to_owned(),
                    now: k.now,
                    candidates: k.candidates.to_vec(),
                    body,
                },
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::Catalog;
    use crate::manifests::Manifest;
    use crate::scoring::Snapshot;
    use crate::steering::{Candidate, Signer};
    use crate::streams::{Stream, StreamState};

    const LADDER: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=25
s1_hi/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25
s1_lo/index.m3u8
";

    fn stream() -> Stream {
        Stream {
            id: "s1".into(),
            anchor_id: "a1".into(),
            region: "tw".into(),
            providers: vec!["tencent".into(), "alibaba".into()],
            state: StreamState::Live,
            reason: String::new(),
            started_ms: 0,
            ended_ms: None,
            updated_ms: 0,
        }
    }

    fn fetched() -> Arc<HlsPlaylist> {
        let url = url::Url::parse("http://origin.example/live/s1.m3u8").unwrap();
        Arc::new(HlsPlaylist::parse(LADDER.as_bytes(), &url).unwrap())
    }

    fn candidates(catalog: &Catalog, signer: &Signer, now: i64) -> Vec<Candidate> {
        let tw = catalog.policy.region("tw").unwrap();
        let mut rng = rand::rng();
        steering::play_candidates(
            catalog,
            signer,
            &Snapshot::empty(),
            tw,
            &stream(),
            Protocol::Hls,
            &[],
            now,
            &mut rng,
        )
        .unwrap()
        .candidates
    }

    fn ladder(origin: &HlsPlaylist) -> &hls::Ladder {
        match origin {
            HlsPlaylist::Ladder(l) => l,
            HlsPlaylist::Media => panic!("not a ladder"),
        }
    }

    /// A kept playlist is the one written afresh from the same inputs; a new catalog (a
    /// reload), a new ladder (an origin refetch), a new expiry step, the next second, another
    /// base, stream or region are each a miss.
    #[test]
    fn a_kept_playlist_is_the_fresh_one_and_goes_with_its_inputs() {
        let catalog = Arc::new(crate::scoring::tests::catalog());
        let signer = Signer::new(1000);
        let origin = fetched();
        let now = 1_800_000_000;
        let cands = candidates(&catalog, &signer, now);
        assert_eq!(cands.len(), 2);
        let key = rendered::Key {
            catalog: &catalog,
            origin: &origin,
            base: "http://livesteer.example",
            stream: "s1",
            region: "tw",
            now,
            candidates: &cands,
        };
        assert_eq!(rendered::get(&key), None);
        let (fresh, whole) = ladder_playlist(&signer, &key, ladder(&origin)).unwrap();
        assert!(whole);
        rendered::put(&key, fresh.clone());
        assert_eq!(rendered::get(&key), Some(fresh.clone()));
        // Written afresh by another signer from the same inputs: the same bytes.
        let (again, _) = ladder_playlist(&Signer::new(1000), &key, ladder(&origin)).unwrap();
        assert_eq!(again, fresh);
        let text = std::str::from_utf8(&fresh).unwrap();
        assert!(text.contains("PATHWAY-ID=\"tencent\""), "{text}");
        assert!(text.contains("SERVER-URI=\"http://livesteer.example/v1/steering/hls/s1?session="));

        // A reload: the same policy and providers, a new catalog.
        let reloaded = Arc::new(crate::scoring::tests::catalog());
        assert_eq!(
            rendered::get(&rendered::Key {
                catalog: &reloaded,
                ..key
            }),
            None
        );
        // An origin refetch: the same ladder, fetched again.
        let refetched = fetched();
        assert_eq!(
            rendered::get(&rendered::Key {
                origin: &refetched,
                ..key
            }),
            None
        );
        // The next expiry step: new candidate URLs and expiry.
        let step = i64::try_from(catalog.policy.delivery.url_ttl_seconds).unwrap();
        let later = candidates(&catalog, &signer, now + 2 * step);
        assert_ne!(later, cands);
        assert_eq!(
            rendered::get(&rendered::Key {
                candidates: &later,
                ..key
            }),
            None
        );
        // The next second (the steering session starts then), another base, stream, region or
        // order.
        assert_eq!(
            rendered::get(&rendered::Key {
                now: now + 1,
                ..key
            }),
            None
        );
        assert_eq!(
            rendered::get(&rendered::Key {
                base: "https://livesteer.example",
                ..key
            }),
            None
        );
        assert_eq!(
            rendered::get(&rendered::Key {
                region: "hk",
                ..key
            }),
            None
        );
        assert_eq!(
            rendered::get(&rendered::Key {
                stream: "s2",
                ..key
            }),
            None
        );
        let reversed: Vec<Candidate> = cands.iter().rev().cloned().collect();
        assert_eq!(
            rendered::get(&rendered::Key {
                candidates: &reversed,
                ..key
            }),
            None
        );
        // The other play order gets its own entry: both are kept.
        let key_rev = rendered::Key {
            candidates: &reversed,
            ..key
        };
        let (rev_body, _) = ladder_playlist(&signer, &key_rev, ladder(&origin)).unwrap();
        rendered::put(&key_rev, rev_body.clone());
        assert_eq!(rendered::get(&key_rev), Some(rev_body));
        // Still kept for its own inputs; replaced by the next second's.
        assert_eq!(rendered::get(&key), Some(fresh.clone()));
        let next = rendered::Key {
            now: now + 1,
            ..key
        };
        let (next_body, _) = ladder_playlist(&signer, &next, ladder(&origin)).unwrap();
        assert_ne!(next_body, fresh);
        rendered::put(&next, next_body.clone());
        assert_eq!(rendered::get(&next), Some(next_body));
        assert_eq!(rendered::get(&key), None);
    }
}
