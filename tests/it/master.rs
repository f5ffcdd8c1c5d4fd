//! `master.m3u8` is the origin's own ladder, replicated per pathway with signed absolute URIs,
//! from a per-stream single-flight cache; a failing origin is a JSON 502 naming it, and holds
//! up nothing but its own stream.

use std::time::{Duration, Instant};

use livesteer::store::testing::TestDb;
use m3u8_rs::{AlternativeMediaType, MasterPlaylist, Playlist};
use serde_json::Value;

use crate::support::{Builder, MEDIA_PLAYLIST, Reply, TestApp, TestOrigin};

/// An origin's ladder for `stream`, as nginx-rtmp's `hls_variant` names it: three variants, an
/// audio group in two languages, a subtitle group, an I-frame variant, and attributes of every
/// kind.
fn ladder(stream: &str) -> String {
    format!(
        "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"{stream}_aud_en/index.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"zh\",NAME=\"中文\",AUTOSELECT=YES,CHANNELS=\"2\",URI=\"{stream}_aud_zh/index.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",AUTOSELECT=YES,URI=\"{stream}_subs_en/index.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=5000000,AVERAGE-BANDWIDTH=4500000,CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=1920x1080,FRAME-RATE=30.000,AUDIO=\"aud\",SUBTITLES=\"subs\",STABLE-VARIANT-ID=\"hi\",VIDEO-RANGE=SDR
{stream}_hi/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2200000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aud\",SUBTITLES=\"subs\",STABLE-VARIANT-ID=\"mid\",VIDEO-RANGE=SDR
{stream}_mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO=\"aud\",SUBTITLES=\"subs\",STABLE-VARIANT-ID=\"lo\",VIDEO-RANGE=SDR
{stream}_lo/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,CODECS=\"avc1.640028\",RESOLUTION=1920x1080,URI=\"{stream}_hi/iframes.m3u8\"
"
    )
}

/// Every vendor, playing from `origin`, decisions without exploration.
fn builder(db: &TestDb, origin: &TestOrigin) -> Builder {
    TestApp::builder(db).origin(origin).without_exploration()
}

async fn stream(app: &TestApp, anchor: &str) -> String {
    app.create_stream(anchor, "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn path(id: &str) -> String {
    format!("/v1/streams/{id}/master.m3u8?region=tw")
}

/// `master.m3u8` of `id`: its status and text.
async fn master(app: &TestApp, id: &str) -> (u16, String) {
    let res = app.client.get(app.url(&path(id))).send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(
            res.headers()["content-type"],
            "application/vnd.apple.mpegurl"
        );
    }
    (status, res.text().await.unwrap())
}

fn parse(text: &str) -> MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(Playlist::MasterPlaylist(m)) => m,
        other => panic!("not a multivariant playlist: {other:?}\n{text}"),
    }
}

fn other(
    attrs: &Option<std::collections::HashMap<String, m3u8_rs::QuotedOrUnquoted>>,
    name: &str,
) -> String {
    attrs
        .as_ref()
        .and_then(|a| a.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

/// The query parameter `name` of `url`.
fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_ladder_comes_back_once_per_pathway_signed() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin).start().await;
    let id = stream(&app, "anchor-ladder").await;
    origin.serve(&id, Reply::playlist(&ladder(&id)));
    let (status, text) = master(&app, &id).await;
    assert_eq!(status, 200, "{text}");
    let source = parse(&ladder(&id));
    let m = parse(&text);

    // The steering tag first, absolute, on the first pathway.
    let steering = text.lines().nth(1).unwrap();
    assert!(
        steering.starts_with(&format!(
            "#EXT-X-CONTENT-STEERING:SERVER-URI=\"{}?session=",
            app.url(&format!("/v1/steering/hls/{id}"))
        )),
        "{text}"
    );
    assert!(steering.ends_with(",PATHWAY-ID=\"tencent\""), "{text}");
    assert_eq!(m.version, Some(6));
    assert!(m.independent_segments);

    // The play order's pathways, each with the whole ladder.
    let (_, play) = app
        .get(&format!("/v1/streams/{id}/play?protocol=hls&region=tw"))
        .await;
    let candidates = play["candidates"].as_array().unwrap();
    let pathways: Vec<&str> = candidates
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(pathways, ["tencent", "alibaba"], "{play}");
    assert_eq!(m.variants.len(), source.variants.len() * pathways.len());
    assert_eq!(
        m.alternatives.len(),
        source.alternatives.len() * pathways.len()
    );
    let base = format!("http://{}", origin.addr);
    for (k, pathway) in pathways.iter().enumerate() {
        let play_url = candidates[k]["url"].as_str().unwrap();
        let dir = format!("{base}/{pathway}/live/");
        let n = source.variants.len();
        for (want, got) in source.variants.iter().zip(&m.variants[k * n..(k + 1) * n]) {
            assert_eq!(
                (
                    got.is_i_frame,
                    got.bandwidth,
                    got.average_bandwidth,
                    &got.codecs,
                    &got.resolution,
                    got.frame_rate,
                    other(&got.other_attributes, "STABLE-VARIANT-ID"),
                    other(&got.other_attributes, "VIDEO-RANGE"),
                ),
                (
                    want.is_i_frame,
                    want.bandwidth,
                    want.average_bandwidth,
                    &want.codecs,
                    &want.resolution,
                    want.frame_rate,
                    other(&want.other_attributes, "STABLE-VARIANT-ID"),
                    other(&want.other_attributes, "VIDEO-RANGE"),
                ),
                "{text}"
            );
            assert_eq!(other(&got.other_attributes, "PATHWAY-ID"), *pathway);
            // The pathway's own rendition groups.
            if !got.is_i_frame {
                assert_eq!(
                    got.audio.as_deref(),
                    Some(format!("aud@{pathway}").as_str())
                );
                assert_eq!(
                    got.subtitles.as_deref(),
                    Some(format!("subs@{pathway}").as_str())
                );
            }
            // Absolute, on this provider, signed as it signs.
            assert_eq!(
                got.uri.split('?').next().unwrap(),
                format!("{dir}{}", want.uri),
                "{text}"
            );
            signed_like(pathway, &got.uri, play_url);
        }
        let r = source.alternatives.len();
        for (want, got) in source
            .alternatives
            .iter()
            .zip(&m.alternatives[k * r..(k + 1) * r])
        {
            assert_eq!(got.group_id, format!("{}@{pathway}", want.group_id));
            assert_eq!(
                (
                    &got.media_type,
                    &got.name,
                    &got.language,
                    got.default,
                    got.autoselect,
                    &got.channels
                ),
                (
                    &want.media_type,
                    &want.name,
                    &want.language,
                    want.default,
                    want.autoselect,
                    &want.channels
                )
            );
            let uri = got.uri.as_deref().unwrap();
            assert_eq!(
                uri.split('?').next().unwrap(),
                format!("{dir}{}", want.uri.as_deref().unwrap())
            );
            signed_like(pathway, uri, play_url);
        }
        assert_eq!(
            m.alternatives[k * r..(k + 1) * r]
                .iter()
                .filter(|a| a.media_type == AlternativeMediaType::Audio)
                .count(),
            2
        );
    }
    // One fetch, of the stream's first push target, for every request.
    for _ in 0..5 {
        assert_eq!(master(&app, &id).await.0, 200);
    }
    let fetches = origin.fetches(&id);
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(fetches[0].path, format!("/tencent/live/{id}.m3u8"));
    app.stop().await;
}

/// Tencent's signature is the stream's, whatever the path: the play URL's query is carried.
/// Alibaba's signs the path: each variant has its own `auth_key`, of its own path.
fn signed_like(pathway: &str, uri: &str, play_url: &str) {
    match pathway {
        "tencent" => {
            for p in ["txSecret", "txTime"] {
                assert_eq!(param(uri, p), param(play_url, p), "{uri}");
                assert!(param(uri, p).is_some());
            }
        }
        "alibaba" => {
            let auth = param(uri, "auth_key").unwrap();
            let exp: i64 = auth.split('-').next().unwrap().parse().unwrap();
            let path = url::Url::parse(uri).unwrap().path().to_string();
            let key = crate::support::test_secrets()["ALIBABA_LIVE_PLAY_KEY"].clone();
            let want =
                livesteer::providers::signing::alibaba_type_a_auth_key(&path, &key, exp, "0", "0")
                    .unwrap();
            assert_eq!(auth, want, "{uri}");
            assert_ne!(Some(auth), param(play_url, "auth_key"));
        }
        other => panic!("unexpected pathway {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_without_a_ladder_gives_one_variant_per_pathway() {
    let origin = TestOrigin::start(Reply::playlist(MEDIA_PLAYLIST));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin).start().await;
    let id = stream(&app, "anchor-media").await;
    let (status, text) = master(&app, &id).await;
    assert_eq!(status, 200, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for (i, p) in [(2, "tencent"), (4, "alibaba")] {
        assert_eq!(
            lines[i],
            format!("#EXT-X-STREAM-INF:BANDWIDTH=2500000,PATHWAY-ID=\"{p}\"")
        );
        assert!(
            lines[i + 1].starts_with(&format!("http://{}/{p}/live/{id}.m3u8?", origin.addr)),
            "{text}"
        );
    }
    app.stop().await;
}

/// The JSON error of a `master.m3u8` that failed.
async fn failure(app: &TestApp, id: &str) -> (u16, Value) {
    app.get(&path(id)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_origin_is_a_json_502_naming_it_and_is_not_asked_again_at_once() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin).start().await;
    let good = stream(&app, "anchor-good").await;
    origin.serve(&good, Reply::playlist(&ladder(&good)));
    let big = format!("#EXTM3U\n{}", "#EXT-X-PADDING\n".repeat(80_000));
    let cases = [
        (Reply::status(404), "answered HTTP 404".to_string()),
        (Reply::status(500), "answered HTTP 500".to_string()),
        (
            Reply::playlist("<html><body>Bad Gateway</body></html>"),
            "did not answer an M3U8 playlist: it does not start with #EXTM3U".to_string(),
        ),
        (
            Reply::playlist("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"avc1\"\nlo.m3u8\n"),
            "did not answer an M3U8 playlist: malformed #EXT-X-STREAM-INF".to_string(),
        ),
        (
            Reply::playlist(&big),
            "answered more than 1048576 bytes".to_string(),
        ),
    ];
    for (i, (reply, why)) in cases.into_iter().enumerate() {
        let id = stream(&app, &format!("anchor-bad-{i}")).await;
        origin.serve(&id, reply);
        let (status, body) = failure(&app, &id).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"], "origin_unavailable", "{body}");
        let message = body["message"].as_str().unwrap();
        let url = format!("http://{}/tencent/live/{id}.m3u8", origin.addr);
        assert!(
            message.starts_with(&format!("origin tencent ({url}) {why}")),
            "{message}"
        );
        // Remembered for the retry time: the origin is asked once, not per viewer.
        for _ in 0..5 {
            assert_eq!(failure(&app, &id).await.0, 502);
        }
        assert_eq!(origin.fetches(&id).len(), 1, "{why}");
        // Another stream answers all along.
        assert_eq!(master(&app, &good).await.0, 200);
    }
    // An ended stream stays 410, an unknown one 404.
    app.delete(&format!("/v1/streams/{good}")).await;
    let (status, body) = failure(&app, &good).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("stream_ended"))
    );
    let (status, body) = failure(&app, "s-nope").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_stream"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_is_down_is_a_json_502() {
    // A port nothing listens on any more.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .origin_at(dead)
        .without_exploration()
        .start()
        .await;
    let id = stream(&app, "anchor-down").await;
    let (status, body) = failure(&app, &id).await;
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "origin tencent (http://{dead}/tencent/live/{id}.m3u8) is unreachable"
        )),
        "{message}"
    );
    assert!(!message.contains('?'), "the signature stays out: {message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_hangs_is_a_502_within_the_timeout() {
    let origin = TestOrigin::start(Reply::Hold);
    let db = TestDb::sqlite();
    let app = builder(&db, &origin)
        .policy(|p| p.set("delivery.origin_timeout_ms", 500))
        .start()
        .await;
    let id = stream(&app, "anchor-hang").await;
    let start = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(30), failure(&app, &id))
        .await
        .expect("master.m3u8 waits on an origin that hangs");
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("did not answer within 500 ms"),
        "{body}"
    );
    // The origin never answers: the answer came from the timeout.
    assert!(start.elapsed() < Duration::from_secs(30));
    origin.release();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_origin_holds_up_only_its_own_stream() {
    let origin = TestOrigin::start(Reply::playlist(MEDIA_PLAYLIST));
    let db = TestDb::sqlite();
    let app = std::sync::Arc::new(
        builder(&db, &origin)
            .policy(|p| p.set("delivery.origin_timeout_ms", 20000))
            .start()
            .await,
    );
    let slow = stream(&app, "anchor-slow").await;
    let other = stream(&app, "anchor-other").await;
    origin.serve(&slow, Reply::Hold);
    origin.serve(&other, Reply::playlist(&ladder(&other)));
    let held = {
        let (app, slow) = (app.clone(), slow.clone());
        tokio::spawn(async move { failure(&app, &slow).await })
    };
    for _ in 0..200 {
        if !origin.fetches(&slow).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(origin.fetches(&slow).len(), 1);
    // While the slow origin holds its stream's first viewer, another cold stream is fetched
    // and answered.
    let (status, text) = master(&app, &other).await;
    assert_eq!(status, 200, "{text}");
    let fetched = origin.fetches(&other);
    assert_eq!(fetched.len(), 1);
    assert!(fetched[0].in_flight >= 1, "{fetched:?}");
    assert!(!held.is_finished());
    // The slow origin answers at last: its viewer gets the 502.
    origin.release();
    let (status, body) = held.await.unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("answered HTTP 404"),
        "{body}"
    );
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_stream_is_fetched_once_however_many_ask() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = std::sync::Arc::new(builder(&db, &origin).start().await);
    let id = stream(&app, "anchor-crowd").await;
    // A slow origin, so that the crowd arrives while the one fetch runs.
    origin.serve(
        &id,
        Reply::playlist(&ladder(&id)).after(Duration::from_millis(300)),
    );
    let crowd: Vec<_> = (0..40)
        .map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move { master(&app, &id).await })
        })
        .collect();
    let mut ladders = std::collections::BTreeSet::new();
    for c in crowd {
        let (status, text) = c.await.unwrap();
        assert_eq!(status, 200, "{text}");
        // The same ladder for all (the steering sessions differ by the second they start).
        ladders.insert(text.lines().skip(2).collect::<Vec<_>>().join("\n"));
    }
    assert_eq!(ladders.len(), 1);
    assert_eq!(origin.fetches(&id).len(), 1, "{:?}", origin.fetches(&id));
    // Within the refresh interval, none.
    for _ in 0..20 {
        assert_eq!(master(&app, &id).await.0, 200);
    }
    assert_eq!(origin.fetches(&id).len(), 1);
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_ladder_is_answered_while_one_refresh_runs() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin)
        .policy(|p| {
            p.set("delivery.origin_refresh_seconds", 2)
                .set("delivery.origin_retry_seconds", 1)
        })
        .start()
        .await;
    let id = stream(&app, "anchor-refresh").await;
    origin.serve(&id, Reply::playlist(MEDIA_PLAYLIST));
    let (status, text) = master(&app, &id).await;
    assert_eq!((status, text.lines().count()), (200, 6), "{text}");
    // The origin gets a ladder, and answers slowly.
    origin.serve(
        &id,
        Reply::playlist(&ladder(&id)).after(Duration::from_millis(500)),
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    // Due: answered at once with what is in memory, while one refresh runs.
    let (status, text) = master(&app, &id).await;
    assert_eq!((status, text.lines().count()), (200, 6), "{text}");
    let mut ladder_seen = false;
    for _ in 0..50 {
        let (status, text) = master(&app, &id).await;
        assert_eq!(status, 200);
        if text.contains("#EXT-X-MEDIA:") {
            ladder_seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ladder_seen);
    assert_eq!(origin.fetches(&id).len(), 2, "{:?}", origin.fetches(&id));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_retried_after_its_time_and_a_failed_refresh_keeps_the_ladder() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin)
        .policy(|p| {
            p.set("delivery.origin_refresh_seconds", 2)
                .set("delivery.origin_retry_seconds", 1)
        })
        .start()
        .await;
    let id = stream(&app, "anchor-retry").await;
    origin.serve(&id, Reply::status(503));
    assert_eq!(master(&app, &id).await.0, 502);
    // The origin recovers: the failure is answered until its retry time is over.
    origin.serve(&id, Reply::playlist(&ladder(&id)));
    let mut answered = false;
    for _ in 0..60 {
        match master(&app, &id).await.0 {
            200 => {
                answered = true;
                break;
            }
            status => assert_eq!(status, 502),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered);
    assert_eq!(origin.fetches(&id).len(), 2);
    // The origin fails again: once the ladder is due, the refresh fails and viewers keep it.
    origin.serve(&id, Reply::status(500));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    for _ in 0..60 {
        let (status, text) = master(&app, &id).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("#EXT-X-MEDIA:"), "{text}");
        if origin.fetches(&id).len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.fetches(&id).len(), 3);
    let (status, text) = master(&app, &id).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("#EXT-X-MEDIA:"), "{text}");
    app.stop().await;
}
