//! Who may call `/tools/*`: a valid `TOOL_API_KEY` (three ways) or a valid
//! Twilio signature; nothing else.

use flexbridge::twilio::SignatureKey;
use flexbridge::twilio::signature::{Algorithm, body_sha256_hex};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::flex_handover::{CH, IS, KD, TOOL_KEY, conversation_session, json_of, spawn_tools_app};
use crate::helpers::{TEST_AUTH_TOKEN, TestApp, with_header};
use crate::process::start_binary;

async fn twilio_that_creates() -> MockServer {
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/Interactions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sid": KD})))
        .mount(&twilio)
        .await;
    twilio
}

/// A tool request with the session headers and whatever `auth` adds.
async fn call(
    app: &TestApp,
    path_and_query: &str,
    auth: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, serde_json::Value) {
    let request = app
        .client
        .post(app.url(path_and_query))
        .header("X-Session-Id", conversation_session())
        .header("X-Identity", "phone:+14155550100")
        .header("content-type", "application/json")
        .body("{}");
    json_of(async { auth(request).send().await.unwrap() }).await
}

#[tokio::test]
async fn the_tool_key_is_accepted_as_bearer_x_api_key_or_key_parameter() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[("HANDOVER_DEDUP_SECONDS", "0")]).await;

    let bearer = call(&app, "/tools/flex-handover", |r| r.bearer_auth(TOOL_KEY)).await;
    let header = call(&app, "/tools/flex-handover", |r| {
        r.header("X-Api-Key", TOOL_KEY)
    })
    .await;
    let query = call(&app, &format!("/tools/flex-handover?key={TOOL_KEY}"), |r| r).await;
    // The scheme in any case, with any spaces after it; an empty one does
    // not hide the key sent next.
    let upper_case = call(&app, "/tools/flex-handover", |r| {
        r.header("Authorization", format!("BEARER   {TOOL_KEY}"))
    })
    .await;
    let empty_bearer = call(&app, "/tools/flex-handover", |r| {
        r.header("Authorization", "Bearer ")
            .header("X-Api-Key", TOOL_KEY)
    })
    .await;

    for (how, (status, body)) in [
        ("bearer", bearer),
        ("X-Api-Key", header),
        ("key=", query),
        ("BEARER", upper_case),
        ("empty bearer, then X-Api-Key", empty_bearer),
    ] {
        assert_eq!(status, 200, "{how}: {body}");
    }
}

#[tokio::test]
async fn without_credentials_a_tool_request_gets_401_and_a_wrong_key_403() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[]).await;

    let none = app
        .client
        .post(app.url("/tools/flex-handover"))
        .header("X-Session-Id", conversation_session())
        .header("X-Identity", "phone:+1415")
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let (_, none_body) = json_of(async { none }).await;
    let wrong = call(&app, "/tools/flex-handover", |r| {
        r.bearer_auth("not-the-key")
    })
    .await;
    let wrong_query = call(&app, "/tools/flex-handover?key=nope", |r| r).await;
    // The first key presented is the one checked: a right key sent after a
    // wrong one does not let the request in.
    let wrong_then_right = call(&app, &format!("/tools/flex-handover?key={TOOL_KEY}"), |r| {
        r.bearer_auth("not-the-key").header("X-Api-Key", TOOL_KEY)
    })
    .await;

    assert_eq!(
        none_body,
        json!({"status": "error", "error": "missing_signature", "message": "This request is not allowed: send the tool key (Authorization: Bearer, X-Api-Key or ?key=) or a Twilio signature."})
    );
    assert_eq!(
        wrong,
        (
            403,
            json!({"status": "error", "error": "invalid_tool_key", "message": "This request is not allowed: invalid tool key."})
        )
    );
    assert_eq!(wrong_query.0, 403);
    assert_eq!(wrong_then_right.0, 403);
    assert!(twilio.received_requests().await.unwrap().is_empty());
}

/// Twilio signs a JSON tool request through `bodySHA256`; no key needed.
#[tokio::test]
async fn a_twilio_signed_json_request_is_accepted_without_a_key() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let body = br#"{"summary":"signed"}"#;
    let path = format!("/tools/flex-handover?bodySHA256={}", body_sha256_hex(body));
    let key = SignatureKey::new(TEST_AUTH_TOKEN);
    let signed = |signature: String, body: &'static [u8]| {
        app.client
            .post(app.url(&path))
            .header("X-Session-Id", conversation_session())
            .header("X-Identity", "phone:+14155550100")
            .header("content-type", "application/json")
            .header("X-Twilio-Signature", signature)
            .body(body)
    };
    let send = |signature, body| signed(signature, body).send();

    let valid = send(key.sign(&app.url(&path), &[]), body).await.unwrap();
    let swapped_body = send(key.sign(&app.url(&path), &[]), br#"{"summary":"tampered"}"#)
        .await
        .unwrap();
    let wrong_token = send(SignatureKey::new("other").sign(&app.url(&path), &[]), body)
        .await
        .unwrap();
    // A wrong key beside a signature leaves the signature to decide.
    let beside_wrong_key = |signature| async {
        let request = signed(signature, body).bearer_auth("not-the-key");
        request.send().await.unwrap()
    };
    let valid_beside_wrong_key = json_of(beside_wrong_key(key.sign(&app.url(&path), &[]))).await;
    let invalid_beside_wrong_key = json_of(beside_wrong_key("bm9wZQ==".into())).await;

    assert_eq!(valid.status().as_u16(), 200);
    assert_eq!(swapped_body.status().as_u16(), 403);
    assert_eq!(wrong_token.status().as_u16(), 403);
    assert_eq!(valid_beside_wrong_key.1["status"], "already_handed_over");
    assert_eq!(
        (
            invalid_beside_wrong_key.0,
            invalid_beside_wrong_key.1["error"].as_str()
        ),
        (403, Some("invalid_signature"))
    );
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
}

/// A tool request Twilio signs with a webhook SharedKey (HMAC-SHA256, named
/// in `X-Twilio-Webhooks-Signature-Settings`) is accepted with that key's
/// secret, and only with the header that names it.
#[tokio::test]
async fn a_json_tool_request_signed_with_a_shared_key_is_accepted() {
    const SECRET: &str = "webhooks-shared-key-secret-5a7c";
    const SETTINGS: &str = "key=webhooks_sharedkey_0123456789abcdef,algorithm=HMAC_SHA256";
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[("TWILIO_WEBHOOK_SHARED_KEY_SECRET", SECRET)]).await;
    let body = br#"{"summary":"signed with a shared key"}"#;
    let path = format!("/tools/flex-handover?bodySHA256={}", body_sha256_hex(body));
    let shared = SignatureKey::with_algorithm(SECRET, Algorithm::HmacSha256);
    let send = |signature: String, settings: Option<&'static str>| {
        let request = app
            .client
            .post(app.url(&path))
            .header("X-Session-Id", conversation_session())
            .header("X-Identity", "phone:+14155550100")
            .header("content-type", "application/json")
            .header("X-Twilio-Signature", signature);
        with_header(request, "X-Twilio-Webhooks-Signature-Settings", settings)
            .body(&body[..])
            .send()
    };
    let signature = shared.sign(&app.url(&path), &[]);
    let token_signature = SignatureKey::new(TEST_AUTH_TOKEN).sign(&app.url(&path), &[]);

    let valid = send(signature.clone(), Some(SETTINGS)).await.unwrap();
    let without_settings = send(signature, None).await.unwrap();
    let token_with_settings = send(token_signature, Some(SETTINGS)).await.unwrap();

    assert_eq!(valid.status().as_u16(), 200);
    assert_eq!(without_settings.status().as_u16(), 403);
    assert_eq!(token_with_settings.status().as_u16(), 403);
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
}

/// A JSON body the signature does not cover (no `bodySHA256`) is refused:
/// otherwise a captured signature would authorise any body. An empty body,
/// the tool input `{}`, is all the URL's signature covers.
#[tokio::test]
async fn a_signed_url_without_body_hash_covers_only_an_empty_json_body() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let signature = SignatureKey::new(TEST_AUTH_TOKEN).sign(&app.url("/tools/flex-handover"), &[]);

    let (status, body) = call(&app, "/tools/flex-handover", |r| {
        r.header("X-Twilio-Signature", signature.clone())
    })
    .await;
    let (empty_status, empty_body) = call(&app, "/tools/flex-handover", |r| {
        r.header("X-Twilio-Signature", signature.clone()).body("")
    })
    .await;

    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (403, "invalid_signature")
    );
    assert_eq!(
        (empty_status, empty_body["status"].as_str()),
        (200, Some("handed_over"))
    );
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_signed_form_tool_request_is_accepted() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let params = [("summary", "from a form")];
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signature =
        SignatureKey::new(TEST_AUTH_TOKEN).sign(&app.url("/tools/flex-handover"), &owned);

    let response = app
        .client
        .post(app.url("/tools/flex-handover"))
        .header("X-Session-Id", conversation_session())
        .header("X-Identity", "phone:+14155550100")
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
    let requests = twilio.received_requests().await.unwrap();
    let routing = url::form_urlencoded::parse(&requests[0].body)
        .find(|(n, _)| n == "Routing")
        .unwrap()
        .1
        .into_owned();
    assert!(routing.contains(r#""summary":"from a form""#), "{routing}");
}

/// Checks on, no auth token: only the tool key still works (fail closed).
#[tokio::test]
async fn without_an_auth_token_tools_accept_only_the_key() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[("TWILIO_AUTH_TOKEN", "")]).await;

    let with_key = call(&app, "/tools/flex-handover", |r| r.bearer_auth(TOOL_KEY)).await;
    let (status, body) = call(&app, "/tools/flex-handover", |r| {
        r.header("X-Twilio-Signature", "anything")
    })
    .await;

    assert_eq!(with_key.0, 200);
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (500, "not_configured")
    );
}

/// With signature checks off, a configured tool key is still required;
/// without one the route is open (as in `--dev`).
#[tokio::test]
async fn with_checks_off_a_configured_tool_key_is_still_required() {
    let twilio = twilio_that_creates().await;
    let keyed = spawn_tools_app(&twilio, &[("TWILIO_VALIDATE_SIGNATURES", "false")]).await;
    let open = spawn_tools_app(
        &twilio,
        &[
            ("TWILIO_VALIDATE_SIGNATURES", "false"),
            ("TOOL_API_KEY", ""),
            ("HANDOVER_DEDUP_SECONDS", "0"),
        ],
    )
    .await;

    assert_eq!(call(&keyed, "/tools/flex-handover", |r| r).await.0, 401);
    assert_eq!(
        call(&keyed, "/tools/flex-handover", |r| r.bearer_auth("wrong"))
            .await
            .0,
        403
    );
    // Checks off, no signature can stand in for the key.
    let (status, body) = call(&keyed, "/tools/flex-handover", |r| {
        r.bearer_auth("wrong")
            .header("X-Twilio-Signature", "bm9wZQ==")
    })
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_tool_key"))
    );
    assert_eq!(
        call(&keyed, "/tools/flex-handover", |r| r.bearer_auth(TOOL_KEY))
            .await
            .0,
        200
    );
    assert_eq!(call(&open, "/tools/flex-handover", |r| r).await.0, 200);
}

/// Run as a process: the tool key, the API secret, the auth token and the
/// SharedKey secret never reach the logs, whichever way the key is sent.
#[tokio::test]
async fn secrets_never_appear_in_the_logs() {
    let twilio = twilio_that_creates().await;
    let uri = twilio.uri();
    let api_secret = "api-secret-for-log-test-4d9";
    let process = start_binary(
        &[],
        &[
            ("TWILIO_AUTH_TOKEN", "auth-token-for-log-test-8e2"),
            (
                "TWILIO_WEBHOOK_SHARED_KEY_SECRET",
                "shared-key-for-log-test-1f6",
            ),
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_SECRET", api_secret),
            ("TOOL_API_KEY", TOOL_KEY),
            ("FLEX_API_BASE_URL", &uri),
            ("FLEX_WORKSPACE_SID", "WS0123456789abcdef0123456789abcdef"),
            ("FLEX_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef"),
            ("HANDOVER_DEDUP_SECONDS", "0"),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let tools = format!("{}/tools/flex-handover", process.address);
    let session = format!("conversations__{IS}/{CH}");
    for request in [
        client.post(format!("{tools}?key={TOOL_KEY}")),
        client.post(&tools).bearer_auth(TOOL_KEY),
        client.post(&tools).header("X-Api-Key", TOOL_KEY),
        client.post(&tools).bearer_auth(format!("{TOOL_KEY}-wrong")),
        client
            .post(&tools)
            .header("X-Twilio-Signature", "c2lnbmVkIHdpdGggdGhlIHdyb25nIGtleQ==")
            .header(
                "X-Twilio-Webhooks-Signature-Settings",
                "algorithm=HMAC_SHA256",
            ),
    ] {
        let response = request
            .header("X-Session-Id", &session)
            .header("X-Identity", "phone:+1415")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success() || response.status().as_u16() == 403);
    }

    let logs = process.stop_and_read_logs();
    assert!(
        logs.contains("/tools/flex-handover"),
        "requests are logged: {logs}"
    );
    for secret in [
        TOOL_KEY,
        api_secret,
        "auth-token-for-log-test-8e2",
        "shared-key-for-log-test-1f6",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

/// A tool asked with another method gets the tools' JSON error, so an
/// assistant that reads JSON can tell what went wrong; other routes answer
/// an empty 405. Every 405 says what is allowed.
#[tokio::test]
async fn a_tool_asked_with_another_method_answers_405_json_with_allow() {
    let twilio = twilio_that_creates().await;
    let app = spawn_tools_app(&twilio, &[]).await;

    let tool_error = json!({"status": "error", "error": "method_not_allowed", "message": "This tool is called with POST."});
    for (verb, path, allow, body) in [
        (
            reqwest::Method::GET,
            "/tools/flex-handover",
            "POST",
            Some(&tool_error),
        ),
        (
            reqwest::Method::PUT,
            "/tools/studio-handover",
            "POST",
            Some(&tool_error),
        ),
        (
            reqwest::Method::DELETE,
            "/tools/flex-handover?key=whatever",
            "POST",
            Some(&tool_error),
        ),
        (reqwest::Method::DELETE, "/receive-call", "POST, GET", None),
        (reqwest::Method::PUT, "/refer-handler", "POST, GET", None),
        (reqwest::Method::POST, "/healthz", "GET, HEAD", None),
        (
            reqwest::Method::HEAD,
            "/polyai/call-complete",
            "POST, GET",
            None,
        ),
    ] {
        let response = app
            .client
            .request(verb.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{verb} {path}");
        assert_eq!(response.headers()["allow"], allow, "{verb} {path}");
        let text = response.text().await.unwrap();
        match body {
            Some(expected) => assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                *expected,
                "{verb} {path}"
            ),
            None => assert_eq!(text, "", "{verb} {path}"),
        }
    }
    assert_eq!(twilio.received_requests().await.unwrap().len(), 0);
}
