//! The delivery protocols.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A delivery protocol a player can ask for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP-FLV: low latency, the usual choice for live rooms on mobile.
    Flv,
    /// HLS: every player and browser.
    Hls,
    /// RTMP playback.
    Rtmp,
    /// MPEG-DASH: dash.js, Shaka and the players of smart TVs.
    Dash,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Protocol::Flv, Protocol::Hls, Protocol::Rtmp, Protocol::Dash];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Flv => "flv",
            Protocol::Hls => "hls",
            Protocol::Rtmp => "rtmp",
            Protocol::Dash => "dash",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "flv" => Ok(Protocol::Flv),
            "hls" => Ok(Protocol::Hls),
            "rtmp" => Ok(Protocol::Rtmp),
            "dash" => Ok(Protocol::Dash),
            other => Err(format!(
                "unknown protocol {other:?} (expected flv, hls, rtmp or dash)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
        }
        assert!("webrtc".parse::<Protocol>().is_err());
    }
}
