//! `manifest.mpd` is the origin's MPD with one signed, absolute `BaseURL` per carrier and
//! livesteer's Content Steering, from a per-stream single-flight cache; a failing origin is a
//! JSON 502 naming it and holds up nothing but its own stream; DASH steering reads the query
//! shapes dash.js and Shaka send.

use std::sync::Arc;
use std::time::Duration;

use livesteer::clock::ManualClock;
use livesteer::store::testing::TestDb;
use quick_xml::events::Event;
use serde_json::Value;

use crate::support::{Builder, Reply, TestApp, TestOrigin};

const T0_MS: i64 = 1_800_000_000_000;

/// An origin MPD for `stream` with two periods: the first with its own `BaseURL` (absolute, to
/// the origin itself) and a video and an audio adaptation set, the second with a subtitle set
/// whose `BaseURL` is relative; plus the origin's own MPD-level `BaseURL`, `Location` and
/// `ContentSteering`, which livesteer replaces.
fn mpd(origin: &TestOrigin, stream: &str) -> String {
    let own = format!("http://{}/tencent/live", origin.addr);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- packaged by a test -->
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S"
     availabilityStartTime="2026-12-02T04:00:00Z" minBufferTime="PT2S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <ProgramInformation><Title>{stream} &amp; friends</Title></ProgramInformation>
  <BaseURL>{own}/</BaseURL>
  <Location>{own}/{stream}.mpd</Location>
  <ContentSteering defaultServiceLocation="origin">http://steer.origin.example/x</ContentSteering>
  <Period id="p0" start="PT0S">
    <BaseURL>{own}/p0/</BaseURL>
    <AdaptationSet id="1" contentType="video" mimeType="video/mp4" segmentAlignment="true">
      <SegmentTemplate timescale="1000" media="{stream}-$RepresentationID$-$Time$.m4s"
                       initialization="{stream}-$RepresentationID$-init.m4s">
        <SegmentTimeline><S t="0" d="2000" r="4"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="hi" bandwidth="2500000" codecs="avc1.64001f" width="1280" height="720"/>
      <Representation id="lo" bandwidth="800000" codecs="avc1.42c01e" width="640" height="360"/>
    </AdaptationSet>
    <AdaptationSet id="2" contentType="audio" mimeType="audio/mp4" lang="en">
      <Representation id="aac" bandwidth="64000" codecs="mp4a.40.2" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" media="{stream}-aac-$Number$.m4s" startNumber="7"
                         initialization="{stream}-aac-init.m4s" duration="96000"/>
      </Representation>
    </AdaptationSet>
  </Period>
  <Period id="p1" start="PT10S">
    <AdaptationSet id="3" contentType="text" mimeType="application/mp4" lang="zh">
      <BaseURL>subs/</BaseURL>
      <Representation id="wvtt" bandwidth="1000" codecs="wvtt"/>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https://time.example/"/>
</MPD>
"#
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
    format!("/v1/streams/{id}/manifest.mpd?region=tw")
}

/// `manifest.mpd` of `id`: its status and text.
async fn manifest(app: &TestApp, id: &str) -> (u16, String) {
    let res = app.client.get(app.url(&path(id))).send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        assert_eq!(res.headers()["content-type"], "application/dash+xml");
    }
    (status, res.text().await.unwrap())
}

/// One element of a document: its path of local names, attributes and text.
#[derive(Debug, Clone, PartialEq)]
struct Element {
    path: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every element of an XML document, in order, read with quick-xml (which also checks that it
/// is well-formed).
fn elements(text: &str) -> Vec<Element> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut open: Vec<String> = Vec::new();
    let mut out: Vec<Element> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        match event {
            Event::Eof => break,
            Event::Start(ref s) | Event::Empty(ref s) => {
                let empty = matches!(event, Event::Empty(_));
                let name = s.name();
                let local = name.local_name().as_ref().to_string();
                open.push(local);
                out.push(Element {
                    path: open.join("/"),
                    attrs: s
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                a.key.as_ref().to_string(),
                                quick_xml::escape::unescape(&a.value).unwrap().to_string(),
                            )
                        })
                        .collect(),
                    text: String::new(),
                });
                current.push(out.len() - 1);
                if empty {
                    open.pop();
                    current.pop();
                }
            }
            Event::End(_) => {
                open.pop();
                current.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = current.last() {
                    out[i]
                        .text
                        .push_str(&quick_xml::escape::unescape(&t).unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(&i) = current.last() {
                    let s = format!("&{};", &*r);
                    out[i]
                        .text
                        .push_str(&quick_xml::escape::unescape(&s).unwrap());
                }
            }
            _ => {}
        }
    }
    for e in &mut out {
        e.text = e.text.trim().to_string();
    }
    out
}

fn named<'e>(all: &'e [Element], path: &str) -> Vec<&'e Element> {
    all.iter().filter(|e| e.path == path).collect()
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
async fn the_origin_mpd_comes_back_with_a_signed_base_url_per_carrier_and_steering() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin).start().await;
    let id = stream(&app, "anchor-mpd").await;
    let source = mpd(&origin, &id);
    origin.serve(&id, Reply::playlist(&source));
    let res = app
        .client
        .get(app.url(&path(&id)))
        .header("origin", "http://127.0.0.1:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let text = res.text().await.unwrap();
    // Its CORS preflight, as a page on another origin sends it.
    let pre = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(&path(&id)))
        .header("origin", "http://127.0.0.1:3000")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    let (want, got) = (elements(&source), elements(&text));

    // One BaseURL per carrier, in the play order, each the provider's signed DASH URL's
    // directory under the origin's own BaseURL.
    let (_, play) = app
        .get(&format!("/v1/streams/{id}/play?protocol=dash&region=tw"))
        .await;
    let candidates = play["candidates"].as_array().unwrap();
    let providers: Vec<&str> = candidates
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["tencent", "alibaba"], "{play}");
    assert_eq!(
        play["steering"],
        app.url(&format!("/v1/steering/dash/{id}")),
        "{play}"
    );
    for c in candidates {
        assert_eq!(c["protocol"], "dash");
        assert!(
            c["url"]
                .as_str()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .ends_with(&format!("/live/{id}.mpd")),
            "{c}"
        );
    }
    let bases = named(&got, "MPD/BaseURL");
    assert_eq!(bases.len(), 2, "{text}");
    for (b, c) in bases.iter().zip(candidates) {
        let provider = c["provider"].as_str().unwrap();
        assert_eq!(b.attr("serviceLocation"), Some(provider), "{text}");
        assert_eq!(
            b.text.split('?').next().unwrap(),
            format!("http://{}/{provider}/live/", origin.addr),
            "{text}"
        );
        let play_url = c["url"].as_str().unwrap();
        match provider {
            // Tencent signs the stream, whatever the path: the play URL's query is carried.
            "tencent" => {
                for p in ["txSecret", "txTime"] {
                    assert!(param(&b.text, p).is_some(), "{}", b.text);
                    assert_eq!(param(&b.text, p), param(play_url, p));
                }
            }
            // Alibaba signs the path it is given: the directory's own auth_key.
            _ => {
                let auth = param(&b.text, "auth_key").unwrap();
                let exp: i64 = auth.split('-').next().unwrap().parse().unwrap();
                let key = crate::support::test_secrets()["ALIBABA_LIVE_PLAY_KEY"].clone();
                let want = livesteer::providers::signing::alibaba_type_a_auth_key(
                    "/alibaba/live/",
                    &key,
                    exp,
                    "0",
                    "0",
                )
                .unwrap();
                assert_eq!(auth, want, "{}", b.text);
            }
        }
    }
    // Livesteer's steering, absolute, starting on the first service location; refreshes come
    // back here.
    let cs = named(&got, "MPD/ContentSteering");
    assert_eq!(cs.len(), 1, "{text}");
    assert_eq!(cs[0].attr("defaultServiceLocation"), Some("tencent"));
    assert_eq!(cs[0].attr("queryBeforeStart"), Some("true"));
    let steering = &cs[0].text;
    assert!(
        steering.starts_with(&format!(
            "{}?session=",
            app.url(&format!("/v1/steering/dash/{id}"))
        )),
        "{text}"
    );
    let loc = named(&got, "MPD/Location");
    assert_eq!(loc.len(), 1, "{text}");
    assert_eq!(loc[0].text, app.url(&path(&id)));

    // Everything else is the origin's: periods, adaptation sets, representations, templates
    // and timelines with every attribute, the UTC timing; nested BaseURLs on the origin made
    // relative.
    let others = |all: &[Element]| -> Vec<Element> {
        all.iter()
            .filter(|e| {
                !["MPD/BaseURL", "MPD/Location", "MPD/ContentSteering"].contains(&e.path.as_str())
            })
            .filter(|e| e.path != "MPD/Period/BaseURL")
            .cloned()
            .collect()
    };
    assert_eq!(others(&got), others(&want), "{text}");
    assert_eq!(named(&got, "MPD/Period").len(), 2);
    assert_eq!(named(&got, "MPD/Period/AdaptationSet").len(), 3);
    assert_eq!(
        named(&got, "MPD/Period/AdaptationSet/Representation").len(),
        4
    );
    let nested = named(&got, "MPD/Period/BaseURL");
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0].text, "p0/");
    assert_eq!(
        named(&got, "MPD/ProgramInformation/Title")[0].text,
        format!("{id} & friends")
    );

    // The steering answer names the MPD's service locations.
    let s: Value = app
        .client
        .get(steering)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["SERVICE-LOCATION-PRIORITY"], s["PATHWAY-PRIORITY"], "{s}");
    let names: Vec<&str> = bases
        .iter()
        .map(|b| b.attr("serviceLocation").unwrap())
        .collect();
    assert_eq!(s["PATHWAY-PRIORITY"], serde_json::json!(names), "{s}");
    assert!(
        s["RELOAD-URI"]
            .as_str()
            .unwrap()
            .starts_with(&app.url(&format!("/v1/steering/dash/{id}?session="))),
        "{s}"
    );

    // One fetch, of the stream's first push target, for every request.
    for _ in 0..5 {
        assert_eq!(manifest(&app, &id).await.0, 200);
    }
    let fetches = origin.fetches(&id);
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(fetches[0].path, format!("/tencent/live/{id}.mpd"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mpd_is_held_for_its_own_minimum_update_period() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    // The policy would hold it 30 s; the MPD says 1 s.
    let app = builder(&db, &origin).start().await;
    let id = stream(&app, "anchor-mup").await;
    let one_second = mpd(&origin, &id).replace(
        "minimumUpdatePeriod=\"PT2S\"",
        "minimumUpdatePeriod=\"PT1S\"",
    );
    origin.serve(&id, Reply::playlist(&one_second));
    assert_eq!(manifest(&app, &id).await.0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Asked every 100 ms for 3.5 s: one fetch, then about one a second, in the background.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(3_500) {
        assert_eq!(manifest(&app, &id).await.0, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(std::time::Instant::now() < deadline);
    }
    let n = origin.fetches(&id).len();
    assert!((3..=5).contains(&n), "{n} fetches in 3.5 s");
    app.stop().await;
}

/// A live MPD read through a provider that stops answering is read through the next service
/// location once it is too stale to answer, and players are never answered an error meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_origin_is_left_for_the_next_service_location() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin).start().await;
    let id = stream(&app, "anchor-dead-edge").await;
    let one_second = mpd(&origin, &id).replace(
        "minimumUpdatePeriod=\"PT2S\"",
        "minimumUpdatePeriod=\"PT1S\"",
    );
    origin.serve(&id, Reply::playlist(&one_second));
    assert_eq!(manifest(&app, &id).await.0, 200);
    let tencent = format!("/tencent/live/{id}.mpd");
    let alibaba = format!("/alibaba/live/{id}.mpd");
    origin.serve_path(&tencent, Reply::status(503));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) = manifest(&app, &id).await;
        assert_eq!(status, 200, "{text}");
        if origin.fetches(&id).iter().any(|h| h.path == alibaba) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never read through Alibaba: {:?}",
            origin.fetches(&id)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Tencent was refreshed (and failed) before the MPD went stale: about two update periods.
    let tencent_fetches = origin
        .fetches(&id)
        .iter()
        .filter(|h| h.path == tencent)
        .count();
    assert!(
        (2..=5).contains(&tencent_fetches),
        "{:?}",
        origin.fetches(&id)
    );
    let (status, text) = manifest(&app, &id).await;
    assert_eq!(status, 200, "{text}");
    app.stop().await;
}

async fn failure(app: &TestApp, id: &str) -> (u16, Value) {
    app.get(&path(id)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_origin_is_a_json_502_naming_it_while_other_streams_answer() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let app = builder(&db, &origin)
        .policy(|p| p.set("delivery.origin_timeout_ms", 700))
        .start()
        .await;
    let good = stream(&app, "anchor-good").await;
    origin.serve(&good, Reply::playlist(&mpd(&origin, &good)));
    assert_eq!(manifest(&app, &good).await.0, 200);
    let cases = [
        (Reply::status(404), "answered HTTP 404"),
        (
            Reply::playlist("<MPD type=\"dynamic\"><Period><AdaptationSet></Period></MPD>"),
            "did not answer an MPD: unreadable XML at line 1",
        ),
        (
            Reply::playlist("<html><body>Bad Gateway</body></html>"),
            "did not answer an MPD: the root element is <html>, not <MPD>",
        ),
        (
            Reply::playlist("#EXTM3U\n#EXT-X-TARGETDURATION:2\n"),
            "did not answer an MPD: text outside <MPD>",
        ),
        (Reply::Hold, "did not answer within 700 ms"),
    ];
    for (i, (reply, why)) in cases.into_iter().enumerate() {
        let id = stream(&app, &format!("anchor-bad-{i}")).await;
        origin.serve(&id, reply);
        let started = std::time::Instant::now();
        let bad = tokio::spawn({
            let (client, url) = (app.client.clone(), app.url(&path(&id)));
            async move {
                let res = client.get(url).send().await.unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap())
            }
        });
        // Another stream's MPD answers all along, while this one's origin is being asked.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let other = tokio::time::timeout(Duration::from_millis(500), manifest(&app, &good))
            .await
            .expect("another stream's MPD waits on this one's origin");
        assert_eq!(other.0, 200);
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), bad)
            .await
            .expect("manifest.mpd waits on a failing origin")
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{why}: {:?}",
            started.elapsed()
        );
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"], "origin_unavailable", "{body}");
        let message = body["message"].as_str().unwrap();
        let url = format!("http://{}/tencent/live/{id}.mpd", origin.addr);
        assert!(
            message.starts_with(&format!("origin tencent ({url}) {why}")),
            "{message}"
        );
        // Each service location was asked in turn; each failure is remembered for the retry
        // time: asked once, not per viewer.
        for _ in 0..3 {
            assert_eq!(failure(&app, &id).await.0, 502);
        }
        let fetches: Vec<String> = origin.fetches(&id).into_iter().map(|h| h.path).collect();
        assert_eq!(
            fetches,
            [
                format!("/tencent/live/{id}.mpd"),
                format!("/alibaba/live/{id}.mpd")
            ],
            "{why}"
        );
    }
    origin.release();
    // An ended stream is 410.
    app.delete(&format!("/v1/streams/{good}")).await;
    let (status, body) = failure(&app, &good).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("stream_ended")),
        "{body}"
    );
    // An origin that is down: nothing listens on its port.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let db2 = TestDb::sqlite();
    let app2 = TestApp::builder(&db2)
        .origin_at(free)
        .without_exploration()
        .start()
        .await;
    let id = stream(&app2, "anchor-down").await;
    let (status, body) = app2.get(&path(&id)).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("is unreachable"),
        "{body}"
    );
    app2.stop().await;
    app.stop().await;
}

/// A DASH steering reload as a player sends it: the server's URI plus its raw query.
async fn reload(app: &TestApp, uri: &str, query: &str) -> (u16, Value) {
    let url = format!("{uri}&{query}");
    let res = app.client.get(&url).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn priority(m: &Value) -> Vec<String> {
    m["PATHWAY-PRIORITY"]
        .as_array()
        .unwrap_or_else(|| panic!("no PATHWAY-PRIORITY in {m}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// What dash.js 5.2 sends (a quoted list of the locations it fetched from since its last
/// request, with the mean throughput of each), and Shaka (one location and its estimate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_js_and_shaka_query_shapes_are_read() {
    let origin = TestOrigin::start(Reply::status(404));
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0_MS));
    let app = builder(&db, &origin)
        .clock(clock.clone())
        .policy(|p| p.set("scoring.hysteresis_hold_seconds", 0))
        .start()
        .await;
    let id = stream(&app, "anchor-dashjs").await;
    origin.serve(&id, Reply::playlist(&mpd(&origin, &id)));
    let (status, text) = manifest(&app, &id).await;
    assert_eq!(status, 200, "{text}");
    let uri = named(&elements(&text), "MPD/ContentSteering")[0]
        .text
        .clone();
    let settle = app.state.catalog.load().policy.steering.settle_seconds as i64;

    // The query before start: nothing fetched yet, no parameters.
    let (status, s) = app.get(uri.trim_start_matches(&app.url(""))).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(priority(&s), ["tencent", "alibaba"]);
    let mut next = s["RELOAD-URI"].as_str().unwrap().to_string();

    // A quoted single location is that location, not `"tencent"`.
    clock.advance_ms(1_000);
    let (status, s) = reload(
        &app,
        &next,
        "_DASH_pathway=%22tencent%22&_DASH_throughput=45000000",
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(priority(&s), ["tencent", "alibaba"]);
    next = s["RELOAD-URI"].as_str().unwrap().to_string();

    // Settled on Tencent, which serves it at 812 kbit/s: moved to Alibaba at once.
    clock.advance_ms(settle * 1000);
    let (status, s) = reload(
        &app,
        &next,
        "_DASH_pathway=%22tencent%22&_DASH_throughput=812000",
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(priority(&s), ["alibaba", "tencent"], "{s}");
    next = s["RELOAD-URI"].as_str().unwrap().to_string();

    // Its next request lists both (it fetched from both since), each with its own mean: it
    // is on Alibaba, which is fast, and stays there.
    for _ in 0..3 {
        clock.advance_ms(2_000);
        let (status, s) = reload(
            &app,
            &next,
            "_DASH_pathway=%22tencent,alibaba%22&_DASH_throughput=812000,45000000",
        )
        .await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(priority(&s)[0], "alibaba", "{s}");
        next = s["RELOAD-URI"].as_str().unwrap().to_string();
    }
    // A location without a measurement yet is an empty entry.
    let (status, s) = reload(
        &app,
        &next,
        "_DASH_pathway=%22alibaba,tencent%22&_DASH_throughput=45000000,",
    )
    .await;
    assert_eq!(status, 200, "{s}");
    // Shaka: one unquoted location and its estimate.
    let (status, s) = reload(
        &app,
        &next,
        "_DASH_pathway=alibaba&_DASH_throughput=45000000",
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(priority(&s)[0], "alibaba", "{s}");

    // Throughputs that are not aligned, or not numbers, are a 400 naming them.
    let (status, s) = reload(
        &app,
        &next,
        "_DASH_pathway=%22tencent,alibaba%22&_DASH_throughput=1,2,3",
    )
    .await;
    assert_eq!(status, 400, "{s}");
    assert_eq!(s["error"], "invalid_throughput");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("3 throughputs for 2 pathways"),
        "{s}"
    );
    let (status, s) = reload(
        &app,
        &next,
        "_DASH_pathway=%22tencent,alibaba%22&_DASH_throughput=812000,fast",
    )
    .await;
    assert_eq!(status, 400, "{s}");
    assert!(s["message"].as_str().unwrap().contains("\"fast\""), "{s}");
    app.stop().await;
}
