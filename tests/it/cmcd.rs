//! `/v1/cmcd` through the real HTTP server: CMCD event-mode bodies and request-mode reports,
//! the reporter's contract (204, malformed lines counted and the rest kept, 413 past the
//! limits), CORS, and players' reports alone reordering a new viewer's play answer.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::support::{Builder, TestApp, all_providers_dir, test_secrets};
use livesteer::store::testing::TestDb;

const T0: i64 = 1_796_154_934_042;
const CMCD: &str = "application/cmcd";

/// Every vendor enabled, decisions without exploration or hold time.
fn builder(db: &TestDb) -> Builder {
    TestApp::builder(db)
        .providers(all_providers_dir())
        .secrets(test_secrets())
        .policy(|p| {
            p.set("scoring.exploration_rate", 0)
                .set("scoring.hysteresis_hold_seconds", 0)
                .set("steering.move_share", 1)
        })
}

/// A stream in Taiwan and each provider's signed HLS play URL for it.
async fn stream(app: &TestApp, anchor: &str) -> (String, Vec<(String, String)>) {
    let created = app.create_stream(anchor, "tw").await;
    let id = created["stream_id"].as_str().unwrap().to_string();
    let (status, play) = app
        .get(&format!("/v1/streams/{id}/play?region=tw&protocol=hls"))
        .await;
    assert_eq!(status, 200, "{play}");
    let urls = play["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["provider"].as_str().unwrap().to_string(),
                c["url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (id, urls)
}

fn url_of<'u>(urls: &'u [(String, String)], provider: &str) -> &'u str {
    &urls.iter().find(|(p, _)| p == provider).unwrap().1
}

/// A segment URL beside a play URL (`…/<stream>.m3u8?sig` → `…/<stream>-<n>.ts?sig`).
fn segment(play: &str, n: u64) -> String {
    let (path, query) = play.split_once('?').unwrap_or((play, ""));
    format!("{}-{n}.ts?{query}", path.trim_end_matches(".m3u8"))
}

fn rr(sid: &str, sn: u64, t: i64, url: &str, extra: &str) -> String {
    format!(
        r#"e=rr,rc=200,sf=h,sid="{sid}",sn={sn},st=l,ts={},ttfb=30,ttlb=90,url="{url}",v=2{extra}"#,
        T0 + t
    )
}

fn ps(sid: &str, sn: u64, t: i64, sta: char) -> String {
    format!(
        r#"e=ps,sf=h,sid="{sid}",sn={sn},st=l,sta={sta},ts={},v=2"#,
        T0 + t
    )
}

async fn post_lines(app: &TestApp, path: &str, lines: &[String]) -> (u16, Value) {
    let mut body = lines.join("\n");
    body.push('\n');
    app.post_raw(path, CMCD, body).await
}

/// The `livesteer_cmcd_lines_total` series for `outcome` (all tests share the recorder).
async fn lines_counted(app: &TestApp, outcome: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("livesteer_cmcd_lines_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_keeps_its_good_lines_and_counts_the_bad() {
    let db = TestDb::sqlite();
    let app = builder(&db).start().await;
    let (_, urls) = stream(&app, "anchor-cmcd-batch").await;
    let tencent = url_of(&urls, "tencent");
    let before = (
        lines_counted(&app, "accepted").await,
        lines_counted(&app, "malformed").await,
        lines_counted(&app, "unattributed").await,
    );
    let lines = [
        rr("s1", 1, 0, &segment(tencent, 1), ",sta=s"),
        r#"sid="broken,e=rr"#.to_string(),
        ps("s1", 2, 700, 'p'),
        "ts=12345678901234567".to_string(),
        // A provider no file names; a session whose first request is still to come (held).
        rr("s2", 1, 0, "https://elsewhere.example/live/x-1.ts", ""),
        ps("s3", 1, 0, 'r'),
        // An epoch in `ttfb` is dropped; the line is kept.
        rr("s1", 3, 2_700, &segment(tencent, 2), "").replace("ttfb=30", "ttfb=1796154934042"),
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    let resp = app
        .client
        .post(app.url("/v1/cmcd"))
        .header("content-type", CMCD)
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()
            .get("livesteer-cmcd")
            .and_then(|v| v.to_str().ok()),
        Some("accepted=4, unattributed=1, malformed=2")
    );
    let after = (
        lines_counted(&app, "accepted").await,
        lines_counted(&app, "malformed").await,
        lines_counted(&app, "unattributed").await,
    );
    assert!(after.0 - before.0 >= 4.0, "{before:?} {after:?}");
    assert!(after.1 - before.1 >= 2.0, "{before:?} {after:?}");
    assert!(after.2 - before.2 >= 1.0, "{before:?} {after:?}");

    // A body of malformed lines only is refused, naming the first problem.
    let (status, body) = post_lines(&app, "/v1/cmcd", &["sid=\"x".to_string()]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("no_valid_lines"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("line 1"),
        "{body}"
    );
    // `text/plain`, as a beacon may send it, is taken; JSON is not CMCD.
    let line = rr("s4", 1, 0, &segment(tencent, 1), "");
    let (status, _) = app
        .post_raw("/v1/cmcd", "text/plain;charset=UTF-8", line.clone())
        .await;
    assert_eq!(status, 204);
    let (status, body) = app.post_raw("/v1/cmcd", "application/json", "{}").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, body) = app.post_raw("/v1/cmcd", CMCD, "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("empty_report"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_mode_query_and_headers() {
    let db = TestDb::sqlite();
    let app = builder(&db).start().await;
    let (id, urls) = stream(&app, "anchor-cmcd-request").await;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let cmcd = format!(
        r#"br=(781;v 62;a),bs,cid="{id}",nor="{}",sid="q1",su"#,
        enc(&segment(url_of(&urls, "alibaba"), 3))
    );
    // dash.js's query mode: URL-encoded, `+` for a space.
    let q = format!("/v1/cmcd?region=tw&CMCD={}", enc(&cmcd));
    assert!(q.contains("v+62"), "{q}");
    let before = lines_counted(&app, "accepted").await;
    let (status, body) = app.get(&q).await;
    assert_eq!(status, 204, "{body}");
    assert!(lines_counted(&app, "accepted").await > before);
    // Header mode, v1 keys, on a POST with no body.
    let res = app
        .client
        .post(app.url("/v1/cmcd?region=tw"))
        .header("CMCD-Request", "bl=21300,mtp=48100,su")
        .header("CMCD-Object", "br=3200,d=4004,ot=v")
        .header(
            "CMCD-Session",
            format!(r#"cid="{id}",sf=h,sid="h1",st=l,v=1"#),
        )
        .header("CMCD-Status", "bs")
        .send()
        .await
        .unwrap();
    // No URL and a new session: counted as unattributed, still taken.
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .get(app.url("/v1/cmcd"))
        .header("CMCD-Session", "sid=\"unterminated")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_413_with_json() {
    let db = TestDb::sqlite();
    let app = builder(&db).start().await;
    let line = ps("l1", 1, 0, 'p');
    let many: Vec<String> = (0..1001).map(|_| line.clone()).collect();
    let (status, body) = post_lines(&app, "/v1/cmcd", &many).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("batch_too_large"))
    );
    let (status, _) = post_lines(&app, "/v1/cmcd", &many[..1000]).await;
    assert_eq!(status, 204);
    let big = format!("{line}\n{}\n", "a".repeat(1 << 20));
    let (status, body) = app.post_raw("/v1/cmcd", CMCD, big).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    // 10,000 keys on one line: refused, the body's other line kept.
    let keys: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
    let (status, _) = post_lines(&app, "/v1/cmcd", &[keys.join(","), line]).await;
    assert_eq!(status, 204);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_a_page_post_reports() {
    let db = TestDb::sqlite();
    let app = builder(&db).start().await;
    let page = "https://player.example";
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/v1/cmcd"))
        .header("origin", page)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let h = |res: &reqwest::Response, name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h(&res, "access-control-allow-origin").as_deref(), Some("*"));
    assert!(
        h(&res, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        h(&res, "access-control-allow-headers").as_deref(),
        Some("content-type")
    );
    let res = app
        .client
        .post(app.url("/v1/cmcd"))
        .header("origin", page)
        .header("content-type", CMCD)
        .body(format!("{}\n", ps("c1", 1, 0, 'p')))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(h(&res, "access-control-allow-origin").as_deref(), Some("*"));
    app.stop().await;
}

/// Polls until `f` holds (the signal consumer applies signals within a tenth of a second).
async fn eventually<F: AsyncFnMut() -> bool>(mut f: F) -> bool {
    for _ in 0..50 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_providers_reports_lower_its_rank_for_new_viewers() {
    let db = TestDb::sqlite();
    let app = builder(&db).start().await;
    let (id, urls) = stream(&app, "anchor-cmcd-rank").await;
    let play = format!("/v1/streams/{id}/play?region=tw&protocol=hls");
    let first = async || app.get(&play).await.1["candidates"][0]["provider"].clone();
    assert_eq!(first().await, "tencent");
    let (tencent, alibaba) = (url_of(&urls, "tencent"), url_of(&urls, "alibaba"));

    // Viewers on a throttled Tencent: each starts, plays 9 s, stalls 3 s (hls.js `ps` lines,
    // no URL), and reports a low measured throughput. Lines in parallel, out of order.
    let mut lines = Vec::new();
    for v in 0..150 {
        let sid = format!("t{v}");
        lines.push(ps(&sid, 4, 13_000, 'p'));
        lines.push(ps(&sid, 3, 10_000, 'r'));
        lines.push(rr(
            &sid,
            2,
            4_000,
            &segment(tencent, 2),
            ",mtp=(300),br=(2000)",
        ));
        lines.push(ps(&sid, 1, 1_000, 'p'));
        lines.push(rr(
            &sid,
            0,
            0,
            &segment(tencent, 1),
            ",sta=s,mtp=(300),br=(2000)",
        ));
    }
    // Viewers on Alibaba play 30 s smoothly.
    for v in 0..50 {
        let sid = format!("a{v}");
        lines.push(rr(&sid, 0, 0, &segment(alibaba, 1), ",sta=s,br=(2000)"));
        lines.push(ps(&sid, 1, 500, 'p'));
        for n in 0..8 {
            let t = 500 + 4_000 * (n + 1);
            lines.push(rr(
                &sid,
                2 + n as u64,
                t,
                &segment(alibaba, 2 + n as u64),
                ",mtp=(9000)",
            ));
        }
    }
    // Each body carries a malformed line too: refused, and the rest is kept.
    for chunk in lines.chunks(999) {
        let mut body = chunk.to_vec();
        body.insert(body.len() / 2, r#"e=rr,sid="broken"#.to_string());
        let (status, body) = post_lines(&app, "/v1/cmcd?region=tw", &body).await;
        assert_eq!(status, 204, "{body}");
    }
    let ok = eventually(async || first().await == "alibaba").await;
    assert!(ok, "play still starts on {}", first().await);
    app.stop().await;
}
