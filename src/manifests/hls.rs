//! HLS: the origin's playlist as `m3u8-rs` parses it, and `master.m3u8` written from that model
//! once per pathway.
//!
//! The origin's multivariant playlist (its ladder: variants, I-frame variants, `EXT-X-MEDIA`
//! rendition groups, session data and keys) is kept with every attribute, the ones `m3u8-rs`
//! knows by name and the rest (`STABLE-VARIANT-ID`, `VIDEO-RANGE`, `SCORE`, …) alike. Each
//! pathway (a provider carrying the stream) gets a copy: its variants carry
//! `PATHWAY-ID="<provider>"`, every URI is that provider's, signed, and every rendition group is
//! that pathway's own (`GROUP-ID="<group>@<provider>"`), so that a player moving to another
//! pathway moves its audio and subtitles too. The lines are written here from the parsed model,
//! in a fixed order, never by editing the origin's text.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use m3u8_rs::{
    AlternativeMedia, ClosedCaptionGroupId, MasterPlaylist, QuotedOrUnquoted, SessionDataField,
    VariantStream,
};

use super::Manifest;
use crate::steering::Candidate;

/// What an origin answered for a stream's HLS URL.
#[derive(Debug, Clone, PartialEq)]
pub enum HlsPlaylist {
    /// A multivariant playlist: the stream's ladder.
    Ladder(Box<Ladder>),
    /// A media playlist: one rendition, no ladder.
    Media,
}

/// An origin's multivariant playlist, its references relative to the origin's playlist URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    playlist: MasterPlaylist,
    /// What [`Ladder::references`] answers, found once.
    references: Vec<String>,
    /// One pathway's copy of the renditions and variants, written once when the playlist is
    /// read, with holes for the pathway's id and signed URIs; `None` for a playlist whose text
    /// holds a NUL (the holes' mark), which is written afresh per pathway.
    template: Option<Vec<Piece>>,
}

/// A piece of a pathway's copy of the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Written as is.
    Text(String),
    /// The pathway id, as [`clean`] writes it.
    Id,
    /// The pathway's URI for the reference of that index in [`Ladder::references`], as
    /// [`clean`] writes it.
    Uri(usize),
}

/// What marks a hole in a template: `\0P\0` for the pathway id, `\0U<index>\0` for a URI.
const HOLE: char = '\0';

/// The pieces of one pathway's copy of `playlist`'s renditions and variants.
fn template(playlist: &MasterPlaylist, references: &[String]) -> Option<Vec<Piece>> {
    let holes = Named {
        id: format!("{HOLE}P{HOLE}"),
        uris: references
            .iter()
            .enumerate()
            .map(|(i, r)| (r.clone(), format!("{HOLE}U{i}{HOLE}")))
            .collect(),
    };
    let mut plain = String::new();
    let none = Named {
        id: String::new(),
        uris: HashMap::new(),
    };
    copy(&mut plain, playlist, &none);
    if plain.contains(HOLE) {
        return None;
    }
    let mut text = String::new();
    copy(&mut text, playlist, &holes);
    let mut pieces = Vec::new();
    for (i, part) in text.split(HOLE).enumerate() {
        if i % 2 == 0 {
            if !part.is_empty() {
                pieces.push(Piece::Text(part.to_string()));
            }
        } else if part == "P" {
            pieces.push(Piece::Id);
        } else {
            pieces.push(Piece::Uri(part.strip_prefix('U')?.parse().ok()?));
        }
    }
    Some(pieces)
}

/// One pathway's copy of the renditions and variants of `p`.
fn copy(out: &mut String, p: &MasterPlaylist, path: &Named) {
    for m in &p.alternatives {
        media(out, m, path);
    }
    for v in p.variants.iter().filter(|v| !v.is_i_frame) {
        variant(out, v, path);
    }
    for v in p.variants.iter().filter(|v| v.is_i_frame) {
        variant(out, v, path);
    }
}

/// Tags `m3u8-rs` parses by name in a multivariant playlist: one left among the unknown tags
/// is one it could not read.
const MASTER_TAGS: &[&str] = &[
    "X-STREAM-INF",
    "X-I-FRAME-STREAM-INF",
    "X-MEDIA",
    "X-SESSION-DATA",
    "X-SESSION-KEY",
    "X-START",
];

impl Manifest for HlsPlaylist {
    const FORMAT: &'static str = "an M3U8 playlist";

    fn parse(body: &[u8], url: &url::Url) -> Result<Self, String> {
        let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8 text ({e})"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if !text.starts_with("#EXTM3U") {
            return Err("it does not start with #EXTM3U".into());
        }
        let (rest, playlist) = m3u8_rs::parse_playlist(text.as_bytes())
            .map_err(|e| format!("unreadable playlist ({e:?})"))?;
        if !rest.iter().all(u8::is_ascii_whitespace) {
            let line = text[..text.len() - rest.len()].lines().count() + 1;
            return Err(format!("unreadable playlist from line {line}"));
        }
        match playlist {
            m3u8_rs::Playlist::MediaPlaylist(media) => {
                if media.target_duration == 0 {
                    return Err("media playlist without #EXT-X-TARGETDURATION".into());
                }
                Ok(HlsPlaylist::Media)
            }
            m3u8_rs::Playlist::MasterPlaylist(master) => {
                Ladder::new(master, url).map(|l| HlsPlaylist::Ladder(Box::new(l)))
            }
        }
    }
}

impl Ladder {
    /// Checks a parsed multivariant playlist and makes its references relative to `url` (the
    /// origin playlist's): a reference on another host is left absolute, and passed through
    /// unsigned.
    fn new(mut playlist: MasterPlaylist, url: &url::Url) -> Result<Ladder, String> {
        if let Some(bad) = playlist
            .unknown_tags
            .iter()
            .find(|t| MASTER_TAGS.contains(&t.tag.as_str()))
        {
            return Err(format!(
                "malformed #EXT-{}:{}",
                bad.tag,
                bad.rest.as_deref().unwrap_or("")
            ));
        }
        // livesteer writes its own steering tag; the origin's pathways (if it has any) are
        // reduced to its first, which livesteer replicates on its own.
        playlist
            .unknown_tags
            .retain(|t| t.tag != "X-CONTENT-STEERING");
        let first_pathway = playlist
            .variants
            .first()
            .and_then(|v| other(v, "PATHWAY-ID"));
        playlist
            .variants
            .retain(|v| other(v, "PATHWAY-ID") == first_pathway);
        for v in &mut playlist.variants {
            if let Some(others) = &mut v.other_attributes {
                others.remove("PATHWAY-ID");
            }
        }
        if !playlist.variants.iter().any(|v| !v.is_i_frame) {
            return Err("multivariant playlist without a variant".into());
        }
        for v in &mut playlist.variants {
            if v.uri.trim().is_empty() {
                return Err(format!("variant of BANDWIDTH {} has no URI", v.bandwidth));
            }
            v.uri = relative(url, &v.uri);
        }
        for m in &mut playlist.alternatives {
            if let Some(uri) = &mut m.uri {
                *uri = relative(url, uri);
            }
        }
        for d in &mut playlist.session_data {
            if let SessionDataField::Uri(uri) = &mut d.field {
                *uri = relative(url, uri);
            }
        }
        for k in &mut playlist.session_key {
            if let Some(uri) = &mut k.0.uri {
                *uri = relative(url, uri);
            }
        }
        let references = references(&playlist);
        let template = template(&playlist, &references);
        Ok(Ladder {
            playlist,
            references,
            template,
        })
    }

    /// Every reference to sign on each pathway (variants, I-frame variants, renditions, session
    /// data and keys), once each, in order; references on other hosts are not among them.
    pub fn references(&self) -> &[String] {
        &self.references
    }
}

fn references(p: &MasterPlaylist) -> Vec<String> {
    let all = p
        .variants
        .iter()
        .map(|v| v.uri.as_str())
        .chain(p.alternatives.iter().filter_map(|m| m.uri.as_deref()))
        .chain(p.session_data.iter().filter_map(|d| match &d.field {
            SessionDataField::Uri(u) => Some(u.as_str()),
            SessionDataField::Value(_) => None,
        }))
        .chain(p.session_key.iter().filter_map(|k| k.0.uri.as_deref()));
    let mut seen = BTreeSet::new();
    all.filter(|r| !is_foreign(r) && seen.insert(*r))
        .map(str::to_string)
        .collect()
}

/// One pathway of a `master.m3u8`: a provider id and every reference of the ladder
/// ([`Ladder::references`]), in the same order, as that provider's signed, absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pathway {
    pub id: String,
    pub uris: Vec<std::sync::Arc<str>>,
}

impl Pathway {
    /// The pathway's URI for the reference of index `i`, or the reference itself.
    fn uri_at<'a>(&'a self, references: &'a [String], i: usize) -> &'a str {
        self.uris
            .get(i)
            .map_or(references[i].as_str(), |u| u.as_ref())
    }

    /// The pathway's URI for `reference`, or `reference` itself (one on another host).
    fn uri<'a>(&'a self, references: &'a [String], reference: &'a str) -> &'a str {
        references
            .iter()
            .position(|r| r == reference)
            .map_or(reference, |i| self.uri_at(references, i))
    }

    /// The same pathway with its URIs by reference.
    fn named(&self, references: &[String]) -> Named {
        Named {
            id: self.id.clone(),
            uris: references
                .iter()
                .enumerate()
                .map(|(i, r)| (r.clone(), self.uri_at(references, i).to_string()))
                .collect(),
        }
    }
}

/// A pathway with its URIs by reference: what a copy of the ladder is written from.
struct Named {
    id: String,
    uris: HashMap<String, String>,
}

impl Named {
    fn uri<'a>(&'a self, reference: &'a str) -> &'a str {
        self.uris.get(reference).map_or(reference, String::as_str)
    }
}

/// The `#EXT-X-CONTENT-STEERING` line: livesteer's steering server, and the pathway a player
/// starts on.
fn steering_tag(out: &mut String, steering_uri: &str, first: &str) {
    let _ = writeln!(
        out,
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"{}\",PATHWAY-ID=\"{}\"",
        clean(steering_uri),
        clean(first)
    );
}

/// `master.m3u8` from the origin's ladder: livesteer's steering tag, the origin's playlist-wide
/// tags, and per pathway, in order, its copy of every rendition and variant. Session data and
/// keys are the first pathway's.
pub fn replicate(ladder: &Ladder, steering_uri: &str, pathways: &[Pathway]) -> String {
    let p = &ladder.playlist;
    let mut out = String::with_capacity(256 + pathways.len() * 512 * p.variants.len().max(1));
    out.push_str("#EXTM3U\n");
    let Some(first) = pathways.first() else {
        return out;
    };
    steering_tag(&mut out, steering_uri, &first.id);
    if let Some(v) = p.version {
        let _ = writeln!(out, "#EXT-X-VERSION:{v}");
    }
    if p.independent_segments {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    if let Some(s) = &p.start {
        let _ = write!(out, "#EXT-X-START:TIME-OFFSET={}", s.time_offset);
        if s.precise == Some(true) {
            out.push_str(",PRECISE=YES");
        }
        others(&mut out, Some(&s.other_attributes), &[]);
        out.push('\n');
    }
    for t in &p.unknown_tags {
        let _ = writeln!(out, "{}", clean(&t.to_string()));
    }
    for d in &p.session_data {
        let _ = write!(out, "#EXT-X-SESSION-DATA:DATA-ID=\"{}\"", clean(&d.data_id));
        match &d.field {
            SessionDataField::Value(v) => quoted(&mut out, "VALUE", v),
            SessionDataField::Uri(u) => quoted(&mut out, "URI", first.uri(&ladder.references, u)),
        }
        if let Some(l) = &d.language {
            quoted(&mut out, "LANGUAGE", l);
        }
        others(&mut out, d.other_attributes.as_ref(), &[]);
        out.push('\n');
    }
    for k in &p.session_key {
        let k = &k.0;
        let _ = write!(
            out,
            "#EXT-X-SESSION-KEY:METHOD={}",
            clean(&k.method.to_string())
        );
        if let Some(u) = &k.uri {
            quoted(&mut out, "URI", first.uri(&ladder.references, u));
        }
        if let Some(iv) = &k.iv {
            let _ = write!(out, ",IV={}", clean(iv));
        }
        if let Some(f) = &k.keyformat {
            quoted(&mut out, "KEYFORMAT", f);
        }
        if let Some(f) = &k.keyformatversions {
            quoted(&mut out, "KEYFORMATVERSIONS", f);
        }
        out.push('\n');
    }
    for path in pathways {
        match &ladder.template {
            Some(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Id => out.push_str(&clean(&path.id)),
                        Piece::Uri(i) => {
                            out.push_str(&clean(path.uri_at(&ladder.references, *i)));
                        }
                    }
                }
            }
            None => copy(&mut out, p, &path.named(&ladder.references)),
        }
    }
    out
}

/// A multivariant playlist with one variant per pathway (provider), `bandwidth_bps` each: what
/// `master.m3u8` is when the origin has no ladder (it answers a media playlist).
pub fn single_variant(candidates: &[Candidate], steering_uri: &str, bandwidth_bps: u64) -> String {
    let mut out = String::from("#EXTM3U\n");
    if let Some(first) = candidates.first() {
        steering_tag(&mut out, steering_uri, &first.provider);
    }
    for c in candidates {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth_bps},PATHWAY-ID=\"{}\"\n{}\n",
            clean(&c.provider),
            clean(&c.url)
        );
    }
    out
}

/// A rendition group of one pathway.
fn group(id: &str, pathway: &Named) -> String {
    format!("{id}@{}", pathway.id)
}

fn media(out: &mut String, m: &AlternativeMedia, path: &Named) {
    use m3u8_rs::AlternativeMediaType as T;
    let _ = write!(
        out,
        "#EXT-X-MEDIA:TYPE={}",
        clean(&m.media_type.to_string())
    );
    if let Some(u) = &m.uri
        && m.media_type != T::ClosedCaptions
    {
        quoted(out, "URI", path.uri(u));
    }
    quoted(out, "GROUP-ID", &group(&m.group_id, path));
    if let Some(l) = &m.language {
        quoted(out, "LANGUAGE", l);
    }
    if let Some(l) = &m.assoc_language {
        quoted(out, "ASSOC-LANGUAGE", l);
    }
    quoted(out, "NAME", &m.name);
    if m.default {
        out.push_str(",DEFAULT=YES");
    }
    if m.autoselect {
        out.push_str(",AUTOSELECT=YES");
    }
    if m.forced && m.media_type == T::Subtitles {
        out.push_str(",FORCED=YES");
    }
    if let Some(i) = &m.instream_id {
        quoted(out, "INSTREAM-ID", &i.to_string());
    }
    if let Some(c) = &m.characteristics {
        quoted(out, "CHARACTERISTICS", c);
    }
    if let Some(c) = &m.channels {
        quoted(out, "CHANNELS", c);
    }
    others(out, m.other_attributes.as_ref(), &[]);
    out.push('\n');
}

fn variant(out: &mut String, v: &VariantStream, path: &Named) {
    out.push_str(if v.is_i_frame {
        "#EXT-X-I-FRAME-STREAM-INF:"
    } else {
        "#EXT-X-STREAM-INF:"
    });
    let _ = write!(out, "BANDWIDTH={}", v.bandwidth);
    if let Some(b) = v.average_bandwidth {
        let _ = write!(out, ",AVERAGE-BANDWIDTH={b}");
    }
    if let Some(c) = &v.codecs {
        quoted(out, "CODECS", c);
    }
    if let Some(r) = &v.resolution {
        let _ = write!(out, ",RESOLUTION={r}");
    }
    if let Some(f) = v.frame_rate {
        let _ = write!(out, ",FRAME-RATE={f:.3}");
    }
    if let Some(h) = &v.hdcp_level {
        let _ = write!(out, ",HDCP-LEVEL={}", clean(&h.to_string()));
    }
    if let Some(g) = &v.video {
        quoted(out, "VIDEO", &group(g, path));
    }
    if !v.is_i_frame {
        if let Some(g) = &v.audio {
            quoted(out, "AUDIO", &group(g, path));
        }
        if let Some(g) = &v.subtitles {
            quoted(out, "SUBTITLES", &group(g, path));
        }
        match &v.closed_captions {
            Some(ClosedCaptionGroupId::GroupId(g)) => {
                quoted(out, "CLOSED-CAPTIONS", &group(g, path))
            }
            Some(ClosedCaptionGroupId::None) => out.push_str(",CLOSED-CAPTIONS=NONE"),
            Some(ClosedCaptionGroupId::Other(o)) => {
                let _ = write!(out, ",CLOSED-CAPTIONS={}", clean(o));
            }
            None => {}
        }
    }
    others(out, v.other_attributes.as_ref(), &["PATHWAY-ID", "URI"]);
    if v.is_i_frame {
        quoted(out, "URI", path.uri(&v.uri));
    }
    quoted(out, "PATHWAY-ID", &path.id);
    out.push('\n');
    if !v.is_i_frame {
        out.push_str(&clean(path.uri(&v.uri)));
        out.push('\n');
    }
}

/// `,NAME="value"`.
fn quoted(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, ",{name}=\"{}\"", clean(value));
}

/// The attributes `m3u8-rs` does not know by name, sorted by name (the origin's order is not
/// kept), less `skip`.
fn others(out: &mut String, attrs: Option<&HashMap<String, QuotedOrUnquoted>>, skip: &[&str]) {
    let Some(attrs) = attrs else { return };
    let mut names: Vec<&String> = attrs
        .keys()
        .filter(|k| !skip.contains(&k.as_str()))
        .collect();
    names.sort();
    for name in names {
        match &attrs[name] {
            QuotedOrUnquoted::Quoted(v) => quoted(out, &clean(name), v),
            QuotedOrUnquoted::Unquoted(v) => {
                let _ = write!(out, ",{}={}", clean(name), clean(v));
            }
        }
    }
}

/// A value with what would end its line or its quoted string taken out.
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n', '"']) {
        s.replace(['\r', '\n', '"'], "").into()
    } else {
        s.into()
    }
}

/// An unknown attribute's value, as written.
fn other(v: &VariantStream, name: &str) -> Option<String> {
    v.other_attributes
        .as_ref()
        .and_then(|a| a.get(name))
        .map(|a| a.as_str().to_string())
}

/// A reference on another host than the origin's, or with a scheme of its own.
pub(super) fn is_foreign(reference: &str) -> bool {
    reference.starts_with("//") || url::Url::parse(reference).is_ok()
}

/// `reference` relative to `base` when it is on `base`'s host (an absolute URI the origin wrote
/// to itself), else as written.
fn relative(base: &url::Url, reference: &str) -> String {
    let reference = reference.trim();
    if !is_foreign(reference) {
        return reference.to_string();
    }
    match base.join(reference) {
        Ok(abs) if abs.origin() == base.origin() => base
            .make_relative(&abs)
            .unwrap_or_else(|| abs.path().to_string()),
        _ => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://origin.example:8088/hls/s1.m3u8?token=t";

    /// An origin ladder: three variants, an audio group of two languages, a subtitle group,
    /// an I-frame variant, attributes m3u8-rs has no name for, and an absolute URI to itself.
    pub(crate) const LADDER: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"s1_audio_en/index.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"fr\",NAME=\"Français\",AUTOSELECT=YES,CHANNELS=\"2\",URI=\"s1_audio_fr/index.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=NO,AUTOSELECT=YES,URI=\"s1_subs_en/index.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=5000000,AVERAGE-BANDWIDTH=4500000,CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=1920x1080,FRAME-RATE=30.000,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=NONE,STABLE-VARIANT-ID=\"hi\",VIDEO-RANGE=SDR
s1_hi/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2200000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=NONE,STABLE-VARIANT-ID=\"mid\",VIDEO-RANGE=SDR
http://origin.example:8088/hls/s1_mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=NONE,STABLE-VARIANT-ID=\"lo\"
s1_lo/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,CODECS=\"avc1.640028\",RESOLUTION=1920x1080,URI=\"s1_hi/iframes.m3u8\"
";

    fn ladder(text: &str) -> Ladder {
        match HlsPlaylist::parse(text.as_bytes(), &url::Url::parse(ORIGIN).unwrap()) {
            Ok(HlsPlaylist::Ladder(l)) => *l,
            other => panic!("{other:?}"),
        }
    }

    fn pathway(id: &str, ladder: &Ladder) -> Pathway {
        Pathway {
            id: id.into(),
            uris: ladder
                .references()
                .iter()
                .map(|r| format!("https://{id}.example/hls/{r}?sig={id}").into())
                .collect(),
        }
    }

    #[test]
    fn the_template_writes_what_each_copy_would() {
        let l = ladder(LADDER);
        assert!(l.template.is_some());
        let paths = [pathway("a", &l), pathway("b", &l)];
        let uri = "https://steer.example/v1/steering/hls/s1?session=x";
        let unprepared = Ladder {
            template: None,
            ..l.clone()
        };
        assert_eq!(
            replicate(&l, uri, &paths),
            replicate(&unprepared, uri, &paths)
        );
    }

    #[test]
    fn the_ladder_is_replicated_per_pathway_with_every_attribute() {
        let l = ladder(LADDER);
        assert_eq!(
            l.references(),
            [
                "s1_hi/index.m3u8",
                "s1_mid/index.m3u8",
                "s1_lo/index.m3u8",
                "s1_hi/iframes.m3u8",
                "s1_audio_en/index.m3u8",
                "s1_audio_fr/index.m3u8",
                "s1_subs_en/index.m3u8",
            ]
        );
        let paths = [pathway("a", &l), pathway("b", &l)];
        let m = replicate(
            &l,
            "https://steer.example/v1/steering/hls/s1?session=x",
            &paths,
        );
        let mut expected = String::from(
            "#EXTM3U
#EXT-X-CONTENT-STEERING:SERVER-URI=\"https://steer.example/v1/steering/hls/s1?session=x\",PATHWAY-ID=\"a\"
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
",
        );
        for p in ["a", "b"] {
            let u = |r: &str| format!("https://{p}.example/hls/{r}?sig={p}");
            expected.push_str(&format!(
                "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"{}\",GROUP-ID=\"aud@{p}\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"
#EXT-X-MEDIA:TYPE=AUDIO,URI=\"{}\",GROUP-ID=\"aud@{p}\",LANGUAGE=\"fr\",NAME=\"Français\",AUTOSELECT=YES,CHANNELS=\"2\"
#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"{}\",GROUP-ID=\"subs@{p}\",LANGUAGE=\"en\",NAME=\"English\",AUTOSELECT=YES
#EXT-X-STREAM-INF:BANDWIDTH=5000000,AVERAGE-BANDWIDTH=4500000,CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=1920x1080,FRAME-RATE=30.000,AUDIO=\"aud@{p}\",SUBTITLES=\"subs@{p}\",CLOSED-CAPTIONS=NONE,STABLE-VARIANT-ID=\"hi\",VIDEO-RANGE=SDR,PATHWAY-ID=\"{p}\"
{}
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2200000,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"aud@{p}\",SUBTITLES=\"subs@{p}\",CLOSED-CAPTIONS=NONE,STABLE-VARIANT-ID=\"mid\",VIDEO-RANGE=SDR,PATHWAY-ID=\"{p}\"
{}
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO=\"aud@{p}\",SUBTITLES=\"subs@{p}\",CLOSED-CAPTIONS=NONE,STABLE-VARIANT-ID=\"lo\",PATHWAY-ID=\"{p}\"
{}
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=200000,CODECS=\"avc1.640028\",RESOLUTION=1920x1080,URI=\"{}\",PATHWAY-ID=\"{p}\"
",
                u("s1_audio_en/index.m3u8"),
                u("s1_audio_fr/index.m3u8"),
                u("s1_subs_en/index.m3u8"),
                u("s1_hi/index.m3u8"),
                u("s1_mid/index.m3u8"),
                u("s1_lo/index.m3u8"),
                u("s1_hi/iframes.m3u8"),
            ));
        }
        assert_eq!(m, expected);
        // What was written reads back as the same ladder, twice over.
        let Ok(m3u8_rs::Playlist::MasterPlaylist(back)) = m3u8_rs::parse_playlist_res(m.as_bytes())
        else {
            panic!("{m}")
        };
        assert_eq!(back.variants.len(), 8);
        assert_eq!(back.alternatives.len(), 6);
    }

    #[test]
    fn the_origins_own_steering_and_pathways_are_replaced() {
        let text = "#EXTM3U
#EXT-X-CONTENT-STEERING:SERVER-URI=\"https://elsewhere.example/steer\",PATHWAY-ID=\"x\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Live\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.info\",URI=\"info.json\"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,PATHWAY-ID=\"x\"
x/lo.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1000000,PATHWAY-ID=\"y\"
https://cdn-y.example/lo.m3u8
";
        let l = ladder(text);
        assert_eq!(l.references(), ["x/lo.m3u8", "info.json"]);
        let m = replicate(&l, "https://s/x", &[pathway("a", &l), pathway("b", &l)]);
        assert!(!m.contains("elsewhere"), "{m}");
        assert!(!m.contains("cdn-y"), "{m}");
        assert_eq!(m.matches("#EXT-X-CONTENT-STEERING").count(), 1, "{m}");
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 2, "{m}");
        assert!(
            m.contains("#EXT-X-SESSION-DATA:DATA-ID=\"com.example.info\",URI=\"https://a.example/hls/info.json?sig=a\"\n"),
            "{m}"
        );
        assert_eq!(m.matches("SESSION-DATA").count(), 2, "{m}");
    }

    #[test]
    fn a_reference_to_another_host_passes_through_unsigned() {
        let text = "#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1000000
https://third-party.example/lo.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2000000
//other.example/hi.m3u8
";
        let l = ladder(text);
        assert!(l.references().is_empty());
        let m = replicate(&l, "https://s/x", &[pathway("a", &l)]);
        assert!(m.contains("\nhttps://third-party.example/lo.m3u8\n"), "{m}");
        assert!(m.contains("\n//other.example/hi.m3u8\n"), "{m}");
    }

    #[test]
    fn what_is_not_a_playlist_is_refused_with_a_reason() {
        let url = url::Url::parse(ORIGIN).unwrap();
        let parse = |body: &[u8]| HlsPlaylist::parse(body, &url);
        let media =
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.0,\ns1-7.ts\n";
        assert_eq!(parse(media.as_bytes()), Ok(HlsPlaylist::Media));
        for (body, why) in [
            (&b"<html><body>502 Bad Gateway</body></html>"[..], "#EXTM3U"),
            (b"", "#EXTM3U"),
            (b"\xff\xfe#EXTM3U", "UTF-8"),
            (b"#EXTM3U\nhello\n", "TARGETDURATION"),
            (
                b"#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"avc1\"\nlo.m3u8\n",
                "malformed #EXT-X-STREAM-INF",
            ),
            (
                b"#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x\"\n",
                "malformed #EXT-X-MEDIA",
            ),
            (b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", "no URI"),
            (
                b"#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i.m3u8\"\n",
                "without a variant",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert!(
                err.contains(why),
                "{:?}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn without_a_ladder_each_pathway_gets_one_variant() {
        let c = |p: &str| Candidate {
            provider: p.into(),
            protocol: crate::vocab::Protocol::Hls,
            url: format!("https://{p}.example/live/s.m3u8"),
            expires_at: 1,
        };
        let m = single_variant(
            &[c("a"), c("b")],
            "https://s/v1/steering/hls/s?session=x",
            2_000_000,
        );
        assert_eq!(
            m,
            "#EXTM3U\n\
             #EXT-X-CONTENT-STEERING:SERVER-URI=\"https://s/v1/steering/hls/s?session=x\",PATHWAY-ID=\"a\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,PATHWAY-ID=\"a\"\nhttps://a.example/live/s.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,PATHWAY-ID=\"b\"\nhttps://b.example/live/s.m3u8\n"
        );
    }
}
