//! SRS HTTP hooks: a JSON object per event, posted to each URL the vhost's `http_hooks` names.
//!
//! Fields read: `action` (`on_publish`, `on_unpublish`, `on_play`, `on_stop`, `on_hls`, and the
//! rest, which are acknowledged), `app`, `stream`, `param` (the URL's query, `?token=…`). Other
//! fields (`client_id`, `ip`, `vhost`, `server_id`, `stream_url`, `stream_id`, `tcUrl`, …) are
//! allowed and ignored; `client_id` is a number in SRS 3 and a string since SRS 4.
//! SRS allows an action when the answer is HTTP 200 with `{"code":0}`; anything else refuses it.
//! Source: <https://ossrs.io/lts/en-us/docs/v5/doc/http-callback>.

use serde_json::Value;

use super::{Action, Callback, Refusal, token_from_query};

fn text<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, Refusal> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Refusal::malformed(format!(
            "field {key} must be a string, got {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses one hook body.
pub fn parse(body: &[u8]) -> Result<Callback, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::malformed(format!("SRS hook body is not JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Refusal::malformed(format!(
            "SRS hook body must be a JSON object, got {}",
            kind(&value)
        )));
    };
    let action =
        text(&obj, "action")?.ok_or_else(|| Refusal::malformed("SRS hook body has no action"))?;
    let action = match action {
        "on_publish" => Action::Publish,
        "on_unpublish" => Action::Unpublish,
        // A new HLS segment: the stream is flowing.
        "on_hls" => Action::Update { bitrate_kbps: None },
        "on_play" => Action::Play,
        other if other.starts_with("on_") && other.len() <= 64 => Action::Other(other.to_string()),
        other => {
            return Err(Refusal::malformed(format!(
                "unknown SRS hook action {:?}",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    let needs_stream = !matches!(action, Action::Other(_));
    let app = text(&obj, "app")?.unwrap_or("").to_string();
    let stream = text(&obj, "stream")?.unwrap_or("").to_string();
    if needs_stream && (app.is_empty() || stream.is_empty()) {
        return Err(Refusal::malformed("SRS hook body needs app and stream"));
    }
    let token = text(&obj, "param")?.and_then(token_from_query);
    Ok(Callback {
        action,
        app,
        stream,
        token,
        signed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_payloads_parse() {
        // The on_publish example of SRS's HTTP callback documentation (v5).
        let cb = parse(br#"{"action":"on_publish","client_id":"9308h583","ip":"192.168.1.10","vhost":"video.test.com","app":"live","stream":"livestream","param":"?token=xxx&salt=yyy","server_id":"vid-werty","stream_url":"video.test.com/live/livestream","stream_id":"vid-124q9y3"}"#).unwrap();
        assert_eq!(cb.action, Action::Publish);
        assert_eq!(cb.app, "live");
        assert_eq!(cb.stream, "livestream");
        assert_eq!(cb.token.as_deref(), Some("xxx"));
        // SRS 3 sent client_id as a number.
        let cb = parse(
            br#"{"action":"on_unpublish","client_id":1985,"app":"live","stream":"s","param":""}"#,
        )
        .unwrap();
        assert_eq!(cb.action, Action::Unpublish);
        assert_eq!(cb.token, None);
        let cb = parse(
            br#"{"action":"on_connect","client_id":1985,"app":"live","tcUrl":"rtmp://h/live"}"#,
        )
        .unwrap();
        assert_eq!(cb.action, Action::Other("on_connect".into()));
    }

    #[test]
    fn malformed_bodies_say_why() {
        for (body, want) in [
            (&b"not json"[..], "not JSON"),
            (b"[1]", "must be a JSON object"),
            (b"{}", "no action"),
            (br#"{"action":5}"#, "field action must be a string"),
            (
                br#"{"action":"on_publish","app":"live"}"#,
                "needs app and stream",
            ),
            (
                br#"{"action":"publish","app":"live","stream":"s"}"#,
                "unknown SRS hook action",
            ),
            (
                br#"{"action":"on_publish","app":"live","stream":"s","param":7}"#,
                "field param",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(err.message.contains(want), "{err:?} vs {want}");
        }
    }
}
