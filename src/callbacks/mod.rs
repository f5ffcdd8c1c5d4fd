//! Origin and CDN callbacks (`POST /v1/callbacks/{provider}`), each in the origin's own format,
//! so the origin needs no glue:
//!
//! - [`srs`]: SRS HTTP hooks (JSON `action`, `app`, `stream`, `param`, …), answered
//!   `{"code":0}` to allow;
//! - [`nginx`]: nginx-rtmp `on_publish`, `on_publish_done`, `on_play`, `on_done`, `on_update`
//!   (form fields `call`, `app`, `name`, the push URL's own query args, …), answered 2xx to
//!   allow and 4xx to refuse;
//! - [`generic`]: livesteer's documented JSON for CDNs that post stream start and stop events,
//!   signed with HMAC-SHA256.
//!
//! Each parser turns the request into a [`Callback`]; [`handle`] checks it (the origin token
//! livesteer issued in the push URL, via `providers::origin::Origin::verify`, or the generic
//! signature checked by the parser) and only then changes room state (`rooms`) and emits an
//! ingest signal for scoring. A callback that is malformed, tokened or signed wrongly, or about
//! a stream livesteer did not issue, changes nothing and is answered with the reason.

pub mod generic;
pub mod nginx;
pub mod srs;

use serde::Serialize;

use crate::auth::{self, Keys};
use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::codes::Code;
use crate::metrics as m;
use crate::providers::signing::Grant;
use crate::providers::{Provider, ProviderKind};
use crate::rooms::{Evidence, IngestEvent, RoomView, Rooms};
use crate::signals::{IngestSource, Signal, SignalBus};
use crate::store::Db;
use crate::streams::{Stream, StreamState, StreamTable};
use crate::vocab::ids::is_valid_stream_key;

/// Largest callback body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The callback formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Srs,
    NginxRtmp,
    Generic,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Srs => "srs",
            Format::NginxRtmp => "nginx_rtmp",
            Format::Generic => "generic",
        }
    }

    /// The format a provider's callbacks arrive in.
    pub fn of(kind: ProviderKind) -> Format {
        match kind {
            ProviderKind::Srs => Format::Srs,
            ProviderKind::NginxRtmp => Format::NginxRtmp,
            _ => Format::Generic,
        }
    }
}

/// What a callback reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// An encoder asks to publish.
    Publish,
    /// A publish ended.
    Unpublish,
    /// The publish is still on, data flowing (nginx-rtmp `update_publish`, SRS `on_hls`,
    /// generic `update`).
    Update { bitrate_kbps: Option<f64> },
    /// A player asks to play.
    Play,
    /// Anything else the origin reports (connect, close, play done, dvr, …): acknowledged.
    Other(String),
}

/// A parsed callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub action: Action,
    /// RTMP application (`live`); empty when the format has none (generic).
    pub app: String,
    /// Stream key.
    pub stream: String,
    /// The `token` query argument of the publish or play URL, for origins.
    pub token: Option<String>,
    /// Whether the request's authenticity was already established (generic signature).
    pub signed: bool,
}

/// Why a callback is refused or rejected; nothing changed. The code's status: 400 malformed,
/// 401 bad signature, 403 refused, 404 unknown stream, 410 ended stream, 503 no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Refusal {
        Refusal::new(Code::InvalidCallback, message)
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

/// What was done with an accepted callback.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// `publish`, `unpublish`, `update`, `play` or the origin's own name for the rest.
    pub action: String,
    /// The callback changed the room (`false` for plays and ignored actions).
    pub applied: bool,
    /// The room after the change, when there is one.
    pub room: Option<RoomView>,
}

/// The generic-callback HMAC secret of a provider, as the catalog resolved it from the variable
/// `rooms.callback_secret_env` names. `Ok(None)` when none is configured; an error naming the
/// variable when it is unset or too short.
pub fn secret_for<'k>(keys: &'k Keys, provider: &str) -> Result<Option<&'k [u8]>, Refusal> {
    match keys.callbacks.get(provider) {
        None => Ok(None),
        Some(Ok(secret)) => Ok(Some(secret)),
        Some(Err(why)) => Err(Refusal::new(Code::CallbacksNotConfigured, why.clone())),
    }
}

/// Counts a callback's outcome.
pub fn count(provider: &str, format: Format, outcome: &'static str) {
    metrics::counter!(m::CALLBACKS.name, "provider" => provider.to_string(),
        "format" => format.as_str(), "outcome" => outcome)
    .increment(1);
}

/// The `token` argument of a query string (`?token=…&salt=…` or `token=…`).
pub fn token_from_query(query: &str) -> Option<String> {
    let q = query.strip_prefix('?').unwrap_or(query);
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// What a callback is checked against and changes: narrow handles on the records, lent by the
/// handler.
pub struct Records<'a> {
    pub catalog: &'a Catalog,
    pub streams: &'a StreamTable,
    pub db: &'a Db,
    pub rooms: &'a Rooms,
    pub signals: &'a SignalBus,
    pub clock: &'a dyn Clock,
}

/// The stream a callback names: from memory, or from the database when another replica (or
/// this one before a restart) created it. `None` when livesteer never issued it.
async fn find_stream(
    state: &Records<'_>,
    key: &str,
) -> Result<Option<std::sync::Arc<Stream>>, Refusal> {
    if let Some(s) = state.streams.get(key) {
        return Ok(Some(s));
    }
    let owned = key.to_string();
    let row = state
        .db
        .call(move |db| db.get_stream(&owned))
        .await
        .map_err(|e| Refusal::new(Code::DatabaseUnavailable, e.to_string()))?;
    Ok(row.as_ref().and_then(Stream::from_row).map(|s| {
        if s.state == StreamState::Live {
            state.streams.put(s)
        } else {
            std::sync::Arc::new(s)
        }
    }))
}

/// Checks an accepted-format callback against livesteer's records and applies it.
pub async fn handle(
    state: &Records<'_>,
    provider: &dyn Provider,
    cb: Callback,
) -> Result<Accepted, Refusal> {
    let action_name = match &cb.action {
        Action::Publish => "publish".to_string(),
        Action::Unpublish => "unpublish".to_string(),
        Action::Update { .. } => "update".to_string(),
        Action::Play => "play".to_string(),
        Action::Other(name) => name.clone(),
    };
    if let Action::Other(_) = cb.action {
        return Ok(Accepted {
            action: action_name,
            applied: false,
            room: None,
        });
    }
    if !is_valid_stream_key(&cb.stream) {
        return Err(Refusal::malformed(format!(
            "stream {:?} is not a stream key (1 to 128 of A-Z, a-z, 0-9, '_', '-')",
            cb.stream.chars().take(140).collect::<String>()
        )));
    }
    let now_ms = state.clock.now_ms();
    if !cb.signed {
        // A play URL's token lets a player in; only a push URL's token lets an encoder publish
        // (or report on its publish).
        let grant = match cb.action {
            Action::Play => Grant::Play,
            _ => Grant::Publish,
        };
        auth::verify_origin_token(
            provider,
            grant,
            &cb.app,
            &cb.stream,
            cb.token.as_deref(),
            now_ms.div_euclid(1000),
        )
        .map_err(|r| Refusal::new(r.code, r.message))?;
    }
    let stream = find_stream(state, &cb.stream).await?.ok_or_else(|| {
        Refusal::new(
            Code::UnknownStream,
            format!("livesteer issued no stream {:?}", cb.stream),
        )
    })?;
    let carries = crate::vocab::carries(
        provider.id(),
        provider.info().origin.as_deref(),
        &stream.providers,
    );
    if !carries {
        return Err(Refusal::new(
            Code::WrongProvider,
            format!(
                "stream {} is pushed to {}, not to {}",
                stream.id,
                stream.providers.join(", "),
                provider.id()
            ),
        ));
    }
    let ended = stream.state == StreamState::Ended;
    let evidence = match cb.action {
        Action::Publish if ended => {
            return Err(Refusal::new(
                Code::StreamEnded,
                format!("stream {} has ended; ask for a new push URL", stream.id),
            ));
        }
        // Refusing an update makes nginx-rtmp drop the publisher of an ended stream.
        Action::Update { .. } | Action::Play if ended => {
            return Err(Refusal::new(
                Code::StreamEnded,
                format!("stream {} has ended", stream.id),
            ));
        }
        Action::Play => {
            return Ok(Accepted {
                action: action_name,
                applied: false,
                room: None,
            });
        }
        Action::Publish => Evidence::Publish,
        Action::Unpublish => Evidence::Unpublish,
        Action::Update { bitrate_kbps } => Evidence::Flowing { bitrate_kbps },
        Action::Other(_) => unreachable!("handled above"),
    };
    let catalog = state.catalog;
    let room = state.rooms.ingest(
        &catalog.policy.rooms,
        &IngestEvent {
            anchor_id: &stream.anchor_id,
            region: &stream.region,
            stream_id: &stream.id,
            provider: provider.id(),
            source: IngestSource::Callback,
            evidence,
        },
        now_ms,
    );
    let (healthy, bitrate_kbps) = match evidence {
        Evidence::Publish => (true, None),
        Evidence::Flowing { bitrate_kbps } => (true, bitrate_kbps),
        Evidence::Unpublish | Evidence::NotFlowing { .. } => (false, None),
    };
    state.signals.emit(Signal::Ingest {
        provider: provider.id().to_string(),
        anchor_id: stream.anchor_id.clone(),
        source: IngestSource::Callback,
        healthy,
        bitrate_kbps,
    });
    Ok(Accepted {
        action: action_name,
        applied: true,
        room: Some(room),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_out_of_query_strings() {
        assert_eq!(
            token_from_query("?token=1-ab&salt=y").as_deref(),
            Some("1-ab")
        );
        assert_eq!(
            token_from_query("salt=y&token=2-cd").as_deref(),
            Some("2-cd")
        );
        assert_eq!(token_from_query("token=a%2Db").as_deref(), Some("a-b"));
        assert_eq!(token_from_query(""), None);
        assert_eq!(token_from_query("?tok=1"), None);
    }

    #[test]
    fn a_provider_without_a_resolved_secret_is_not_configured() {
        let keys = Keys {
            callbacks: [
                ("tencent".to_string(), Err("TX_CB is not set".to_string())),
                ("alibaba".to_string(), Ok(b"0123456789abcdef".to_vec())),
            ]
            .into(),
            ..Keys::default()
        };
        assert_eq!(secret_for(&keys, "akamai"), Ok(None));
        let err = secret_for(&keys, "tencent").unwrap_err();
        assert_eq!(err.code, Code::CallbacksNotConfigured);
        assert!(err.message.contains("TX_CB"), "{err:?}");
        assert_eq!(
            secret_for(&keys, "alibaba"),
            Ok(Some(&b"0123456789abcdef"[..]))
        );
    }
}
