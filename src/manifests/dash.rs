//! MPEG-DASH: the origin's live MPD as `quick-xml` reads it, and `manifest.mpd` written from
//! those events with livesteer's Content Steering.
//!
//! The origin's MPD is kept event by event (every period, adaptation set, representation,
//! segment template and timeline, with all their attributes), except what livesteer writes
//! itself at the MPD level: `BaseURL`, `Location`, `PatchLocation` and `ContentSteering`. Into
//! their place go, per request:
//!
//! - one `<BaseURL serviceLocation="<provider>">` per provider carrying the stream, in the
//!   viewer's play order: the provider's signed DASH play URL resolved against the origin's
//!   own MPD-level `BaseURL` (or the MPD's directory when it has none), its query kept;
//! - a `<Location>`: livesteer's own `manifest.mpd`, so that MPD refreshes come back here;
//! - `<ContentSteering defaultServiceLocation="<first>" queryBeforeStart="true">` with the
//!   absolute URL of `/v1/steering/dash/{id}`, which starts the player's steering session on
//!   the first service location.
//!
//! A `BaseURL` deeper in the document (a period's, an adaptation set's) is kept, and made
//! relative when it is an absolute URL to the origin's own directory, so that it resolves
//! against whichever service location the player is on.
//!
//! The two halves of the document around livesteer's elements are written once per origin
//! fetch; a request writes only its own elements between them.

use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

use super::Manifest;

/// MPD-level elements livesteer writes itself; the origin's are dropped.
const OWN: &[&str] = &["BaseURL", "Location", "PatchLocation", "ContentSteering"];

/// MPD-level elements that come before `BaseURL` in the MPD schema.
const BEFORE_BASE_URL: &[&str] = &["ProgramInformation"];

/// The shortest time an MPD is held, whatever its `minimumUpdatePeriod` says.
const MIN_HOLD: Duration = Duration::from_millis(500);

/// The shortest age at which a live MPD whose refreshes fail is no longer answered.
const MIN_STALE: Duration = Duration::from_millis(1500);

/// An origin's MPD, ready to be written with livesteer's elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashMpd {
    /// The document up to where livesteer's elements go (the declaration, the `MPD` start tag
    /// and any `ProgramInformation`), written.
    head: String,
    /// The rest: periods and everything after them, to the `MPD` end tag.
    tail: String,
    /// The root's namespace prefix (`mpd` for `<mpd:MPD>`), for livesteer's elements.
    prefix: Option<String>,
    /// The origin's MPD-level `BaseURL`, relative to the MPD's URL (`./` when it had none).
    base: String,
    /// `type="dynamic"`: a live MPD.
    pub dynamic: bool,
    /// `minimumUpdatePeriod`: how often players refresh it, and how long it is held.
    pub minimum_update_period: Option<Duration>,
}

impl Manifest for DashMpd {
    const FORMAT: &'static str = "an MPD";

    fn parse(body: &[u8], url: &url::Url) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8 text ({e})"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        parse(text, url)
    }

    fn hold(&self) -> Option<Duration> {
        self.minimum_update_period.map(|d| d.max(MIN_HOLD))
    }

    /// A live MPD two update periods old (at least [`MIN_STALE`]) is behind its origin: players
    /// on it see no new segments and stall.
    fn stale_after(&self) -> Option<Duration> {
        self.dynamic
            .then(|| self.hold().map(|h| (h * 2).max(MIN_STALE)))
            .flatten()
    }
}

/// One service location of a `manifest.mpd`: a provider id and its signed, absolute base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLocation {
    pub id: String,
    pub base_url: String,
}

impl DashMpd {
    /// The reference each provider's DASH play URL is resolved against to give its `BaseURL`:
    /// the origin's MPD-level `BaseURL` relative to the MPD, or `./`.
    pub fn base_reference(&self) -> &str {
        &self.base
    }

    /// `manifest.mpd`: the origin's document with `locations` as its service locations (the
    /// first is the default), `location` (livesteer's own URL of this MPD) for refreshes, and
    /// `steering_uri` as its Content Steering server.
    pub fn write(
        &self,
        locations: &[ServiceLocation],
        steering_uri: &str,
        location: &str,
    ) -> String {
        let mut own = Writer::new(Vec::with_capacity(256 + locations.len() * 256));
        let name = |local: &str| match &self.prefix {
            Some(p) => format!("{p}:{local}"),
            None => local.to_string(),
        };
        let (base_url, location_tag, steering) =
            (name("BaseURL"), name("Location"), name("ContentSteering"));
        let mut element = |tag: &str, attrs: &[(&str, &str)], text: &str| {
            let mut start = BytesStart::new(tag);
            for a in attrs {
                start.push_attribute(*a);
            }
            // Writing to a Vec cannot fail.
            let _ = own.write_event(Event::Start(start));
            let _ = own.write_event(Event::Text(BytesText::new(text)));
            let _ = own.write_event(Event::End(BytesEnd::new(tag)));
        };
        for l in locations {
            element(&base_url, &[("serviceLocation", &l.id)], &l.base_url);
        }
        element(&location_tag, &[], location);
        if let Some(first) = locations.first() {
            element(
                &steering,
                &[
                    ("defaultServiceLocation", &first.id),
                    ("queryBeforeStart", "true"),
                ],
                steering_uri,
            );
        }
        let own = String::from_utf8(own.into_inner()).unwrap_or_default();
        let mut out = String::with_capacity(self.head.len() + own.len() + self.tail.len());
        out.push_str(&self.head);
        out.push_str(&own);
        out.push_str(&self.tail);
        out
    }
}

fn parse(text: &str, url: &url::Url) -> Result<DashMpd, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut head = Writer::new(Vec::with_capacity(512));
    let mut tail = Writer::new(Vec::with_capacity(text.len()));
    // Where the events go: the head until livesteer's place is found, then the tail.
    let mut in_tail = false;
    // Open elements, by local name.
    let mut open: Vec<String> = Vec::new();
    // Inside an MPD-level element livesteer drops.
    let mut dropping = false;
    // Inside a nested `BaseURL`: its text so far (raw, escaped).
    let mut nested_base: Option<String> = None;
    // The text of the origin's first MPD-level `BaseURL`.
    let mut origin_base: Option<String> = None;
    let mut capturing_origin_base = false;
    let mut root: Option<(Option<String>, bool, Option<Duration>)> = None;
    let mut periods = 0usize;
    let mut closed = false;
    let line = |pos: u64| {
        text[..(pos as usize).min(text.len())]
            .lines()
            .count()
            .max(1)
    };
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("unreadable XML at line {}: {e}", line(pos)))?;
        let depth = open.len();
        match &event {
            Event::Eof => break,
            Event::Start(_)
            | Event::Empty(_)
            | Event::Text(_)
            | Event::CData(_)
            | Event::GeneralRef(_)
                if closed =>
            {
                if let Event::Text(t) = &event
                    && t.trim().is_empty()
                {
                    continue;
                }
                return Err(format!("content after </MPD> at line {}", line(pos)));
            }
            _ => {}
        }
        // Elements and text the document's structure decides about.
        match &event {
            Event::Start(s) | Event::Empty(s) => {
                let qname = s.name();
                let local = qname.local_name().as_ref().to_string();
                let empty = matches!(event, Event::Empty(_));
                if dropping {
                    if !empty {
                        open.push(local);
                    }
                    continue;
                }
                if depth == 0 {
                    if local != "MPD" {
                        return Err(format!("the root element is <{local}>, not <MPD>"));
                    }
                    let mut dynamic = false;
                    let mut mup = None;
                    for a in s.attributes() {
                        let a = a.map_err(|e| format!("bad attribute on <MPD>: {e}"))?;
                        let value = quick_xml::escape::unescape(&a.value)
                            .map_err(|e| format!("bad attribute on <MPD>: {e}"))?;
                        match a.key.local_name().as_ref() {
                            "type" => dynamic = value.trim() == "dynamic",
                            "minimumUpdatePeriod" => {
                                mup = Some(duration(value.trim()).ok_or_else(|| {
                                    format!("minimumUpdatePeriod {value:?} is not a duration")
                                })?)
                            }
                            _ => {}
                        }
                    }
                    let prefix = qname.prefix().map(|p| p.as_ref().to_string());
                    root = Some((prefix, dynamic, mup));
                    if empty {
                        return Err("<MPD> has no Period".into());
                    }
                } else if depth == 1 {
                    if !in_tail && !BEFORE_BASE_URL.contains(&local.as_str()) {
                        in_tail = true;
                    }
                    if OWN.contains(&local.as_str()) {
                        if !empty {
                            dropping = true;
                            capturing_origin_base = local == "BaseURL" && origin_base.is_none();
                            if capturing_origin_base {
                                origin_base = Some(String::new());
                            }
                            open.push(local);
                        }
                        continue;
                    }
                    if local == "Period" {
                        periods += 1;
                    }
                } else if local == "BaseURL" && !empty {
                    nested_base = Some(String::new());
                }
                if !empty {
                    open.push(local);
                }
            }
            Event::End(e) => {
                let qname = e.name();
                let local = qname.local_name().as_ref().to_string();
                if open.pop().as_deref() != Some(local.as_str()) {
                    return Err(format!("unexpected </{local}> at line {}", line(pos)));
                }
                if dropping {
                    // The dropped element itself ends back at the MPD level.
                    if open.len() == 1 {
                        dropping = false;
                        capturing_origin_base = false;
                    }
                    continue;
                }
                if open.is_empty() {
                    closed = true;
                }
                if local == "BaseURL"
                    && let Some(raw) = nested_base.take()
                {
                    let text = quick_xml::escape::unescape(&raw)
                        .map_err(|e| format!("bad BaseURL at line {}: {e}", line(pos)))?;
                    let rel = relative(url, &text);
                    let w = if in_tail { &mut tail } else { &mut head };
                    let _ = w.write_event(Event::Text(BytesText::new(&rel)));
                }
            }
            Event::Text(t) if dropping => {
                if capturing_origin_base && let Some(b) = &mut origin_base {
                    b.push_str(t);
                }
                continue;
            }
            Event::GeneralRef(r) if dropping => {
                if capturing_origin_base && let Some(b) = &mut origin_base {
                    b.push('&');
                    b.push_str(r);
                    b.push(';');
                }
                continue;
            }
            Event::Text(t) if nested_base.is_some() => {
                if let Some(b) = &mut nested_base {
                    b.push_str(t);
                }
                continue;
            }
            Event::GeneralRef(r) if nested_base.is_some() => {
                if let Some(b) = &mut nested_base {
                    b.push('&');
                    b.push_str(r);
                    b.push(';');
                }
                continue;
            }
            Event::Text(t) if depth == 0 => {
                if t.trim().is_empty() {
                    continue;
                }
                return Err(format!("text outside <MPD> at line {}", line(pos)));
            }
            _ if dropping => continue,
            // Comments, processing instructions and the declaration are not carried (livesteer
            // writes its own declaration); a document type is refused.
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => continue,
            Event::DocType(_) => return Err("an MPD has no document type".into()),
            _ => {}
        }
        let w = if in_tail { &mut tail } else { &mut head };
        // Whitespace between elements and within tags is not carried: the answer is written
        // compact.
        let event = match event {
            Event::Text(t) if t.trim().is_empty() => continue,
            Event::Start(s) => Event::Start(compact(&s)?),
            Event::Empty(s) => Event::Empty(compact(&s)?),
            other => other,
        };
        let _ = w.write_event(event);
    }
    if let Some(inside) = open.last() {
        return Err(format!("the document ends inside <{inside}>"));
    }
    let Some((prefix, dynamic, minimum_update_period)) = root else {
        return Err("no <MPD> element".into());
    };
    if periods == 0 {
        return Err("<MPD> has no Period".into());
    }
    let base = match origin_base {
        None => "./".to_string(),
        Some(raw) => {
            let text = quick_xml::escape::unescape(&raw)
                .map_err(|e| format!("bad MPD-level BaseURL: {e}"))?;
            let text = text.trim();
            if text.is_empty() || text == "." {
                "./".to_string()
            } else {
                let rel = relative(url, text);
                if super::hls::is_foreign(&rel) {
                    return Err(format!(
                        "its BaseURL {text:?} is on another host, which livesteer cannot serve \
                         per provider"
                    ));
                }
                rel
            }
        }
    };
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    let head = String::from_utf8(head.into_inner()).map_err(|e| e.to_string())?;
    let tail = String::from_utf8(tail.into_inner()).map_err(|e| e.to_string())?;
    Ok(DashMpd {
        head: format!("{decl}{head}"),
        tail,
        prefix,
        base,
        dynamic,
        minimum_update_period,
    })
}

/// `reference` (a `BaseURL`) relative to the directory of the MPD at `mpd` when it is on the
/// MPD's host (`./` for that directory itself, a path from the root outside it), else as
/// written.
fn relative(mpd: &url::Url, reference: &str) -> String {
    let reference = reference.trim();
    let Ok(abs) = mpd.join(reference) else {
        return reference.to_string();
    };
    if abs.origin() != mpd.origin() {
        return reference.to_string();
    }
    let path = mpd.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let mut out = match abs.path().strip_prefix(dir) {
        Some("") => "./".to_string(),
        Some(rest) => rest.to_string(),
        None => abs.path().to_string(),
    };
    if let Some(q) = abs.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A start tag with its attributes as they were (values still escaped), one space apart.
fn compact(s: &BytesStart<'_>) -> Result<BytesStart<'static>, String> {
    let mut out = BytesStart::new(s.name().as_ref().to_string());
    for a in s.attributes() {
        let a = a.map_err(|e| format!("bad attribute on <{}>: {e}", s.name().as_ref()))?;
        out.push_attribute(a);
    }
    Ok(out)
}

/// An `xs:duration` as MPDs use it (`PT2S`, `PT0.5S`, `PT1M30S`, `P1DT2H`); years and months
/// are refused (their length is not fixed).
pub fn duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    if rest.is_empty() || time.is_some_and(str::is_empty) {
        return None;
    }
    let mut secs = 0f64;
    let mut fields = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut next = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let i = units[next..].iter().position(|(u, _)| *u == c)? + next;
            let v: f64 = num.parse().ok()?;
            secs += v * units[i].1;
            num.clear();
            next = i + 1;
        }
        num.is_empty().then_some(())
    };
    fields(date, &[('D', 86_400.0)])?;
    if let Some(t) = time {
        fields(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (secs.is_finite() && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://origin.example:8088/dash/s1.mpd?token=t";

    /// nginx-rtmp's live MPD (`dash on`), as it writes it.
    pub(crate) const NGINX: &str = r#"<?xml version="1.0"?>
<MPD
    type="dynamic"
    xmlns="urn:mpeg:dash:schema:mpd:2011"
    availabilityStartTime="2026-12-02T04:00:00Z"
    publishTime="2026-12-02T04:00:10Z"
    minimumUpdatePeriod="PT1S"
    minBufferTime="PT1S"
    timeShiftBufferDepth="PT6S"
    profiles="urn:hbbtv:dash:profile:isoff-live:2012,urn:mpeg:dash:profile:isoff-live:2011"
    xmlns:xsi="http://www.w3.org/2011/XMLSchema-instance"
    xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 DASH-MPD.xsd">
  <Period start="PT0S" id="dash">
    <AdaptationSet
        id="1"
        segmentAlignment="true"
        maxWidth="320"
        maxHeight="240"
        maxFrameRate="25">
      <Representation
          id="s1_H264"
          mimeType="video/mp4"
          codecs="avc1.42c00d"
          width="320"
          height="240"
          frameRate="25"
          sar="1:1"
          startWithSAP="1"
          bandwidth="300000">
        <SegmentTemplate
            presentationTimeOffset="0"
            timescale="1000"
            media="s1-$Time$.m4v"
            initialization="s1-init.m4v">
          <SegmentTimeline>
             <S t="0" d="1000"/>
             <S t="1000" d="1000"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet
        id="2"
        segmentAlignment="true">
      <AudioChannelConfiguration
          schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
          value="1"/>
      <Representation
          id="s1_AAC"
          mimeType="audio/mp4"
          codecs="mp4a.40.2"
          audioSamplingRate="44100"
          startWithSAP="1"
          bandwidth="64000">
        <SegmentTemplate
            presentationTimeOffset="0"
            timescale="1000"
            media="s1-$Time$.m4a"
            initialization="s1-init.m4a">
          <SegmentTimeline>
             <S t="0" d="1000"/>
             <S t="1000" d="1000"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#;

    fn origin() -> url::Url {
        url::Url::parse(ORIGIN).unwrap()
    }

    fn locations() -> Vec<ServiceLocation> {
        vec![
            ServiceLocation {
                id: "edge-a".into(),
                base_url: "http://a.example/dash/?token=x&e=1".into(),
            },
            ServiceLocation {
                id: "edge-b".into(),
                base_url: "http://b.example/dash/?token=y".into(),
            },
        ]
    }

    #[test]
    fn nginx_rtmp_mpd_gets_service_locations_and_steering() {
        let mpd = DashMpd::parse(NGINX.as_bytes(), &origin()).unwrap();
        assert!(mpd.dynamic);
        assert_eq!(mpd.minimum_update_period, Some(Duration::from_secs(1)));
        assert_eq!(mpd.hold(), Some(Duration::from_secs(1)));
        assert_eq!(mpd.base_reference(), "./");
        let out = mpd.write(
            &locations(),
            "http://ls.example/v1/steering/dash/s1?session=1~eu",
            "http://ls.example/v1/streams/s1/manifest.mpd",
        );
        assert!(
            out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD type=\"dynamic\""),
            "{out}"
        );
        let first_period = out.find("<Period").unwrap();
        let own = &out[..first_period];
        assert!(
            own.ends_with(
                "<BaseURL serviceLocation=\"edge-a\">http://a.example/dash/?token=x&amp;e=1</BaseURL>\
                 <BaseURL serviceLocation=\"edge-b\">http://b.example/dash/?token=y</BaseURL>\
                 <Location>http://ls.example/v1/streams/s1/manifest.mpd</Location>\
                 <ContentSteering defaultServiceLocation=\"edge-a\" queryBeforeStart=\"true\">\
                 http://ls.example/v1/steering/dash/s1?session=1~eu</ContentSteering>"
            ),
            "{own}"
        );
        // Everything of the origin's is there, attribute for attribute.
        for kept in [
            "media=\"s1-$Time$.m4v\"",
            "initialization=\"s1-init.m4a\"",
            "<S t=\"1000\" d=\"1000\"/>",
            "value=\"1\"/>",
            "xsi:schemaLocation=\"urn:mpeg:DASH:schema:MPD:2011 DASH-MPD.xsd\"",
        ] {
            assert!(out.contains(kept), "{kept} missing from {out}");
        }
        assert!(out.trim_end().ends_with("</Period></MPD>"), "{out}");
        // What livesteer wrote is well-formed XML.
        let mut r = quick_xml::Reader::from_str(&out);
        while r.read_event().unwrap() != Event::Eof {}
    }

    #[test]
    fn the_origins_own_steering_and_base_urls_are_replaced() {
        let text = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
  <ProgramInformation><Title>t &amp; u</Title></ProgramInformation>
  <BaseURL serviceLocation="o">http://origin.example:8088/dash/segs/</BaseURL>
  <BaseURL serviceLocation="p">http://other.example/x/</BaseURL>
  <Location>http://origin.example:8088/dash/s1.mpd</Location>
  <ContentSteering defaultServiceLocation="o">http://steer.example/</ContentSteering>
  <Period id="1"><BaseURL>http://origin.example:8088/dash/segs/p1/</BaseURL>
    <AdaptationSet><BaseURL>video/</BaseURL><Representation id="v" bandwidth="1"/></AdaptationSet>
  </Period>
  <Period id="2"><AdaptationSet><BaseURL>http://cdn.elsewhere/a/</BaseURL></AdaptationSet></Period>
</MPD>"#;
        let mpd = DashMpd::parse(text.as_bytes(), &origin()).unwrap();
        assert!(!mpd.dynamic);
        assert_eq!(mpd.hold(), None);
        assert_eq!(mpd.base_reference(), "segs/");
        let out = mpd.write(&locations()[1..], "http://s/", "http://l/");
        assert!(
            out.contains(
                "<ProgramInformation><Title>t &amp; u</Title></ProgramInformation>\
                 <BaseURL serviceLocation=\"edge-b\">"
            ),
            "{out}"
        );
        assert_eq!(out.matches("<BaseURL serviceLocation").count(), 1, "{out}");
        assert_eq!(out.matches("<Location>").count(), 1, "{out}");
        assert_eq!(out.matches("<ContentSteering").count(), 1, "{out}");
        assert!(!out.contains("steer.example"), "{out}");
        // Nested BaseURLs: on the origin made relative, others kept.
        assert!(
            out.contains("<Period id=\"1\"><BaseURL>segs/p1/</BaseURL>"),
            "{out}"
        );
        assert!(out.contains("<BaseURL>video/</BaseURL>"), "{out}");
        assert!(
            out.contains("<BaseURL>http://cdn.elsewhere/a/</BaseURL>"),
            "{out}"
        );
        assert!(out.contains("<Period id=\"2\">"), "{out}");
    }

    #[test]
    fn an_origin_base_url_of_its_own_directory_is_the_mpds_directory() {
        for base in ["http://origin.example:8088/dash/", "./", ".", ""] {
            let text = format!("<MPD><BaseURL>{base}</BaseURL><Period/></MPD>");
            let mpd = DashMpd::parse(text.as_bytes(), &origin()).unwrap();
            assert_eq!(mpd.base_reference(), "./", "{base:?}");
        }
    }

    #[test]
    fn a_prefixed_root_gets_prefixed_elements() {
        let text = r#"<mpd:MPD xmlns:mpd="urn:mpeg:dash:schema:mpd:2011"><mpd:Period/></mpd:MPD>"#;
        let mpd = DashMpd::parse(text.as_bytes(), &origin()).unwrap();
        let out = mpd.write(&locations()[..1], "http://s/", "http://l/");
        assert!(
            out.contains("<mpd:BaseURL serviceLocation=\"edge-a\">")
                && out.contains("<mpd:ContentSteering ")
                && out.contains("</mpd:Location><mpd:ContentSteering"),
            "{out}"
        );
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (body, why) in [
            ("", "no <MPD>"),
            ("not xml at all", "text outside"),
            ("<html><body/></html>", "root element is <html>"),
            ("<MPD><Period></MPD>", "unreadable XML"),
            ("<MPD><Period>", "ends inside <Period>"),
            ("<MPD/>", "no Period"),
            ("<MPD></MPD>", "no Period"),
            (
                "<MPD minimumUpdatePeriod=\"soon\"><Period/></MPD>",
                "minimumUpdatePeriod",
            ),
            ("<MPD><Period/></MPD><MPD/>", "after </MPD>"),
            (
                "<MPD><BaseURL>http://else.example/</BaseURL><Period/></MPD>",
                "another host",
            ),
        ] {
            let err = DashMpd::parse(body.as_bytes(), &origin()).unwrap_err();
            assert!(err.contains(why), "{body:?}: {err}");
        }
        assert!(
            DashMpd::parse(&[0xff, 0xfe], &origin())
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration("PT2S"), Some(Duration::from_secs(2)));
        assert_eq!(duration("PT0.5S"), Some(Duration::from_millis(500)));
        assert_eq!(duration("PT1M30S"), Some(Duration::from_secs(90)));
        assert_eq!(duration("P1DT2H"), Some(Duration::from_secs(93_600)));
        assert_eq!(duration("P0D"), Some(Duration::ZERO));
        for bad in [
            "", "P", "PT", "2S", "PT2", "PTS2", "P1Y", "PT1S1M", "PT1..2S",
        ] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }
}
