"""A stand-in live origin for the schema check: answers any `*.m3u8` with a multivariant
playlist and any `*.mpd` with a live MPD, named after the stream, so that livesteer's
`master.m3u8` and `manifest.mpd` routes have an origin to read (as in production) instead of
answering 502 `origin_unavailable`. Usage: origin.py PORT."""

import http.server
import posixpath
import sys

LADDER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="{s}_aud_en/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2200000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="aud"
{s}_hi/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.42c01e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO="aud"
{s}_lo/index.m3u8
"""

MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S"
     availabilityStartTime="2026-12-02T04:00:00Z" minBufferTime="PT2S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="p0" start="PT0S">
    <AdaptationSet id="1" contentType="video" mimeType="video/mp4" segmentAlignment="true">
      <SegmentTemplate timescale="1000" media="{s}-$RepresentationID$-$Time$.m4s"
                       initialization="{s}-$RepresentationID$-init.m4s">
        <SegmentTimeline><S t="0" d="2000" r="4"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="hi" bandwidth="2500000" codecs="avc1.64001f" width="1280" height="720"/>
    </AdaptationSet>
  </Period>
</MPD>
"""


class Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = posixpath.basename(self.path.split("?", 1)[0])
        stream, _, ext = name.rpartition(".")
        if ext == "m3u8":
            body, ctype = LADDER.format(s=stream), "application/vnd.apple.mpegurl"
        elif ext == "mpd":
            body, ctype = MPD.format(s=stream), "application/dash+xml"
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Origin).serve_forever()
