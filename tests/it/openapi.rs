//! `GET /openapi.json`: the document parses, lists exactly the routes `api::configure`
//! registers, and real answers match it.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{TestApp, root};
use livesteer::store::testing::TestDb;

/// Every `METHOD /path` that `src/api/mod.rs` registers: each `web::resource("…")` under its
/// `web::scope("…")`s, with the methods of its `.route(web::get()…)`s.
fn registered_routes() -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join("src/api/mod.rs")).unwrap();
    let src = &src[src
        .find("pub fn configure")
        .expect("configure in src/api/mod.rs")..];
    let src = &src[..src.find("\n}\n").unwrap()];
    let literal = |s: &str| s[..s.find('"').unwrap()].to_string();
    let (mut depth, mut scopes, mut resource) = (0i32, Vec::<(String, i32)>::new(), None);
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        if rest.starts_with('(') {
            depth += 1;
        } else if rest.starts_with(')') {
            depth -= 1;
            while scopes.last().is_some_and(|(_, d)| *d > depth) {
                scopes.pop();
            }
        } else if let Some(r) = rest.strip_prefix("web::scope(\"") {
            scopes.push((literal(r), depth));
        } else if let Some(r) = rest.strip_prefix("web::resource(\"") {
            let prefix: String = scopes.iter().map(|(s, _)| s.as_str()).collect();
            resource = Some(format!("{prefix}{}", literal(r)));
        } else {
            for m in ["get", "post", "put", "delete", "patch", "head"] {
                if rest.starts_with(&format!("web::{m}()")) {
                    let path = resource.clone().expect("a route inside a resource");
                    out.insert(format!("{} {path}", m.to_uppercase()));
                }
            }
        }
        i += rest.chars().next().unwrap().len_utf8();
    }
    out
}

fn documented_routes(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch", "head"].contains(&method.as_str()) {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A small JSON Schema check, enough for the document's shapes: `$ref`, `type` (one or a
/// list), `enum`, `required`, `properties`, `additionalProperties`, `items`, `oneOf`,
/// `allOf`. Returns what does not match.
fn mismatch(doc: &Value, schema: &Value, value: &Value, at: &str) -> Option<String> {
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array()
        && let Some(m) = all.iter().find_map(|s| mismatch(doc, s, value, at))
    {
        return Some(m);
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let matching = one
            .iter()
            .filter(|s| mismatch(doc, s, value, at).is_none())
            .count();
        if matching != 1 {
            return Some(format!("{at}: {matching} of oneOf match {value}"));
        }
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(value)
    {
        return Some(format!("{at}: {value} is not one of {e:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let type_ok = |t: &str| match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t)) {
        return Some(format!("{at}: {value} is not {types:?}"));
    }
    if let Some(obj) = value.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                return Some(format!("{at}: {r} is missing from {value}"));
            }
        }
        for (k, v) in obj {
            let sub = &schema["properties"][k];
            if !sub.is_null() {
                if let Some(m) = mismatch(doc, sub, v, &format!("{at}.{k}")) {
                    return Some(m);
                }
            } else if schema["additionalProperties"] == json!(false) {
                return Some(format!("{at}: {k} is not a documented property"));
            } else if schema["additionalProperties"].is_object()
                && let Some(m) = mismatch(doc, &schema["additionalProperties"], v, at)
            {
                return Some(m);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            if let Some(m) = mismatch(doc, items, v, &format!("{at}[{i}]")) {
                return Some(m);
            }
        }
    }
    None
}

/// Asserts `body`, answered with `status` by `method path_template`, matches the document.
fn conforms(doc: &Value, method: &str, template: &str, status: u16, body: &Value) {
    let op = &doc["paths"][template][method];
    assert!(op.is_object(), "{method} {template} is not documented");
    let response = &op["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {template} does not document {status}: {body}"
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {template} {status}: no JSON schema"
    );
    if let Some(m) = mismatch(doc, schema, body, "$") {
        panic!("{method} {template} {status}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_answers_match_it() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .without_exploration()
        .admin_token("t0ken-for-the-openapi-test")
        .start()
        .await;
    let res = reqwest::get(app.url("/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    // The same routes as `configure` registers, no more and no fewer.
    let registered = registered_routes();
    assert!(registered.len() > 25, "{registered:?}");
    assert!(
        registered.contains("GET /v1/streams/{id}/play"),
        "{registered:?}"
    );
    assert!(
        registered.contains("DELETE /admin/providers/{id}/drain"),
        "{registered:?}"
    );
    assert_eq!(documented_routes(&doc), registered);

    // Every error code of the table, and every operation's errors are the error body.
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let table: Vec<&str> = livesteer::codes::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(codes, table);
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = resolve(&doc, &response["content"]["application/json"]["schema"]);
                    assert_eq!(
                        schema["properties"]["error"]["$ref"], "#/components/schemas/ErrorCode",
                        "{method} {path} {status}: not an error body"
                    );
                    let required = schema["required"].as_array().unwrap();
                    assert!(
                        required.contains(&json!("error")) && required.contains(&json!("message")),
                        "{method} {path} {status}: not an error body"
                    );
                }
            }
        }
    }

    // Real answers match (and the check does tell a wrong answer).
    let created = app.create_stream("openapi-1", "tw").await;
    conforms(&doc, "post", "/v1/streams", 201, &created);
    let schema = &doc["paths"]["/v1/streams"]["post"]["responses"]["201"]["content"]["application/json"]
        ["schema"];
    let mut wrong = created.clone();
    wrong["push"][0]["expires_at"] = json!("soon");
    assert!(mismatch(&doc, schema, &wrong, "$").is_some());
    wrong = created.clone();
    wrong.as_object_mut().unwrap().remove("play");
    assert!(mismatch(&doc, schema, &wrong, "$").is_some());
    let id = created["stream_id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/v1/streams/{id}")).await;
    conforms(&doc, "get", "/v1/streams/{id}", status, &body);
    let (status, body) = app.get(&format!("/v1/streams/{id}/play?region=tw")).await;
    conforms(&doc, "get", "/v1/streams/{id}/play", status, &body);
    let (status, body) = app.get(&format!("/v1/steering/hls/{id}?region=tw")).await;
    conforms(&doc, "get", "/v1/steering/hls/{id}", status, &body);
    let (status, body) = app
        .post(
            "/v1/qos",
            json!([{"stream_id": id, "provider": "local-srs", "region": "tw", "startup_ms": 800},
                   {"stream_id": id}]),
        )
        .await;
    conforms(&doc, "post", "/v1/qos", status, &body);
    let (status, body) = app.get("/v1/rooms?state=all").await;
    conforms(&doc, "get", "/v1/rooms", status, &body);
    let (status, body) = app.get("/v1/rooms/openapi-1").await;
    conforms(&doc, "get", "/v1/rooms/{anchor_id}", status, &body);
    let (status, body) = app.get("/v1/resolve?region=tw").await;
    conforms(&doc, "get", "/v1/resolve", status, &body);
    let (status, body) = app.get("/v1/nodes").await;
    conforms(&doc, "get", "/v1/nodes", status, &body);
    let (status, body) = app.get("/readyz").await;
    conforms(&doc, "get", "/readyz", status, &body);
    let (status, body) = app.get("/admin/scores").await;
    assert_eq!(status, 401);
    conforms(&doc, "get", "/admin/scores", status, &body);
    let (status, body) = app.delete(&format!("/v1/streams/{id}")).await;
    conforms(&doc, "delete", "/v1/streams/{id}", status, &body);
    let (status, body) = app.get(&format!("/v1/streams/{id}/play")).await;
    assert_eq!(status, 410);
    conforms(&doc, "get", "/v1/streams/{id}/play", status, &body);
    let (status, body) = app.post("/v1/streams", json!({"anchor_id": ""})).await;
    conforms(&doc, "post", "/v1/streams", status, &body);
    app.stop().await;
}
