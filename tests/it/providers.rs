//! Every adapter kind through the API, with test secrets: URLs carry each vendor's signature.

use std::collections::HashMap;

use serde_json::Value;

use crate::support::{TestApp, all_providers_dir, root, test_secrets};
use livesteer::catalog::Catalog;
use livesteer::providers::signing;
use livesteer::store::testing::TestDb;
use livesteer::vocab::SecretMode;

fn url_of<'a>(candidates: &'a Value, provider: &str) -> &'a str {
    candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} in {candidates}"))["url"]
        .as_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_signs_its_urls() {
    let db = TestDb::sqlite();
    let app = TestApp::builder(&db)
        .without_exploration()
        .providers(all_providers_dir())
        .secrets(test_secrets())
        .start()
        .await;
    // Taiwan prefers Tencent then Alibaba.
    let created = app.create_stream("anchor-vendors", "tw").await;
    let id = created["stream_id"].as_str().unwrap();
    let push = created["push"].as_array().unwrap();
    assert_eq!(push[0]["provider"], "tencent");
    assert_eq!(push[1]["provider"], "alibaba");
    let exp = push[0]["expires_at"].as_i64().unwrap();
    let tencent_push = push[0]["url"].as_str().unwrap();
    let want = signing::tencent_tx_query("e12c46f2612d5106e2034781ab261ca3", id, exp).unwrap();
    assert_eq!(
        tencent_push,
        format!("rtmp://185000.livepush.myqcloud.com/live/{id}?{want}")
    );
    let alibaba_push = push[1]["url"].as_str().unwrap();
    let auth =
        signing::alibaba_type_a_auth_key(&format!("/live/{id}"), "aliyuncdnexp1234", exp, "0", "0")
            .unwrap();
    assert_eq!(
        alibaba_push,
        format!("rtmp://push.live-intl.example.com/live/{id}?auth_key={auth}")
    );

    // Pushed to Tencent and Alibaba only: CloudFront (origin local-srs) and Akamai (origin
    // local-nginx) carry nothing of it.
    let (_, play) = app
        .get(&format!("/v1/streams/{id}/play?region=tw&protocol=flv"))
        .await;
    let names: Vec<&str> = play["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tencent", "alibaba"]);
    let flv = url_of(&play["candidates"], "tencent");
    assert!(
        flv.starts_with(&format!(
            "https://play.live.example.com/live/{id}.flv?txSecret="
        )),
        "{flv}"
    );

    // A stream from North America goes to the origins, so CloudFront and Akamai carry it.
    let created = app.create_stream("anchor-na", "na").await;
    let id = created["stream_id"].as_str().unwrap();
    let pushed: Vec<&str> = created["push"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(pushed, ["local-srs", "local-nginx"], "{created}");
    let (status, play) = app
        .get(&format!("/v1/streams/{id}/play?region=na&protocol=hls"))
        .await;
    assert_eq!(status, 200, "{play}");
    let names: Vec<&str> = play["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cloudfront", "akamai", "local-srs", "local-nginx"]);
    let cf = url_of(&play["candidates"], "cloudfront");
    assert!(
        cf.starts_with(&format!(
            "https://d111111abcdef8.cloudfront.net/live/{id}.m3u8?Expires="
        )),
        "{cf}"
    );
    assert!(
        cf.contains("&Signature=") && cf.ends_with("&Key-Pair-Id=K2JCJMDEHXQW5F"),
        "{cf}"
    );
    verify_cloudfront(cf);
    let ak = url_of(&play["candidates"], "akamai");
    assert!(
        ak.starts_with(&format!(
            "https://live.example.akamaized.net/hls/{id}.m3u8?__token__=exp="
        )),
        "{ak}"
    );
    assert!(ak.contains(&format!("~acl=/hls/{id}*~hmac=")), "{ak}");
    app.stop().await;
}

/// Checks a CloudFront signed URL against the public half of the test key.
fn verify_cloudfront(url: &str) {
    use base64::Engine;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    let (resource, query) = url.split_once("?Expires=").unwrap();
    let (expires, rest) = query.split_once("&Signature=").unwrap();
    let (sig, _) = rest.split_once("&Key-Pair-Id=").unwrap();
    let std_b64: String = sig
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(std_b64)
        .unwrap();
    let policy = format!(
        r#"{{"Statement":[{{"Resource":"{resource}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    );
    let pem = std::fs::read_to_string(
        root().join("tests/data/signing/TEST_ONLY_cloudfront_rsa2048_public.pem"),
    )
    .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_pem(&pem).unwrap();
    let verifier = VerifyingKey::<sha1::Sha1>::new(key);
    verifier
        .verify(
            policy.as_bytes(),
            &Signature::try_from(sig.as_slice()).unwrap(),
        )
        .expect("CloudFront signature verifies with the public key");
}

#[test]
fn a_missing_secret_names_the_provider_and_the_variable() {
    let mut secrets = test_secrets();
    secrets.remove("TENCENT_CSS_PLAY_KEY");
    let err = Catalog::load(
        &all_providers_dir(),
        &root().join("policies/default.yaml"),
        &secrets,
        SecretMode::Require,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("tencent.yaml:")
            && err
                .contains("provider tencent: environment variable TENCENT_CSS_PLAY_KEY is not set"),
        "{err}"
    );
    // Skipping secrets (check without --secrets) loads the same files fine.
    Catalog::load(
        &all_providers_dir(),
        &root().join("policies/default.yaml"),
        &HashMap::new(),
        SecretMode::Skip,
    )
    .unwrap();
}

#[test]
fn a_bad_akamai_key_fails_at_load() {
    let mut secrets = test_secrets();
    secrets.insert("AKAMAI_EDGEAUTH_KEY".into(), "not-hex".into());
    let err = Catalog::load(
        &all_providers_dir(),
        &root().join("policies/default.yaml"),
        &secrets,
        SecretMode::Require,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("akamai.yaml:") && err.contains("provider akamai"),
        "{err}"
    );
}
