use std::sync::Arc;

use super::*;
use crate::streams::StreamState;

const T0: i64 = 1_796_154_934_042;
const NGINX: &str = "http://127.0.0.1:8088/hls";

fn catalog() -> Arc<Catalog> {
    Arc::new(crate::scoring::tests::catalog())
}

fn stream(id: &str) -> Option<Arc<Stream>> {
    (id == "room-7").then(|| {
        Arc::new(Stream {
            id: id.into(),
            anchor_id: "anchor-7".into(),
            region: "tw".into(),
            providers: vec!["local-nginx".into()],
            state: StreamState::Live,
            reason: String::new(),
            started_ms: 0,
            ended_ms: None,
            updated_ms: 0,
        })
    })
}

fn lines(text: &[String]) -> Vec<Report> {
    text.iter().map(|l| parse_line(l).unwrap()).collect()
}

fn run(c: &Collector, catalog: &Arc<Catalog>, text: &[String]) -> (Taken, Vec<Signal>) {
    let cx = Context {
        catalog,
        region: "tw",
        now_ms: T0,
        stream: &stream,
    };
    let mut out = Vec::new();
    let taken = c.take(lines(text), &cx, |s| {
        out.push(s);
        true
    });
    (taken, out)
}

fn rr(sid: &str, sn: u64, t: i64, extra: &str) -> String {
    format!(
        r#"e=rr,rc=200,sf=h,sid="{sid}",sn={sn},ts={},ttfb=20,ttlb=60,url="{NGINX}/room-7-{sn}.ts"{extra}"#,
        T0 + t
    )
}

fn ps(sid: &str, sn: u64, t: i64, sta: char) -> String {
    format!(r#"e=ps,sf=h,sid="{sid}",sn={sn},sta={sta},ts={}"#, T0 + t)
}

fn delivery(s: &Signal) -> (&str, u64, u64, u32, Option<u64>, bool, Option<&str>) {
    match s {
        Signal::Delivery {
            provider,
            played_ms,
            rebuffer_ms,
            rebuffer_count,
            startup_ms,
            error,
            anchor_id,
            ..
        } => (
            provider.as_str(),
            *played_ms,
            *rebuffer_ms,
            *rebuffer_count,
            *startup_ms,
            *error,
            anchor_id.as_deref(),
        ),
        other => panic!("not a delivery: {other:?}"),
    }
}

#[test]
fn hosts_map_to_the_providers_that_play_from_them() {
    let catalog = catalog();
    let idx = HostIndex::build(&catalog);
    let at = |u: &str| {
        idx.lookup(&url::Url::parse(u).unwrap())
            .map(|(p, path)| (p.to_string(), path))
    };
    assert_eq!(
        at("https://play.live.example.com/live/room-7.m3u8?txSecret=1"),
        Some(("tencent".into(), "room-7.m3u8".into()))
    );
    assert_eq!(
        at("http://127.0.0.1:8088/hls/room-7-9.ts"),
        Some(("local-nginx".into(), "room-7-9.ts".into()))
    );
    assert_eq!(at("http://127.0.0.1:8089/hls/room-7-9.ts"), None);
    assert_eq!(at("https://unknown.example/live/x.ts"), None);
    // The path must be under the base, not merely start with it.
    assert_eq!(at("http://127.0.0.1:8088/hlsx/room-7.ts"), None);
    // One index per catalog.
    let c = Collector::default();
    assert!(Arc::ptr_eq(&c.index(&catalog), &c.index(&catalog)));
    assert!(!Arc::ptr_eq(&c.index(&catalog), &c.index(&self::catalog())));
}

#[test]
fn a_session_reports_startup_and_played_time_per_stretch_not_per_line() {
    let catalog = catalog();
    let c = Collector::default();
    // hls.js: the first fragment while starting, playing 800 ms later, a fragment every 2 s.
    let mut body = vec![rr("a", 1, 0, ",sta=s"), ps("a", 2, 800, 'p')];
    for i in 0..14 {
        body.push(rr("a", 3 + i, 800 + 2000 * (i as i64 + 1), ""));
    }
    let (taken, out) = run(&c, &catalog, &body);
    assert_eq!((taken.accepted, taken.unattributed), (16, 0));
    // 28 s played: not yet a stretch.
    assert!(out.is_empty(), "{out:?}");
    let (_, out) = run(&c, &catalog, &[rr("a", 17, 800 + 30_000, "")]);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        delivery(&out[0]),
        (
            "local-nginx",
            30_000,
            0,
            0,
            Some(800),
            false,
            Some("anchor-7")
        )
    );
    // The session goes with it, for the engine to count its stint once.
    assert!(
        matches!(out[0], Signal::Delivery { session: Some(k), .. } if k == crate::signals::session_key("a")),
        "{out:?}"
    );
}

#[test]
fn a_rebuffer_is_timed_to_the_next_state_and_reported_at_its_end() {
    let catalog = catalog();
    let c = Collector::default();
    // Out of order, as players send in parallel; the `ps` lines carry no URL.
    let body = vec![
        ps("b", 4, 5_000, 'p'),
        ps("b", 3, 2_000, 'r'),
        ps("b", 2, 1_000, 'p'),
        rr("b", 1, 0, ",sta=s"),
    ];
    let (taken, out) = run(&c, &catalog, &body);
    assert_eq!(taken.accepted, 4);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        delivery(&out[0]),
        (
            "local-nginx",
            1_000,
            3_000,
            1,
            Some(1_000),
            false,
            Some("anchor-7")
        )
    );
    // A late line adds no time and changes no state.
    let (_, out) = run(&c, &catalog, &[ps("b", 3, 2_000, 'r')]);
    assert!(out.is_empty(), "{out:?}");
    // The stall's own `bsd` on the line that ends it is not counted twice; one from a player
    // that said no stall is.
    let body = vec![
        ps("b", 5, 6_000, 'r'),
        format!("{},bsd=2000", ps("b", 6, 8_000, 'p')),
    ];
    let (_, out) = run(&c, &catalog, &body);
    let d = delivery(&out[0]);
    assert_eq!((d.1, d.2, d.3), (1_000, 2_000, 1));
    let (_, out) = run(
        &c,
        &catalog,
        &[format!("{},bsd=1500", ps("b", 7, 9_000, 'p'))],
    );
    assert_eq!((delivery(&out[0]).2, delivery(&out[0]).3), (1_500, 1));
}

#[test]
fn failed_requests_are_errors_at_once() {
    let catalog = catalog();
    let c = Collector::default();
    for rc in ["404", "0"] {
        let line = rr(&format!("c{rc}"), 1, 0, "").replace("rc=200", &format!("rc={rc}"));
        let (_, out) = run(&c, &catalog, &[line]);
        assert_eq!(out.len(), 1);
        assert!(delivery(&out[0]).5, "rc={rc}");
    }
}

#[test]
fn a_report_with_no_known_provider_is_counted_and_dropped() {
    let catalog = catalog();
    let c = Collector::default();
    let (taken, out) = run(
        &c,
        &catalog,
        &[
            // No session and no URL.
            r#"e=ps,sta=r,ts=1796154934042"#.to_string(),
            // A URL no provider serves.
            r#"e=rr,rc=500,sid="x",url="https://elsewhere.example/a.ts""#.to_string(),
        ],
    );
    assert_eq!((taken.accepted, taken.unattributed), (0, 2));
    assert!(out.is_empty());
}

#[test]
fn a_sessions_reports_before_its_first_request_go_to_that_requests_provider() {
    let catalog = catalog();
    let c = Collector::default();
    // hls.js: `t`, `ps` with `sta=d` and `sta=s`, then its first fragment 400 ms later, playing
    // at 900 ms; the first body holds only what came before the fragment.
    let first = [
        r#"e=t,sf=h,sid="h",sn=0,ts=1796154934042,v=2"#.to_string(),
        ps("h", 1, 0, 'd'),
        ps("h", 2, 100, 's'),
    ];
    let (taken, out) = run(&c, &catalog, &first);
    assert_eq!((taken.accepted, taken.unattributed), (3, 0));
    assert!(out.is_empty(), "{out:?}");
    let (taken, out) = run(
        &c,
        &catalog,
        &[
            rr("h", 3, 500, ",sta=s"),
            ps("h", 4, 900, 'p'),
            ps("h", 5, 20_900, 'e'),
        ],
    );
    assert_eq!((taken.accepted, taken.unattributed), (3, 0));
    let (provider, played, _, _, startup, _, anchor) = delivery(&out[0]);
    assert_eq!(provider, "local-nginx");
    assert_eq!(startup, Some(800), "startup from sta=s to sta=p");
    assert_eq!(played, 20_000);
    assert_eq!(anchor, Some("anchor-7"));
}

#[test]
fn throughput_is_derived_from_timings_where_mtp_is_missing() {
    let catalog = catalog();
    let c = Collector::default();
    // Shaka: no `sta`, no `mtp`; 4 s segments at 2000 kbit/s fetched in 2 s each: 4000 kbit/s.
    let body: Vec<String> = (0..17)
        .map(|i| {
            rr("d", i, 2_000 * i as i64, ",br=2000,d=4000")
                .replace("ttlb=60", "ttlb=2000")
                .replace("sf=h", "sf=d")
        })
        .collect();
    let (_, out) = run(&c, &catalog, &body);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(delivery(&out[0]).1, 30_000);
    match &out[1] {
        Signal::Reload {
            provider,
            covered_ms,
            throughput_bps,
            needed_bps,
            ..
        } => {
            assert_eq!(provider, "local-nginx");
            assert_eq!(*covered_ms, 30_000);
            assert_eq!((*throughput_bps, *needed_bps), (4_000_000, 2_000_000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn stream_from_cid_or_the_url_path() {
    let catalog = catalog();
    let c = Collector::default();
    let line =
        r#"e=rr,rc=503,sid="e",cid="room-7",url="https://play.live.example.com/live/other.m3u8""#
            .to_string();
    let (_, out) = run(&c, &catalog, &[line]);
    assert_eq!(delivery(&out[0]).6, Some("anchor-7"));
    assert_eq!(delivery(&out[0]).0, "tencent");
    let line = format!(r#"e=rr,rc=503,sid="f",url="{NGINX}/room-7_hi/index.m3u8""#);
    let (_, out) = run(&c, &catalog, &[line]);
    assert_eq!(delivery(&out[0]).6, Some("anchor-7"));
    let line = format!(r#"e=rr,rc=503,sid="g",url="{NGINX}/room-8.m3u8""#);
    let (_, out) = run(&c, &catalog, &[line]);
    assert_eq!(delivery(&out[0]).6, None);
}

/// Reports captured from the stock players in Chromium (tests/browser/players.rs, the CMCD scenario,
/// with `LIVESTEER_CMCD_CAPTURE`), verbatim: each line as the player POSTed it, each file one
/// player session playing a live nginx-rtmp stream through an edge at `EDGE`, which the test
/// stands in for local-nginx's host.
const FIXTURES: &[(&str, &str, &str)] = &[
    (
        "hls.js 1.7.4, edge throttled below the bitrate after 7 s",
        include_str!("fixtures/hlsjs-1.7.4-throttled.cmcd"),
        "http://127.0.0.2:33283/hls/",
    ),
    (
        "Shaka 5.2.12 playing HLS",
        include_str!("fixtures/shaka-5.2.12-hls.cmcd"),
        "http://127.0.0.2:33283/hls/",
    ),
    (
        "dash.js 5.2.1 playing DASH, edge throttled below the bitrate after 7 s",
        include_str!("fixtures/dashjs-5.2.1-throttled.cmcd"),
        "http://127.0.0.2:44703/dash/",
    ),
];

/// A fixture's signals, with its edge standing for local-nginx and its stream id known.
fn replay(text: &str, edge: &str) -> (Taken, Vec<Signal>) {
    let catalog = catalog();
    let c = Collector::default();
    let reports: Vec<Report> = text
        .lines()
        .map(|l| parse_line(&l.replace(edge, &format!("{NGINX}/"))).unwrap())
        .collect();
    // The capture's stream, whatever its id.
    let any = |_: &str| stream("room-7");
    let cx = Context {
        catalog: &catalog,
        region: "tw",
        now_ms: T0,
        stream: &any,
    };
    let mut out = Vec::new();
    let taken = c.take(reports, &cx, |s| {
        out.push(s);
        true
    });
    (taken, out)
}

#[test]
fn every_captured_line_parses() {
    for (what, text, _) in FIXTURES {
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            n += 1;
            let r = parse_line(line).unwrap_or_else(|e| panic!("{what}, line {}: {e}", i + 1));
            assert_eq!(r.v, Some(2), "{what}, line {}: not CMCD v2", i + 1);
            assert!(r.sid.is_some(), "{what}, line {}: no sid", i + 1);
        }
        assert!(n >= 10, "{what}: only {n} lines");
    }
}

#[test]
fn a_throttled_hls_js_session_reports_its_startup_and_rebuffering() {
    let (what, text, edge) = FIXTURES[0];
    let (taken, out) = replay(text, edge);
    assert_eq!(taken.unattributed, 0, "{what}");
    assert_eq!(taken.accepted, text.lines().count(), "{what}");
    let deliveries: Vec<_> = out
        .iter()
        .filter(|s| matches!(s, Signal::Delivery { .. }))
        .map(delivery)
        .collect();
    assert!(
        !deliveries.is_empty(),
        "{what}: no delivery signal: {out:?}"
    );
    assert!(
        deliveries.iter().all(|d| d.0 == "local-nginx"),
        "{deliveries:?}"
    );
    let startup = deliveries.iter().find_map(|d| d.4);
    assert!(
        startup.is_some_and(|s| s < 3000),
        "{what}: startup {startup:?} (sta=s to sta=p)"
    );
    let rebuffers: u32 = deliveries.iter().map(|d| d.3).sum();
    let rebuffer_ms: u64 = deliveries.iter().map(|d| d.2).sum();
    assert!(
        rebuffers >= 1 && rebuffer_ms >= 1000,
        "{what}: {deliveries:?}"
    );
}

#[test]
fn a_shaka_session_that_never_says_its_state_plays_while_it_fetches() {
    let (what, text, edge) = FIXTURES[1];
    let (taken, out) = replay(text, edge);
    assert_eq!(taken.unattributed, 0, "{what}");
    // Ten lines over about 3 s: not yet a stretch; the session's end would report it.
    assert!(out.is_empty(), "{what}: {out:?}");
    let more = format!(
        "{text}e=ps,sid=\"bcd17891-28c9-4324-b873-90064332dcdd\",sn=10,sta=e,ts=1796183370000,v=2\n"
    );
    let (_, out) = replay(&more, edge);
    let (provider, played, rebuffer, _, _, error, _) = delivery(&out[0]);
    assert_eq!(provider, "local-nginx");
    assert!(played > 3000, "{what}: played {played} ms");
    assert_eq!((rebuffer, error), (0, false), "{what}");
}

#[test]
fn a_throttled_dash_js_session_starts_cleanly_and_then_stalls() {
    let (what, text, edge) = FIXTURES[2];
    let (taken, out) = replay(text, edge);
    assert_eq!(taken.unattributed, 0, "{what}");
    assert_eq!(taken.accepted, text.lines().count(), "{what}");
    let deliveries: Vec<_> = out
        .iter()
        .filter(|s| matches!(s, Signal::Delivery { .. }))
        .map(delivery)
        .collect();
    // dash.js says `sta=r` and `bsd=(106;v)` while it fills its first buffer: that is startup,
    // about 200 ms of it, not a stretch of its own that mostly stalled. The first stretch runs
    // until the throttle's first noticed stall.
    let (provider, played, rebuffer, _, startup, error, _) = deliveries[0];
    assert_eq!(provider, "local-nginx");
    assert_eq!(startup, Some(212), "{what}: sta=s to sta=p");
    assert!(!error, "{what}");
    assert!(
        played >= 10_000 && rebuffer >= 1000,
        "{what}: the first stretch, {played} ms played and {rebuffer} ms stalled"
    );
    // Then the throttle: seconds of stall.
    let stalled: u64 = deliveries.iter().map(|d| d.2).sum();
    assert!(stalled >= 3000, "{what}: {deliveries:?}");
    // Its `ttfb` epochs are dropped, its `mtp` inner lists read: throughput against `br`.
    assert!(
        out.iter().any(
            |s| matches!(s, Signal::Reload { throughput_bps, needed_bps, .. }
            if *throughput_bps > 0 && *needed_bps == 1_171_000)
        ),
        "{what}: {out:?}"
    );
}
