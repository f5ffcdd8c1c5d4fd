//! nginx-rtmp notifications (`on_publish`, `on_publish_done`, `on_play`, `on_play_done`,
//! `on_done`, `on_update`, …): an `application/x-www-form-urlencoded` POST.
//!
//! What `ngx_rtmp_notify_module.c` sends (arut/nginx-rtmp-module): the session's `app`,
//! `flashver`, `swfurl`, `tcurl`, `pageurl`, `addr` and `clientid`; then `call` (`publish`,
//! `play`, `publish_done`, `play_done`, `done`, `update_publish`, `update_play`,
//! `record_done`, `connect`, `disconnect`), `name` (the stream), for publish `type`, for play
//! `start`, `duration` and `reset`, for updates `time` and `timestamp`; and last the publish or
//! play URL's own query arguments as they were (`token=…`). The first occurrence of a field
//! wins, so query arguments cannot override the module's own fields. A 2xx answer allows, any
//! other refuses (and a refused `update_publish` disconnects the publisher).
//!
//! `done` is sent for publishers and players alike and cannot tell them apart: it is
//! acknowledged without changing state; configure `on_publish_done` for unpublish.

use std::collections::HashMap;

use super::{Action, Callback, Refusal};

/// Parses one notification body.
pub fn parse(body: &[u8]) -> Result<Callback, Refusal> {
    if std::str::from_utf8(body).is_err() {
        return Err(Refusal::malformed(
            "nginx-rtmp notification body is not UTF-8",
        ));
    }
    let mut fields: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        fields
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    let call = fields
        .get("call")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Refusal::malformed("nginx-rtmp notification has no call field"))?;
    let action = match call {
        "publish" => Action::Publish,
        "publish_done" => Action::Unpublish,
        "update_publish" => Action::Update { bitrate_kbps: None },
        "play" => Action::Play,
        "play_done" | "done" | "update_play" | "update" | "record_done" | "connect"
        | "disconnect" => Action::Other(call.to_string()),
        other => {
            return Err(Refusal::malformed(format!(
                "unknown nginx-rtmp call {:?}",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    let app = fields.get("app").cloned().unwrap_or_default();
    let stream = fields.get("name").cloned().unwrap_or_default();
    if !matches!(action, Action::Other(_)) && (app.is_empty() || stream.is_empty()) {
        return Err(Refusal::malformed(format!(
            "nginx-rtmp {call} notification needs app and name"
        )));
    }
    Ok(Callback {
        action,
        app,
        stream,
        token: fields.get("token").cloned(),
        signed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The field order ngx_rtmp_notify_module.c writes for a publish: the session part
    // (ngx_rtmp_netcall_http_format_session), then call, name, type, then the URL's args.
    const PUBLISH: &[u8] = b"app=live&flashver=FMLE%2F3.0%20%28compatible%3B%20Lavf59.27.100%29&swfurl=&tcurl=rtmp%3A%2F%2F127.0.0.1%3A1935%2Flive&pageurl=&addr=127.0.0.1&clientid=1&call=publish&name=s1&type=live&token=1795666800-abc";

    #[test]
    fn the_modules_fields_parse() {
        let cb = parse(PUBLISH).unwrap();
        assert_eq!(cb.action, Action::Publish);
        assert_eq!((cb.app.as_str(), cb.stream.as_str()), ("live", "s1"));
        assert_eq!(cb.token.as_deref(), Some("1795666800-abc"));
        let done =
            parse(b"app=live&addr=127.0.0.1&clientid=1&call=publish_done&name=s1&token=t").unwrap();
        assert_eq!(done.action, Action::Unpublish);
        let upd =
            parse(b"app=live&call=update_publish&time=10&timestamp=10000&name=s1&token=t").unwrap();
        assert_eq!(upd.action, Action::Update { bitrate_kbps: None });
        let d = parse(b"app=live&call=done&name=s1").unwrap();
        assert_eq!(d.action, Action::Other("done".into()));
    }

    #[test]
    fn url_args_cannot_override_the_modules_fields() {
        let body = [PUBLISH, b"&name=other&call=play"].concat();
        let cb = parse(&body).unwrap();
        assert_eq!(cb.stream, "s1");
        assert_eq!(cb.action, Action::Publish);
    }

    #[test]
    fn malformed_notifications_say_why() {
        for (body, want) in [
            (&b"app=live&name=s"[..], "no call field"),
            (b"call=publish&app=live", "needs app and name"),
            (b"call=explode&app=live&name=s", "unknown nginx-rtmp call"),
            (b"\xff\xfe", "not UTF-8"),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(err.message.contains(want), "{err:?}");
        }
    }
}
