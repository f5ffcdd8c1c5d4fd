//! The `livesteer` binary: `check`, `urls`, `migrate`, and `serve` refusing bad files.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{YamlDoc, all_providers_dir, root};
use livesteer::store::testing::TestDb;

fn livesteer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_livesteer"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("LIVESTEER_LISTEN")
        .env("RUST_LOG", "warn")
        .current_dir(root())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dir/default.yaml`, the shipped policy changed by `edit`; its path.
fn policy_with(dir: &Path, edit: impl FnOnce(YamlDoc) -> YamlDoc) -> String {
    let path = dir.join("default.yaml");
    edit(YamlDoc::shipped_policy()).write(&path);
    path.to_string_lossy().into_owned()
}

fn line_of(file: &str, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn check_accepts_the_shipped_files() {
    let out = livesteer(&["check"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("ok: 6 provider file(s), 1 policy file(s)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_names_file_and_line_of_each_error() {
    type Edit = fn(YamlDoc) -> YamlDoc;
    let edits: [(Edit, &str, &str); 5] = [
        (
            |p| {
                p.remove("regions[id=tw].countries")
                    .insert("regions[id=tw].countrys", ["TW"])
            },
            "countrys",
            "unknown field `countrys`",
        ),
        (
            |p| p.set("regions[id=tw].cidrs[0]", "168.95.0.0/99"),
            "168.95.0.0/99",
            "bad CIDR \"168.95.0.0/99\"",
        ),
        (
            |p| p.set("regions[id=tw].providers[0]", "tencnet"),
            "tencnet",
            "unknown provider id \"tencnet\"",
        ),
        (
            |p| p.set("steering.move_share", 2),
            "move_share: 2",
            "steering.move_share is 2, must be over 0 and at most 1",
        ),
        (
            |p| p.set("steering.token_refresh_seconds", 7200),
            "token_refresh_seconds: 7200",
            "steering.token_refresh_seconds is 7200, must be less than delivery.url_ttl_seconds (3600), or 0",
        ),
    ];
    for (edit, needle, message) in edits {
        let dir = tempfile::tempdir().unwrap();
        let file = policy_with(dir.path(), edit);
        let out = livesteer(&["check", "--policies", dir.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{needle}");
        let stdout = text(&out.stdout);
        let want = format!("{file}:{}: ", line_of(&file, needle));
        assert!(
            stdout.starts_with(&want) && stdout.contains(message),
            "want {want}…{message}, got {stdout}"
        );
    }
}

#[test]
fn check_reports_provider_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "local-nginx.yaml",
        "local-srs.yaml",
        "alibaba.yaml",
        "akamai.yaml",
        "cloudfront.yaml",
    ] {
        std::fs::copy(root().join("providers").join(f), dir.path().join(f)).unwrap();
    }
    let bad = dir.path().join("tencent.yaml");
    std::fs::write(
        &bad,
        "id: tencent\nkind: tencent_css\nprotocols: [flv]\nendpoints:\n  default:\n    push: http://x/live\n    flv: https://p/live\nsigning:\n  push_key_env: A\n  key_env: B\n",
    )
    .unwrap();
    let out = livesteer(&["check", "--providers", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let b = bad.display();
    for want in [
        format!("{b}:6: endpoints.default.push: \"http://x/live\" must use rtmp or rtmps or srt"),
        format!("{b}:2: signing.play_key_env is required for kind tencent_css"),
        format!("{b}:10: signing.key_env does not apply to kind tencent_css"),
    ] {
        assert!(stdout.contains(&want), "missing {want} in\n{stdout}");
    }
}

#[test]
fn serve_refuses_a_bad_policy_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy_with(dir.path(), |p| p.set("ingest.backups", 99));
    let db = dir.path().join("x.db");
    let out = livesteer(&[
        "serve",
        "--policy",
        &file,
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &format!("sqlite://{}", db.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let want = format!(
        "{file}:{}: ingest.backups must be at most 8",
        line_of(&file, "backups: 99")
    );
    assert!(stderr.contains(&want), "want {want} in {stderr}");
}

#[test]
fn serve_refuses_a_missing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_livesteer"))
        .args(["serve", "--listen", "127.0.0.1:0", "--providers"])
        .arg(all_providers_dir())
        .arg("--database-url")
        .arg(format!("sqlite://{}/x.db", dir.path().display()))
        .env_remove("TENCENT_CSS_PUSH_KEY")
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("provider tencent: environment variable TENCENT_CSS_PUSH_KEY is not set"),
        "{stderr}"
    );
}

#[test]
fn urls_prints_what_a_provider_signs_at_an_instant() {
    let out = livesteer(&[
        "urls",
        "--provider",
        "local-srs",
        "--stream",
        "demo1",
        "--region",
        "tw",
        "--at",
        "1700000000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["provider"], "local-srs");
    assert_eq!(v["region"], "tw");
    let push = v["push"]["url"].as_str().unwrap();
    assert!(
        push.starts_with("rtmp://127.0.0.1:19350/live/demo1?token="),
        "{push}"
    );
    let exp = v["push"]["expires_at"].as_i64().unwrap();
    assert!((1_700_086_400..1_700_086_400 + 600).contains(&exp), "{exp}");
    let protocols: Vec<&str> = v["play"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["flv", "hls", "rtmp", "dash"]);
    // The same instant signs the same URLs.
    let again = livesteer(&[
        "urls",
        "--provider",
        "local-srs",
        "--stream",
        "demo1",
        "--region",
        "tw",
        "--at",
        "1700000000",
    ]);
    assert_eq!(out.stdout, again.stdout);

    let out = livesteer(&[
        "urls",
        "--provider",
        "local-nginx",
        "--stream",
        "demo1",
        "--protocol",
        "flv",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["play"],
        serde_json::json!([]),
        "nginx-rtmp has no HTTP-FLV"
    );

    for (args, want) in [
        (
            vec!["urls", "--provider", "tencent", "--stream", "s"],
            "not an enabled provider",
        ),
        (
            vec!["urls", "--provider", "local-srs", "--stream", "a/b"],
            "--stream",
        ),
        (
            vec![
                "urls",
                "--provider",
                "local-srs",
                "--stream",
                "s",
                "--region",
                "mars",
            ],
            "--region \"mars\"",
        ),
        (
            vec![
                "urls",
                "--provider",
                "local-srs",
                "--stream",
                "s",
                "--protocol",
                "webrtc",
            ],
            "--protocol",
        ),
    ] {
        let out = livesteer(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn migrate_applies_then_is_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/m.db", dir.path().display());
    let out = livesteer(&["migrate", "--database-url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("applied 2026-11-25-000001_init"),
        "{}",
        text(&out.stdout)
    );
    let out = livesteer(&["migrate", "--database-url", &url]);
    assert!(text(&out.stdout).contains("up to date"));
    let out = livesteer(&["migrate", "--database-url", "mysql://x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("mysql"), "{}", text(&out.stderr));
}

#[test]
fn migrate_on_postgres() {
    let Some(db) = TestDb::postgres_unmigrated() else {
        return;
    };
    let out = livesteer(&["migrate", "--database-url", db.url()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("applied"),
        "{}",
        text(&out.stdout)
    );
}
