//! Providers' statistics answers: SRS `GET /api/v1/streams` (JSON) and nginx-rtmp's
//! `rtmp_stat` page (XML). Each becomes one [`StreamStat`] per stream the answer lists.

use std::collections::HashMap;

use serde::Deserialize;

/// What a statistics answer says about one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStat {
    /// A publisher is connected.
    pub publishing: bool,
    /// Data flows (nginx-rtmp `active`; SRS: a publisher and a video track).
    pub active: bool,
    /// Ingest bitrate.
    pub recv_kbps: f64,
    /// Video frame rate, when the answer gives one.
    pub frame_rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct SrsAnswer {
    code: i64,
    #[serde(default)]
    streams: Vec<SrsStream>,
}

#[derive(Debug, Deserialize)]
struct SrsStream {
    name: String,
    app: String,
    #[serde(default)]
    kbps: Option<SrsKbps>,
    #[serde(default)]
    publish: Option<SrsPublish>,
    #[serde(default)]
    video: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct SrsKbps {
    #[serde(default)]
    recv_30s: f64,
}

#[derive(Debug, Deserialize)]
struct SrsPublish {
    active: bool,
}

/// Parses SRS's `/api/v1/streams` answer into (app, stream) → stat.
pub fn parse_srs(body: &[u8]) -> Result<HashMap<(String, String), StreamStat>, String> {
    let a: SrsAnswer =
        serde_json::from_slice(body).map_err(|e| format!("SRS streams answer: {e}"))?;
    if a.code != 0 {
        return Err(format!("SRS streams answer has code {}", a.code));
    }
    Ok(a.streams
        .into_iter()
        .map(|s| {
            let publishing = s.publish.as_ref().is_some_and(|p| p.active);
            let has_video = s.video.as_ref().is_some_and(|v| !v.is_null());
            let recv_kbps = s.kbps.map(|k| k.recv_30s).unwrap_or(0.0).max(0.0);
            (
                (s.app, s.name),
                StreamStat {
                    publishing,
                    active: publishing && has_video,
                    recv_kbps,
                    frame_rate: None,
                },
            )
        })
        .collect())
}

/// An XML element: name, text, children. Enough for the stat page, which has no attributes
/// that matter, no namespaces and no mixed content.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn number(&self, name: &str) -> Option<f64> {
        self.child(name)?.text.trim().parse().ok()
    }
}

const MAX_DEPTH: usize = 32;

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Parses a small XML document into its root element.
pub fn parse_xml(text: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        let (before, after) = rest.split_at(lt);
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(before));
        } else if !before.trim().is_empty() {
            return Err("text outside the root element".into());
        }
        let gt = after.find('>').ok_or("unterminated tag (no closing '>')")?;
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let el = stack.pop().ok_or_else(|| format!("unexpected </{name}>"))?;
            if el.name != name.trim() {
                return Err(format!("</{}> closes <{}>", name.trim(), el.name));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None if root.is_none() => root = Some(el),
                None => return Err("more than one root element".into()),
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body.split_whitespace().next().unwrap_or("").to_string();
        if name.is_empty() {
            return Err("empty tag name".into());
        }
        let el = Element {
            name,
            ..Element::default()
        };
        if self_closing {
            match stack.last_mut() {
                Some(parent) => parent.children.push(el),
                None if root.is_none() => root = Some(el),
                None => return Err("more than one root element".into()),
            }
        } else {
            if stack.len() >= MAX_DEPTH {
                return Err(format!("nesting deeper than {MAX_DEPTH}"));
            }
            stack.push(el);
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("<{}> is never closed", open.name));
    }
    root.ok_or_else(|| "no root element".to_string())
}

/// Parses nginx-rtmp's stat page (`rtmp_stat all;`) into (app, stream) → stat. `bw_in` is in
/// bits per second, averaged by nginx-rtmp over its bandwidth interval, so in a stream's first
/// seconds it may still read 0: then `bytes_in` over the stream's `time` (ms) is used.
pub fn parse_nginx_stat(text: &str) -> Result<HashMap<(String, String), StreamStat>, String> {
    let root = parse_xml(text).map_err(|e| format!("nginx-rtmp stat answer: {e}"))?;
    if root.name != "rtmp" {
        return Err(format!(
            "nginx-rtmp stat answer: root element is <{}>, not <rtmp>",
            root.name
        ));
    }
    let mut out = HashMap::new();
    for server in root.children_named("server") {
        for app in server.children_named("application") {
            let app_name = app
                .child("name")
                .map(|n| n.text.trim().to_string())
                .unwrap_or_default();
            let Some(live) = app.child("live") else {
                continue;
            };
            for s in live.children_named("stream") {
                let name = s
                    .child("name")
                    .map(|n| n.text.trim().to_string())
                    .unwrap_or_default();
                let bw_in = s.number("bw_in").unwrap_or(0.0).max(0.0);
                let mut kbps = bw_in / 1000.0;
                if kbps == 0.0 {
                    let bytes = s.number("bytes_in").unwrap_or(0.0);
                    let time_ms = s.number("time").unwrap_or(0.0);
                    if bytes > 0.0 && time_ms >= 1000.0 {
                        kbps = bytes * 8.0 / time_ms;
                    }
                }
                let frame_rate = s
                    .child("meta")
                    .and_then(|m| m.child("video"))
                    .and_then(|v| v.number("frame_rate"));
                out.insert(
                    (app_name.clone(), name),
                    StreamStat {
                        publishing: s.child("publishing").is_some(),
                        active: s.child("active").is_some(),
                        recv_kbps: kbps,
                        frame_rate,
                    },
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_errors_say_why() {
        for (text, want) in [
            ("<rtmp><a></rtmp>", "closes"),
            ("<rtmp>", "never closed"),
            ("</rtmp>", "unexpected"),
            ("hello", "no root"),
            ("<a></a><b></b>", "more than one root"),
            ("<a", "unterminated"),
        ] {
            let e = parse_xml(text).unwrap_err();
            assert!(e.contains(want), "{e} vs {want}");
        }
        assert!(
            parse_nginx_stat("<html></html>")
                .unwrap_err()
                .contains("not <rtmp>")
        );
    }

    #[test]
    fn srs_errors_say_why() {
        assert!(
            parse_srs(b"{\"code\":1001}")
                .unwrap_err()
                .contains("code 1001")
        );
        assert!(parse_srs(b"[]").is_err());
    }
}
