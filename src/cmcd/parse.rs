//! One CMCD report (CTA-5004, CTA-5004-B) read from its wire forms: an event-mode line, the
//! `CMCD` query parameter, or the four `CMCD-*` request headers. Each is an RFC 8941 structured
//! field dictionary, parsed by `sfv`.
//!
//! The keys livesteer uses are typed; unknown keys and custom keys
//! (named with a hyphenated prefix, `com.example-key`) are ignored.
//! A line that is not a dictionary (broken quoting, a number of more than 15 digits, a bad
//! key) is refused whole. A known key of the wrong type, or with a value no player can mean (an
//! epoch in `ttfb`), is dropped with its reason and the rest of the line is kept.

use sfv::{BareItem, Dictionary, ListEntry, Parser};

/// Longest line read. A real report is a few hundred bytes; a long `url` fits many times over.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Most `,`-separated members a line may have before it is parsed. CMCD defines about 40 keys.
pub const MAX_MEMBERS: usize = 128;

/// Longest plausible time for one request or one stall (`ttfb`, `ttlb`, `bsd`, `d`): 10 minutes.
const MAX_DURATION_MS: i64 = 600_000;
/// Largest plausible bitrate or throughput: 10 Gbit/s, in kbit/s.
const MAX_KBPS: i64 = 10_000_000;
/// Largest plausible buffer or live latency: an hour.
const MAX_BUFFER_MS: i64 = 3_600_000;
/// `ts` window: 2001-09-09 to 2286-11-20 in ms since the epoch.
const TS_RANGE: std::ops::RangeInclusive<i64> = 1_000_000_000_000..=9_999_999_999_999;

/// A CMCD v2 event type (`e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `rr`: a response was received.
    ResponseReceived,
    /// `ps`: the play state changed.
    PlayState,
    /// `e`: the player reported an error.
    Error,
    /// `t`: a time interval passed.
    Interval,
    /// Any other event (`c`, `b`, `m`, …).
    Other,
}

/// One report, typed. Times are in ms, rates in kbit/s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub e: Option<Event>,
    pub ts: Option<i64>,
    pub sn: Option<u64>,
    pub sid: Option<String>,
    pub cid: Option<String>,
    pub url: Option<String>,
    pub nor: Option<String>,
    pub rc: Option<u16>,
    pub ttfb: Option<u64>,
    pub ttlb: Option<u64>,
    pub mtp: Option<u64>,
    pub br: Option<u64>,
    pub bl: Option<u64>,
    /// Buffer starvation since the last report (v1 `bs`).
    pub bs: bool,
    pub bsd: Option<u64>,
    /// The object is needed for startup (v1 `su`).
    pub su: bool,
    /// Play state: `s` starting, `p` playing, `k` seeking, `r` rebuffering, `a` paused,
    /// `w` waiting, `e` ended, `f` fatal error, `q` quit, `d` preloading.
    pub sta: Option<char>,
    /// Streaming format: `d` DASH, `h` HLS, `s` Smooth, `o` other.
    pub sf: Option<char>,
    /// Stream type: `v` VOD, `l` live, `ll` low-latency live (kept as `l`).
    pub st: Option<char>,
    /// Object duration.
    pub d: Option<u64>,
    /// The player's first error code.
    pub ec: Option<String>,
    /// Live latency.
    pub ltc: Option<u64>,
    pub v: Option<u8>,
    /// Keys dropped, with why.
    pub dropped: Vec<(&'static str, &'static str)>,
}

/// Why a line was refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line is {0} bytes, more than the {MAX_LINE_BYTES} allowed")]
    TooLong(usize),
    #[error("line has more than {MAX_MEMBERS} members")]
    TooManyMembers,
    #[error("not a structured field dictionary: {0}")]
    Syntax(String),
    #[error("no CMCD key livesteer reads")]
    Empty,
}

/// The item a key holds: itself, or in an inner list (`bl=(4300;v 4300;a)`) the member marked
/// `v` (video), else the first.
fn item(entry: &ListEntry) -> Option<&BareItem> {
    match entry {
        ListEntry::Item(i) => Some(&i.bare_item),
        ListEntry::InnerList(l) => l
            .items
            .iter()
            .find(|i| i.params.contains_key("v"))
            .or_else(|| l.items.first())
            .map(|i| &i.bare_item),
    }
}

/// A whole number in `range`, rounding a decimal.
fn number(b: &BareItem, range: std::ops::RangeInclusive<i64>) -> Result<i64, &'static str> {
    let n = match b {
        BareItem::Integer(i) => i64::from(*i),
        BareItem::Decimal(d) => f64::from(*d).round() as i64,
        _ => return Err("not a number"),
    };
    if range.contains(&n) {
        Ok(n)
    } else {
        Err("out of range")
    }
}

fn text(b: &BareItem, max: usize) -> Result<String, &'static str> {
    let s = match b {
        BareItem::String(s) => s.as_str(),
        BareItem::Token(t) => t.as_str(),
        _ => return Err("not a string"),
    };
    if s.is_empty() || s.len() > max {
        return Err("empty or too long");
    }
    Ok(s.to_string())
}

fn token_char(b: &BareItem) -> Result<char, &'static str> {
    let s = match b {
        BareItem::Token(t) => t.as_str(),
        BareItem::String(s) => s.as_str(),
        _ => return Err("not a token"),
    };
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_lowercase() => Ok(c),
        (Some('l'), Some('l')) if s == "ll" => Ok('l'),
        _ => Err("not a known token"),
    }
}

fn flag(b: &BareItem) -> Result<bool, &'static str> {
    b.as_boolean().ok_or("not a boolean")
}

/// Reads one event-mode line (or a request-mode dictionary).
pub fn parse_line(line: &str) -> Result<Report, LineError> {
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    if line.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong(line.len()));
    }
    // Counted before parsing, so that a line of thousands of keys costs a scan, not a map.
    if line.bytes().filter(|&b| b == b',').count() >= MAX_MEMBERS {
        return Err(LineError::TooManyMembers);
    }
    let dict: Dictionary = Parser::new(line)
        .parse()
        .map_err(|e| LineError::Syntax(e.to_string()))?;
    let mut r = Report::default();
    let mut known = 0usize;
    for (key, entry) in &dict {
        let key = key.as_str();
        let Some(b) = item(entry) else {
            continue;
        };
        let name: &'static str = match key {
            "e" => "e",
            "ts" => "ts",
            "sn" => "sn",
            "sid" => "sid",
            "cid" => "cid",
            "url" => "url",
            "nor" => "nor",
            "rc" => "rc",
            "ttfb" => "ttfb",
            "ttlb" => "ttlb",
            "mtp" => "mtp",
            "br" => "br",
            "bl" => "bl",
            "bs" => "bs",
            "bsd" => "bsd",
            "su" => "su",
            "sta" => "sta",
            "sf" => "sf",
            "st" => "st",
            "d" => "d",
            "ec" => "ec",
            "ltc" => "ltc",
            "v" => "v",
            // Unknown and custom keys.
            _ => continue,
        };
        known += 1;
        let as_u64 = |range| number(b, range).map(|n| n as u64);
        let res: Result<(), &'static str> = (|| {
            match name {
                "e" => {
                    r.e = Some(match b.as_token().map(|t| t.as_str()) {
                        Some("rr") => Event::ResponseReceived,
                        Some("ps") => Event::PlayState,
                        Some("e") => Event::Error,
                        Some("t") => Event::Interval,
                        Some(_) => Event::Other,
                        None => return Err("not a token"),
                    })
                }
                "ts" => r.ts = Some(number(b, TS_RANGE)?),
                "sn" => r.sn = Some(as_u64(0..=1_000_000_000_000)?),
                "sid" => r.sid = Some(text(b, 64)?),
                "cid" => r.cid = Some(text(b, 128)?),
                "url" => r.url = Some(text(b, 4096)?),
                "nor" => r.nor = Some(text(b, 4096)?),
                "rc" => r.rc = Some(as_u64(0..=599)? as u16),
                "ttfb" => r.ttfb = Some(as_u64(0..=MAX_DURATION_MS)?),
                "ttlb" => r.ttlb = Some(as_u64(0..=MAX_DURATION_MS)?),
                "mtp" => r.mtp = Some(as_u64(0..=MAX_KBPS)?),
                "br" => r.br = Some(as_u64(0..=MAX_KBPS)?),
                "bl" => r.bl = Some(as_u64(0..=MAX_BUFFER_MS)?),
                "bs" => r.bs = flag(b)?,
                "bsd" => r.bsd = Some(as_u64(0..=MAX_DURATION_MS)?),
                "su" => r.su = flag(b)?,
                "sta" => r.sta = Some(token_char(b)?),
                "sf" => r.sf = Some(token_char(b)?),
                "st" => r.st = Some(token_char(b)?),
                "d" => r.d = Some(as_u64(0..=MAX_DURATION_MS)?),
                "ec" => {
                    r.ec = Some(match b {
                        BareItem::Integer(i) => i64::from(*i).to_string(),
                        other => text(other, 64)?,
                    })
                }
                "ltc" => r.ltc = Some(as_u64(0..=MAX_BUFFER_MS)?),
                "v" => r.v = Some(as_u64(1..=9)? as u8),
                _ => {}
            }
            Ok(())
        })();
        if let Err(why) = res {
            r.dropped.push((name, why));
        }
    }
    if known == 0 {
        return Err(LineError::Empty);
    }
    Ok(r)
}

/// Request mode: the `CMCD` query parameter of `query` (URL-encoded, `+` for a space) and the
/// `CMCD-Request`, `CMCD-Object`, `CMCD-Status` and `CMCD-Session` header values, merged into
/// one report. `Ok(None)` when there is no CMCD in either.
pub fn parse_request<'h>(
    query: &str,
    headers: impl IntoIterator<Item = &'h str>,
) -> Result<Option<Report>, LineError> {
    let mut parts: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "CMCD")
        .map(|(_, v)| v.into_owned())
        .collect();
    parts.extend(headers.into_iter().map(str::to_string));
    parts.retain(|p| !p.trim().is_empty());
    if parts.is_empty() {
        return Ok(None);
    }
    parse_line(&parts.join(",")).map(Some)
}

/// The request headers that carry CMCD in header mode.
pub const HEADERS: [&str; 4] = ["cmcd-request", "cmcd-object", "cmcd-status", "cmcd-session"];

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from hls.js 1.7.4, dash.js 5.2.1 and Shaka 5.2.12 in Chromium.
    const HLS_RR: &str = r#"bl=(0),br=(0),e=rr,mtp=(2500),rc=200,sf=h,sid="d3cf43b7-d5e3-43c0-8798-3b004e0faf10",sn=6,st=l,sta=s,ts=1796154934042,ttfb=96,ttlb=97,url="http://127.0.0.1:18411/hls/stream-9.ts",v=2"#;
    const HLS_PS: &str = r#"bl=(1700),br=(0),e=ps,mtp=(1500),sf=h,sid="d3cf43b7-d5e3-43c0-8798-3b004e0faf10",sn=31,st=l,sta=r,ts=1796154959252,v=2"#;
    const DASH_E: &str = r#"ab=(781;v 62;a),bl=(4300;v 4300;a),br=(781;v 62;a),cid="cmcd-capture-live",e=e,ec=25,ltc=9110,mtp=(200;v 300;a),sf=d,sid="0d5a5037-86cf-47b5-ac04-2170d01e8e6b",sn=71,st=l,sta=p,ts=1796155157063,v=2"#;
    const SHAKA_RR: &str = r#"br=(843),e=rr,rc=200,sf=d,sid="dafd190d-8bc6-4f47-90da-9b255e45c44b",sn=4,st=v,ts=1796155233118,ttfb=22,ttlb=56,url="http://127.0.0.1:18411/dash/stream-init.m4v",v=2"#;

    #[test]
    fn hls_js_response_received() {
        let r = parse_line(HLS_RR).unwrap();
        assert_eq!(r.e, Some(Event::ResponseReceived));
        assert_eq!(r.rc, Some(200));
        assert_eq!((r.ttfb, r.ttlb), (Some(96), Some(97)));
        assert_eq!((r.mtp, r.br, r.bl), (Some(2500), Some(0), Some(0)));
        assert_eq!((r.sf, r.st, r.sta), (Some('h'), Some('l'), Some('s')));
        assert_eq!(r.sn, Some(6));
        assert_eq!(r.ts, Some(1796154934042));
        assert_eq!(
            r.url.as_deref(),
            Some("http://127.0.0.1:18411/hls/stream-9.ts")
        );
        assert_eq!(r.v, Some(2));
        assert!(r.dropped.is_empty());
    }

    #[test]
    fn hls_js_rebuffering() {
        let r = parse_line(HLS_PS).unwrap();
        assert_eq!((r.e, r.sta), (Some(Event::PlayState), Some('r')));
        assert_eq!(r.bl, Some(1700));
        assert_eq!(r.url, None);
        assert_eq!(
            r.sid.as_deref(),
            Some("d3cf43b7-d5e3-43c0-8798-3b004e0faf10")
        );
    }

    #[test]
    fn dash_js_error_with_inner_lists() {
        let r = parse_line(DASH_E).unwrap();
        assert_eq!(r.e, Some(Event::Error));
        // The video member of each inner list.
        assert_eq!((r.br, r.bl, r.mtp), (Some(781), Some(4300), Some(200)));
        assert_eq!(r.ec.as_deref(), Some("25"));
        assert_eq!(r.ltc, Some(9110));
        assert_eq!(r.cid.as_deref(), Some("cmcd-capture-live"));
        assert_eq!((r.sf, r.sta), (Some('d'), Some('p')));
    }

    #[test]
    fn shaka_response_received() {
        let r = parse_line(SHAKA_RR).unwrap();
        assert_eq!(
            (r.e, r.rc, r.br),
            (Some(Event::ResponseReceived), Some(200), Some(843))
        );
        assert_eq!(
            (r.ttfb, r.ttlb, r.st, r.sta),
            (Some(22), Some(56), Some('v'), None)
        );
    }

    #[test]
    fn an_epoch_in_ttfb_is_dropped_and_the_rest_kept() {
        let r = parse_line(r#"e=rr,rc=200,ttfb=1796155157063,ttlb=40,sid="s""#).unwrap();
        assert_eq!(r.ttfb, None);
        assert_eq!(r.ttlb, Some(40));
        assert_eq!(r.dropped, [("ttfb", "out of range")]);
    }

    #[test]
    fn wrong_types_are_dropped_with_a_reason() {
        let r = parse_line(r#"rc="200",bs=1,sid=12,sta=rebuffering,e=rr,mtp=?1,v=2"#).unwrap();
        assert_eq!(
            (r.rc, r.bs, r.sid, r.sta, r.mtp),
            (None, false, None, None, None)
        );
        let keys: Vec<_> = r.dropped.iter().map(|d| d.0).collect();
        assert_eq!(keys, ["rc", "bs", "sid", "sta", "mtp"]);
        assert_eq!(r.e, Some(Event::ResponseReceived));
    }

    #[test]
    fn unknown_and_custom_keys_are_ignored() {
        let r = parse_line(r#"com.example-x=5,zz="?",e=t,ts=1796155157063"#).unwrap();
        assert_eq!(r.e, Some(Event::Interval));
        assert!(r.dropped.is_empty());
        assert_eq!(
            parse_line(r#"com.example-x=5,zz=1"#).unwrap_err(),
            LineError::Empty
        );
    }

    #[test]
    fn bad_lines_are_refused() {
        let syntax = LineError::Syntax(String::new());
        for (line, want) in [
            (r#"sid="unterminated,e=rr"#, &syntax),
            (r#"sid="a\qb""#, &syntax),
            ("ts=12345678901234567", &syntax),
            ("e=rr,,rc=200", &syntax),
            ("Upper=1", &syntax),
            ("", &LineError::Empty),
        ] {
            let got = parse_line(line).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(want),
                "{line}: {got:?}"
            );
        }
        // A number sfv reads but no player can mean.
        let r = parse_line("ts=999999999999999,e=t").unwrap();
        assert_eq!(
            (r.ts, r.dropped.as_slice()),
            (None, &[("ts", "out of range")][..])
        );
    }

    #[test]
    fn ten_thousand_keys_are_refused_before_parsing() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("k{i}=1")).collect();
        assert!(matches!(
            parse_line(&keys.join(",")).unwrap_err(),
            LineError::TooLong(_)
        ));
        let short: Vec<&str> = std::iter::repeat_n("a", 10_000).collect();
        let line = short.join(",");
        assert!(line.len() < MAX_LINE_BYTES * 3);
        assert!(matches!(
            parse_line(&line[..MAX_LINE_BYTES.min(line.len())]),
            Err(LineError::TooManyMembers)
        ));
    }

    #[test]
    fn request_mode_v1_query_string() {
        // dash.js's query mode: URL-encoded, `+` for a space.
        let q = "CMCD=ab%3D(781%3Bv+62%3Ba)%2Cbl%3D4300%2Cbr%3D781%2Cbs%2Ccid%3D%22live-1%22%2Cmtp%3D25400%2Cot%3Dv%2Csf%3Dd%2Csid%3D%226e2fb550%22%2Csu%2Ctb%3D6000";
        let r = parse_request(q, []).unwrap().unwrap();
        assert_eq!((r.bl, r.br, r.mtp), (Some(4300), Some(781), Some(25400)));
        assert!(r.bs && r.su);
        assert_eq!(r.cid.as_deref(), Some("live-1"));
        assert_eq!(r.sid.as_deref(), Some("6e2fb550"));
        assert_eq!(parse_request("a=1&b=2", []).unwrap(), None);
    }

    #[test]
    fn request_mode_v1_headers_merge() {
        let r = parse_request(
            "",
            [
                "bl=21300,br=3200,bs,d=4004,dl=18500,mtp=48100,nor=\"..%2F300kbps%2Ftrack.m4v\"",
                "br=3200,d=4004,ot=v",
                "rtp=12000",
                "cid=\"faec5fc2-ac30-11eabb37-0242ac130002\",pr=1.08,sf=d,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=v",
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (r.bl, r.br, r.d, r.mtp),
            (Some(21300), Some(3200), Some(4004), Some(48100))
        );
        assert!(r.bs);
        assert_eq!(r.nor.as_deref(), Some("..%2F300kbps%2Ftrack.m4v"));
        assert_eq!((r.sf, r.st), (Some('d'), Some('v')));
        // A broken header refuses the request's report.
        assert!(parse_request("", ["sid=\"x"]).is_err());
    }
}
