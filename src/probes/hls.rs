//! The parts of an HLS playlist (RFC 8216) a health probe needs.

/// A media playlist, or the first variant of a master playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist {
    /// `#EXT-X-STREAM-INF`: the URI of the first variant.
    Master {
        first_variant: String,
    },
    Media(Media),
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub target_duration_s: f64,
    pub media_sequence: u64,
    /// (duration in seconds, URI), oldest first.
    pub segments: Vec<(f64, String)>,
    /// `#EXT-X-ENDLIST`: the stream is over.
    pub ended: bool,
}

/// Parses playlist text; the error says what is wrong.
pub fn parse(text: &str) -> Result<Playlist, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("playlist does not start with #EXTM3U".into());
    }
    let mut target = None;
    let mut seq = 0u64;
    let mut segments = Vec::new();
    let mut pending: Option<f64> = None;
    let mut variant_next = false;
    let mut ended = false;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .ok_or_else(|| format!("bad EXT-X-TARGETDURATION {v:?}"))?,
            );
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v
                .trim()
                .parse()
                .map_err(|_| format!("bad EXT-X-MEDIA-SEQUENCE {v:?}"))?;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d = v.split(',').next().unwrap_or("").trim();
            pending = Some(
                d.parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .ok_or_else(|| format!("bad EXTINF duration {d:?}"))?,
            );
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            variant_next = true;
        } else if line == "#EXT-X-ENDLIST" {
            ended = true;
        } else if line.starts_with('#') {
            continue;
        } else if variant_next {
            return Ok(Playlist::Master {
                first_variant: line.to_string(),
            });
        } else if let Some(d) = pending.take() {
            segments.push((d, line.to_string()));
        } else {
            return Err(format!("URI {line:?} without #EXTINF"));
        }
    }
    let target_duration_s = target.ok_or("media playlist has no EXT-X-TARGETDURATION")?;
    Ok(Playlist::Media(Media {
        target_duration_s,
        media_sequence: seq,
        segments,
        ended,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_media_playlist() {
        // The shape nginx-rtmp writes (ngx_rtmp_hls_module.c) for `hls_fragment 1s`.
        let p = parse(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-TARGETDURATION:1\n\
             #EXTINF:1.000,\n7.ts\n#EXTINF:1.000,\n8.ts\n",
        )
        .unwrap();
        let Playlist::Media(m) = p else { panic!() };
        assert_eq!(m.media_sequence, 7);
        assert_eq!(m.target_duration_s, 1.0);
        assert_eq!(m.segments.last().unwrap().1, "8.ts");
        assert!(!m.ended);
    }

    #[test]
    fn a_master_playlist_names_its_first_variant() {
        let p = parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n").unwrap();
        assert_eq!(
            p,
            Playlist::Master {
                first_variant: "low/index.m3u8".into()
            }
        );
    }

    #[test]
    fn broken_playlists_say_why() {
        for (text, want) in [
            ("<html>", "#EXTM3U"),
            ("#EXTM3U\n#EXTINF:1,\na.ts\n", "no EXT-X-TARGETDURATION"),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:x\n",
                "bad EXT-X-TARGETDURATION",
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n",
                "without #EXTINF",
            ),
            (
                "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n",
                "bad EXT-X-MEDIA-SEQUENCE",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{e} vs {want}");
        }
    }
}
