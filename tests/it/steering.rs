//! The viewer loop as a browser sees it: CORS on the viewer routes (never on admin), absolute
//! URIs in every manifest, and steering reloads attributed to the pathway they were measured
//! on, learned from, and refreshing a long-watching player's URLs before they expire.

use std::sync::Arc;
use std::time::Duration;

use livesteer::clock::{Clock, ManualClock};
use livesteer::config::CorsOrigins;
use livesteer::store::testing::TestDb;
use reqwest::Method;
use serde_json::Value;

use crate::support::{MEDIA_PLAYLIST, Reply, TestApp, TestOrigin};

const T0_MS: i64 = 1_800_000_000_000;
const PAGE: &str = "http://127.0.0.1:3000";

/// Every vendor enabled, each playing from a local origin without a ladder, no exploration or
/// hold time, on a clock the test moves.
fn builder(db: &TestDb, clock: Arc<ManualClock>) -> crate::support::Builder {
    TestApp::builder(db)
        .origin(&TestOrigin::start(Reply::playlist(MEDIA_PLAYLIST)))
        .clock(clock)
        .policy(|p| {
            p.set("scoring.exploration_rate", 0)
                .set("scoring.hysteresis_hold_seconds", 0)
        })
        .admin_token("secret-admin-token")
}

async fn stream(app: &TestApp, anchor: &str) -> String {
    app.create_stream(anchor, "tw").await["stream_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The viewer routes, each with a method and a path a page would call.
fn viewer_routes(id: &str) -> Vec<(Method, String)> {
    vec![
        (
            Method::GET,
            format!("/v1/streams/{id}/play?protocol=hls&region=tw"),
        ),
        (
            Method::GET,
            format!("/v1/streams/{id}/master.m3u8?region=tw"),
        ),
        (Method::POST, format!("/v1/streams/{id}/switch")),
        (Method::GET, format!("/v1/steering/hls/{id}?region=tw")),
        (Method::GET, format!("/v1/steering/dash/{id}?region=tw")),
        (Method::POST, "/v1/qos".to_string()),
        (
            Method::GET,
            "/v1/resolve?services=chat&region=tw".to_string(),
        ),
        (Method::POST, "/v1/resolve".to_string()),
        (Method::GET, "/d?dn=chat.example.com".to_string()),
        (Method::GET, "/139450/d?host=chat.example.com".to_string()),
    ]
}

fn header<'r>(res: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn preflight(app: &TestApp, method: &Method, path: &str, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method.as_str())
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

async fn from_page(app: &TestApp, method: Method, path: &str, origin: &str) -> reqwest::Response {
    let mut req = app
        .client
        .request(method.clone(), app.url(path))
        .header("origin", origin);
    if method == Method::POST {
        req = req.header("content-type", "application/json").body("{}");
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_routes_answer_cors_and_admin_does_not() {
    let db = TestDb::sqlite();
    let app = builder(&db, Arc::new(ManualClock::new(T0_MS)))
        .start()
        .await;
    let id = stream(&app, "anchor-cors").await;
    for (method, path) in viewer_routes(&id) {
        let res = preflight(&app, &method, &path, PAGE).await;
        assert_eq!(res.status(), 204, "preflight {method} {path}");
        assert_eq!(header(&res, "access-control-allow-origin"), Some("*"));
        let methods = header(&res, "access-control-allow-methods").unwrap_or("");
        assert!(methods.contains(method.as_str()), "{path}: {methods}");
        assert_eq!(
            header(&res, "access-control-allow-headers"),
            Some("content-type"),
            "{path}"
        );
        // The answer itself, whatever its status, is readable by the page.
        let res = from_page(&app, method.clone(), &path, PAGE).await;
        assert!(
            res.status().as_u16() < 500,
            "{method} {path}: {}",
            res.status()
        );
        assert_eq!(
            header(&res, "access-control-allow-origin"),
            Some("*"),
            "{method} {path} answered {}",
            res.status()
        );
    }
    for path in ["/admin/scores", "/admin/policies/reload"] {
        let res = preflight(&app, &Method::GET, path, PAGE).await;
        assert!(
            header(&res, "access-control-allow-origin").is_none(),
            "{path}"
        );
        let res = app
            .client
            .get(app.url(path))
            .header("origin", PAGE)
            .bearer_auth("secret-admin-token")
            .send()
            .await
            .unwrap();
        assert!(
            header(&res, "access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_origins_can_be_listed() {
    let db = TestDb::sqlite();
    let app = builder(&db, Arc::new(ManualClock::new(T0_MS)))
        .config(|c| c.cors = CorsOrigins::parse(PAGE).unwrap())
        .start()
        .await;
    let id = stream(&app, "anchor-cors-list").await;
    let path = format!("/v1/streams/{id}/play?protocol=hls&region=tw");
    let res = from_page(&app, Method::GET, &path, PAGE).await;
    assert_eq!(header(&res, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(header(&res, "vary"), Some("Origin"));
    let other = "https://elsewhere.example";
    let res = from_page(&app, Method::GET, &path, other).await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "access-control-allow-origin").is_none());
    let res = preflight(&app, &Method::GET, &path, other).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "origin_not_allowed", "{body}");
    app.stop().await;
}

fn steering_uri(master: &str) -> String {
    let line = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-CONTENT-STEERING:"))
        .unwrap_or_else(|| panic!("no steering tag in\n{master}"));
    let start = line.find("SERVER-URI=\"").unwrap() + "SERVER-URI=\"".len();
    line[start..start + line[start..].find('"').unwrap()].to_string()
}

async fn master(app: &TestApp, id: &str, headers: &[(&str, &str)]) -> String {
    let mut req = app
        .client
        .get(app.url(&format!("/v1/streams/{id}/master.m3u8?region=tw")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// A steering reload as a player sends it: the server's URI plus its pathway and throughput.
async fn reload(app: &TestApp, uri: &str, pathway: &str, throughput: u64) -> Value {
    let url = format!("{uri}&_HLS_pathway={pathway}&_HLS_throughput={throughput}");
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.json().await.unwrap()
}

fn priority(m: &Value) -> Vec<String> {
    m["PATHWAY-PRIORITY"]
        .as_array()
        .unwrap_or_else(|| panic!("no PATHWAY-PRIORITY in {m}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_carry_absolute_uris() {
    let db = TestDb::sqlite();
    let app = builder(&db, Arc::new(ManualClock::new(T0_MS)))
        .start()
        .await;
    let id = stream(&app, "anchor-uris").await;
    // From the request's Host; forwarded headers are not trusted unless configured.
    let own = app.url(&format!("/v1/steering/hls/{id}?session="));
    let m = master(&app, &id, &[("x-forwarded-host", "evil.example")]).await;
    assert!(steering_uri(&m).starts_with(&own), "{m}");
    let s = reload(&app, &steering_uri(&m), "tencent", 6_000_000).await;
    assert!(s["RELOAD-URI"].as_str().unwrap().starts_with(&own), "{s}");
    let (_, play) = app
        .get(&format!("/v1/streams/{id}/play?protocol=hls&region=tw"))
        .await;
    assert_eq!(
        play["steering"],
        app.url(&format!("/v1/steering/hls/{id}")),
        "{play}"
    );
    app.stop().await;

    // A configured public URL wins; trusted forwarded headers come next.
    let db = TestDb::sqlite();
    let app = builder(&db, Arc::new(ManualClock::new(T0_MS)))
        .config(|c| c.public_url = Some("https://steer.example.com".into()))
        .start()
        .await;
    let id = stream(&app, "anchor-uris").await;
    let m = master(&app, &id, &[]).await;
    assert!(
        steering_uri(&m).starts_with(&format!(
            "https://steer.example.com/v1/steering/hls/{id}?session="
        )),
        "{m}"
    );
    app.stop().await;
    let db = TestDb::sqlite();
    let app = builder(&db, Arc::new(ManualClock::new(T0_MS)))
        .config(|c| c.trust_forwarded = true)
        .start()
        .await;
    let id = stream(&app, "anchor-uris").await;
    let m = master(
        &app,
        &id,
        &[
            ("x-forwarded-host", "edge.example:8443"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert!(
        steering_uri(&m).starts_with(&format!(
            "https://edge.example:8443/v1/steering/hls/{id}?session="
        )),
        "{m}"
    );
    app.stop().await;
}

/// The sequence hls.js sent on a throttled edge (issue: the estimate is the player's, not the
/// pathway's): moved off Tencent, it reported the same stale 1.3 Mbps from Alibaba a second
/// later, and must stay on Alibaba.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_moved_off_a_slow_pathway_stays_on_the_new_one() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0_MS));
    let app = builder(&db, clock.clone()).start().await;
    let id = stream(&app, "anchor-hlsjs").await;
    let settle = app.state.catalog.load().policy.steering.settle_seconds as i64;
    let m = master(&app, &id, &[]).await;
    let mut uri = steering_uri(&m);
    // Its first reload carries hls.js's default estimate: no measurement yet.
    clock.advance_ms(1_000);
    let s = reload(&app, &uri, "tencent", 500_000).await;
    assert_eq!(priority(&s)[0], "tencent", "{s}");
    uri = s["RELOAD-URI"].as_str().unwrap().to_string();
    clock.advance_ms(settle * 1000);
    let s = reload(&app, &uri, "tencent", 1_312_495).await;
    assert_eq!(priority(&s), ["alibaba", "tencent"], "{s}");
    uri = s["RELOAD-URI"].as_str().unwrap().to_string();
    // As long as that estimate may still be Tencent's, it is not Alibaba's.
    for _ in 1..settle {
        clock.advance_ms(1_000);
        let s = reload(&app, &uri, "alibaba", 1_312_495).await;
        assert_eq!(priority(&s)[0], "alibaba", "{s}");
        uri = s["RELOAD-URI"].as_str().unwrap().to_string();
    }
    app.stop().await;
}

/// Steering reloads are QoS: 300 players a whole TTL on Tencent, measuring less than the stream
/// needs, move Tencent behind Alibaba for a new viewer, with no QoS report from any app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reloads_from_a_region_move_new_viewers() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0_MS));
    let app = builder(&db, clock.clone()).start().await;
    let id = stream(&app, "anchor-reloads").await;
    let play = format!("/v1/streams/{id}/play?protocol=hls&region=tw");
    let first = |v: &Value| v["candidates"][0]["provider"].as_str().unwrap().to_string();
    assert_eq!(first(&app.get(&play).await.1), "tencent");
    let mut uris = Vec::new();
    for _ in 0..300 {
        uris.push(steering_uri(&master(&app, &id, &[]).await));
    }
    let ttl = app.state.catalog.load().policy.steering.ttl_seconds as i64;
    clock.advance_ms(ttl * 1000);
    for uri in &uris {
        reload(&app, uri, "tencent", 1_000_000).await;
    }
    let mut moved = false;
    for _ in 0..50 {
        app.state.scorer.refresh();
        if first(&app.get(&play).await.1) == "alibaba" {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "{}", app.get(&play).await.1);
    // A new viewer starts on Alibaba, and its steering keeps it there.
    let m = master(&app, &id, &[]).await;
    assert!(m.contains("PATHWAY-ID=\"alibaba\"\n"), "{m}");
    assert!(
        m.lines()
            .nth(1)
            .unwrap()
            .ends_with("PATHWAY-ID=\"alibaba\""),
        "{m}"
    );
    let s = reload(&app, &steering_uri(&m), "alibaba", 6_000_000).await;
    assert_eq!(priority(&s)[0], "alibaba", "{s}");
    app.stop().await;
}

/// Before a player's URLs expire, its steering answer carries every pathway to freshly signed
/// query parameters (`PATHWAY-CLONES`), and it keeps them from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_refreshes_tokens_before_they_expire() {
    let db = TestDb::sqlite();
    let clock = Arc::new(ManualClock::new(T0_MS));
    let app = builder(&db, clock.clone()).start().await;
    let id = stream(&app, "anchor-tokens").await;
    let m = master(&app, &id, &[]).await;
    let old_secret = m
        .lines()
        .find(|l| l.contains("txSecret="))
        .unwrap()
        .to_string();
    let (expiry, refresh) = {
        let policy = &app.state.catalog.load().policy;
        let e =
            livesteer::steering::rounded_expiry(clock.now_secs(), policy.delivery.url_ttl_seconds);
        (e, policy.steering.token_refresh_seconds as i64)
    };
    let uri = steering_uri(&m);
    let s = reload(&app, &uri, "tencent", 6_000_000).await;
    assert!(s.get("PATHWAY-CLONES").is_none(), "{s}");
    clock.set_ms((expiry - refresh + 1) * 1000);
    let s = reload(&app, &uri, "tencent", 6_000_000).await;
    // The clones first; then the original pathways, the player's own not first, so that a
    // player that takes up clones only when it changes pathway (Video.js) changes.
    assert_eq!(
        priority(&s),
        ["tencent.1", "alibaba.1", "alibaba", "tencent"],
        "{s}"
    );
    let clones = s["PATHWAY-CLONES"].as_array().unwrap();
    assert_eq!(clones.len(), 2, "{s}");
    let tencent = &clones[0];
    assert_eq!(tencent["BASE-ID"], "tencent");
    assert_eq!(tencent["ID"], "tencent.1");
    assert_eq!(
        tencent["URI-REPLACEMENT"]["HOST"], "127.0.0.1",
        "the base pathway's host"
    );
    let params = &tencent["URI-REPLACEMENT"]["PARAMS"];
    let tx_time = params["txTime"].as_str().unwrap();
    let new_expiry = i64::from_str_radix(tx_time, 16).unwrap();
    assert!(new_expiry > expiry, "{params}");
    assert!(!old_secret.contains(params["txSecret"].as_str().unwrap()));
    // The next reload, from the clone, keeps the player on its generation.
    let next = s["RELOAD-URI"].as_str().unwrap();
    clock.advance_ms(2_000);
    let s = reload(&app, next, "tencent.1", 6_000_000).await;
    assert_eq!(
        priority(&s),
        ["tencent.1", "alibaba.1", "tencent", "alibaba"],
        "{s}"
    );
    assert_eq!(s["PATHWAY-CLONES"].as_array().unwrap().len(), 2);
    // Video.js went through Alibaba's original pathway to reach its clone: no failover.
    let s2 = reload(&app, next, "alibaba", 6_000_000).await;
    let via = s2["RELOAD-URI"].as_str().unwrap();
    clock.advance_ms(2_000);
    let s3 = reload(&app, via, "tencent.1", 6_000_000).await;
    assert_eq!(priority(&s3)[0], "tencent.1", "{s3}");
    app.stop().await;
}
