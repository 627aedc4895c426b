//! `X-Twilio-Signature` end to end, through the HTTP server.

use flexbridge::routes::{Answers, ROUTES};
use flexbridge::twilio::SignatureKey;
use flexbridge::twilio::signature::Algorithm;

use crate::helpers::{
    CALL_SID, STUDIO, TEST_AUTH_TOKEN, TestApp, assert_twiml_response, spawn_app, spawn_studio_app,
    with_header,
};

const CALLED: (&str, &str) = ("Called", "+18005551234");

/// Form parameters as name/value pairs.
type Form<'a> = &'a [(&'a str, &'a str)];

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn status_and_body(response: reqwest::Response) -> (u16, String) {
    (response.status().as_u16(), response.text().await.unwrap())
}

/// `POST /receive-call` with `Called` and this `X-Twilio-Signature`.
async fn post_called(app: &TestApp, signature: &str) -> reqwest::Response {
    app.client
        .post(app.url("/receive-call"))
        .header("X-Twilio-Signature", signature)
        .form(&[CALLED])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_correctly_signed_request_is_answered() {
    let app = spawn_studio_app().await;

    let twiml = assert_twiml_response(app.post_form("/receive-call", &[CALLED]).await).await;

    assert!(twiml.contains("<Dial"), "{twiml}");
}

#[tokio::test]
async fn a_request_without_signature_gets_400() {
    let app = spawn_studio_app().await;

    let response = app
        .client
        .post(app.url("/receive-call"))
        .form(&[CALLED])
        .send()
        .await
        .unwrap();

    assert_eq!(
        status_and_body(response).await,
        (400, "missing X-Twilio-Signature header\n".into())
    );
}

/// Each way a request can differ from what was signed is refused with 403.
#[tokio::test]
async fn tampered_requests_get_403() {
    let app = spawn_studio_app().await;
    let good = app.signature_for("/receive-call", &[CALLED]).unwrap();
    let other_token =
        SignatureKey::new("not-the-token").sign(&app.url("/receive-call"), &pairs(&[CALLED]));
    let other_url = app.signature_for("/refer-handler", &[CALLED]).unwrap();
    let cases: [(&str, Form, String); 5] = [
        (
            "parameter value changed",
            &[("Called", "+18005559999")],
            good.clone(),
        ),
        ("parameter added", &[CALLED, ("Digits", "1")], good.clone()),
        ("signed for another URL", &[CALLED], other_url),
        ("signed with another token", &[CALLED], other_token),
        ("garbage signature", &[CALLED], "not base64 at all".into()),
    ];
    for (name, params, signature) in cases {
        let response = app
            .client
            .post(app.url("/receive-call"))
            .header("X-Twilio-Signature", signature)
            .form(params)
            .send()
            .await
            .unwrap();

        assert_eq!(
            status_and_body(response).await,
            (403, "invalid X-Twilio-Signature\n".into()),
            "{name}"
        );
    }
}

/// The query string is part of what Twilio signs.
#[tokio::test]
async fn the_query_string_is_covered_by_the_signature() {
    let app = spawn_studio_app().await;
    let signed_path = "/refer-handler?source=studio&lang=en";
    let signature = app.signature_for(signed_path, &[]).unwrap();

    let valid = app
        .client
        .post(app.url(signed_path))
        .header("X-Twilio-Signature", &signature)
        .send()
        .await
        .unwrap();
    let tampered = app
        .client
        .post(app.url("/refer-handler?source=studio&lang=fr"))
        .header("X-Twilio-Signature", &signature)
        .send()
        .await
        .unwrap();

    assert_eq!(valid.status().as_u16(), 200);
    assert_eq!(tampered.status().as_u16(), 403);
}

/// Repeated parameter names are all covered (deduplicated and sorted, as Twilio does).
#[tokio::test]
async fn repeated_parameters_are_signed_like_twilio_does() {
    let app = spawn_studio_app().await;
    let params = [CALLED, ("Tag", "b"), ("Tag", "a"), ("Tag", "b")];

    let response = app.post_form("/receive-call", &params).await;

    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn a_signed_get_request_is_answered() {
    let app = spawn_studio_app().await;

    let response = app
        .get_signed(
            "/receive-call?Called=%2B18005551234&CallSid=CA0123456789abcdef0123456789abcdef",
        )
        .await;

    assert!(assert_twiml_response(response).await.contains("<Dial"));
}

/// Twilio signs `https://public-host/…`; the request reaches flexbridge as
/// plain http on a local port. The proxy's headers restore the signed URL.
#[tokio::test]
async fn behind_a_proxy_the_forwarded_headers_restore_the_signed_url() {
    let app = spawn_studio_app().await;
    let public = "https://flexbridge.example.com/receive-call";
    let signature = SignatureKey::new(TEST_AUTH_TOKEN).sign(public, &pairs(&[CALLED]));
    let send = |headers: &'static [(&'static str, &'static str)]| {
        let mut request = app
            .client
            .post(app.url("/receive-call"))
            .header("X-Twilio-Signature", &signature)
            .form(&[CALLED]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };

    let forwarded = send(&[
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "flexbridge.example.com"),
    ])
    .await
    .unwrap();
    let host_header = send(&[
        ("X-Forwarded-Proto", "https"),
        ("Host", "flexbridge.example.com"),
    ])
    .await
    .unwrap();
    let rfc7239 = send(&[("Forwarded", "proto=https;host=flexbridge.example.com")])
        .await
        .unwrap();
    let no_proxy_headers = send(&[]).await.unwrap();
    let wrong_scheme = send(&[("X-Forwarded-Host", "flexbridge.example.com")])
        .await
        .unwrap();

    assert_eq!(
        forwarded.status().as_u16(),
        200,
        "X-Forwarded-Proto + X-Forwarded-Host"
    );
    assert_eq!(
        host_header.status().as_u16(),
        200,
        "X-Forwarded-Proto + Host (Fly.io)"
    );
    assert_eq!(rfc7239.status().as_u16(), 200, "Forwarded");
    assert_eq!(
        no_proxy_headers.status().as_u16(),
        403,
        "the local URL was not signed"
    );
    assert_eq!(wrong_scheme.status().as_u16(), 403, "http is not https");
}

/// With `PUBLIC_BASE_URL`, proxy headers are not needed (nor trusted).
#[tokio::test]
async fn public_base_url_defines_the_signed_url() {
    let app = spawn_app(&[
        ("PUBLIC_BASE_URL", "https://flexbridge.example.com"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
    ])
    .await;
    let signature = SignatureKey::new(TEST_AUTH_TOKEN).sign(
        "https://flexbridge.example.com/receive-call",
        &pairs(&[CALLED]),
    );

    let plain = post_called(&app, &signature).await;
    let spoofed = app
        .client
        .post(app.url("/receive-call"))
        .header("X-Twilio-Signature", &signature)
        .header("X-Forwarded-Host", "attacker.example")
        .form(&[CALLED])
        .send()
        .await
        .unwrap();

    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(
        spoofed.status().as_u16(),
        200,
        "forwarded headers are ignored when the origin is configured"
    );
}

/// The standard port may or may not appear in what Twilio signed.
#[tokio::test]
async fn the_url_is_accepted_with_and_without_the_standard_port() {
    let app = spawn_app(&[
        ("PUBLIC_BASE_URL", "https://flexbridge.example.com"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
    ])
    .await;
    let key = SignatureKey::new(TEST_AUTH_TOKEN);
    for signed in [
        "https://flexbridge.example.com/receive-call",
        "https://flexbridge.example.com:443/receive-call",
    ] {
        let signature = key.sign(signed, &pairs(&[CALLED]));
        let response = post_called(&app, &signature).await;
        assert_eq!(response.status().as_u16(), 200, "{signed}");
    }
}

/// Checks on and no auth token: every signed route refuses with 500, but
/// the health check still answers.
#[tokio::test]
async fn without_an_auth_token_signed_routes_fail_closed() {
    let app = spawn_app(&[("TWILIO_AUTH_TOKEN", ""), ("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    // Signed or not: nothing can be checked.
    for (path, signature) in [
        ("/receive-call", Some("anything")),
        ("/refer-handler", Some("anything")),
        ("/receive-call", None),
    ] {
        let request = app.client.post(app.url(path)).form(&[CALLED]);
        let response = with_header(request, "X-Twilio-Signature", signature)
            .send()
            .await
            .unwrap();
        assert_eq!(
            status_and_body(response).await,
            (
                500,
                "signature validation is not configured: set TWILIO_AUTH_TOKEN\n".into()
            ),
            "{path} {signature:?}"
        );
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn checks_can_be_turned_off_explicitly() {
    let app = spawn_app(&[
        ("TWILIO_VALIDATE_SIGNATURES", "false"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
        ("SIP_URI_HOST", "h.example.com"),
    ])
    .await;

    let response = app
        .client
        .post(app.url("/receive-call"))
        .form(&[CALLED])
        .send()
        .await
        .unwrap();

    assert!(assert_twiml_response(response).await.contains("<Dial"));
}

/// A JSON body is covered through the URL's `bodySHA256`.
#[tokio::test]
async fn a_body_signed_through_body_sha256_is_accepted_and_a_swapped_body_is_not() {
    let app = spawn_studio_app().await;
    let body = br#"{"Called":"+18005551234"}"#;
    let path = format!(
        "/receive-call?bodySHA256={}",
        flexbridge::twilio::signature::body_sha256_hex(body)
    );
    let signature = SignatureKey::new(TEST_AUTH_TOKEN).sign(&app.url(&path), &[]);
    let send = |body: &'static [u8]| {
        app.client
            .post(app.url(&path))
            .header("content-type", "application/json")
            .header("X-Twilio-Signature", &signature)
            .body(body)
            .send()
    };

    let original = send(body).await.unwrap();
    let swapped = send(br#"{"Called":"+19005550000"}"#).await.unwrap();

    assert_eq!(original.status().as_u16(), 200);
    assert_eq!(swapped.status().as_u16(), 403);
}

/// Every route Twilio (or a Studio flow) calls refuses unsigned and forged
/// requests, for each method it serves, before any vendor is asked.
#[tokio::test]
async fn every_twilio_facing_route_refuses_unsigned_and_forged_requests() {
    let vendor = wiremock::MockServer::start().await;
    let uri = vendor.uri();
    let app = spawn_app(&[
        ("ASAPP_API_HOST", uri.as_str()),
        ("ASAPP_API_ID", "id"),
        ("ASAPP_API_SECRET", "secret"),
        ("POLYAI_API_BASE_URL", uri.as_str()),
        ("POLYAI_API_KEY", "key"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
    ])
    .await;
    let twilio_facing = ROUTES.iter().filter(|r| {
        matches!(
            r.answers,
            Answers::Twiml | Answers::TwimlOrJson | Answers::Json
        )
    });

    let mut checked = 0;
    for route in twilio_facing {
        for method in route.methods {
            let request = |signature: Option<&str>| {
                let url = format!("{}?CallSid={CALL_SID}", app.url(route.path));
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                with_header(
                    app.client.request(method, url),
                    "X-Twilio-Signature",
                    signature,
                )
            };
            let unsigned = request(None).send().await.unwrap();
            let forged = request(Some("Zm9yZ2Vk")).send().await.unwrap();

            assert_eq!(unsigned.status().as_u16(), 400, "{method} {}", route.path);
            assert_eq!(forged.status().as_u16(), 403, "{method} {}", route.path);
            checked += 1;
        }
    }
    assert_eq!(checked, 22, "11 routes, POST and GET");
    assert!(vendor.received_requests().await.unwrap().is_empty());
}

const OLD_TOKEN: &str = "old-auth-token-0123456789abcdef";
const NEW_TOKEN: &str = "new-auth-token-fedcba9876543210";

/// While the auth token is rotated, a request signed with either token is
/// answered, and the metrics say which token each was signed with.
#[tokio::test]
async fn either_auth_token_is_accepted_while_the_token_is_rotated() {
    let app = spawn_app(&[
        ("SIP_URI_HOST", "sip.example.com"),
        ("TWILIO_AUTH_TOKEN", OLD_TOKEN),
        ("TWILIO_SECONDARY_AUTH_TOKEN", NEW_TOKEN),
    ])
    .await;
    let url = app.public_url("/receive-call");
    let signed = |token: &str| SignatureKey::new(token).sign(&url, &pairs(&[CALLED]));

    for (token, status) in [(OLD_TOKEN, 200), (NEW_TOKEN, 200), ("a-third-token", 403)] {
        let response = post_called(&app, &signed(token)).await;

        assert_eq!(response.status().as_u16(), status, "{token}");
    }
    assert_counted_secretly(&app, &["primary", "secondary"], &[OLD_TOKEN, NEW_TOKEN]).await;
}

/// Each of `labels` counted at least once in
/// `flexbridge_signatures_accepted_total{token}`, and none of `secrets` shown.
async fn assert_counted_secretly(app: &TestApp, labels: &[&str], secrets: &[&str]) {
    let metrics = app.metrics_text().await;
    for label in labels {
        let series = format!(r#"flexbridge_signatures_accepted_total{{token="{label}"}} "#);
        assert!(
            crate::metrics::value(&metrics, &series).is_some_and(|n| n >= 1.0),
            "{label}: {metrics}"
        );
    }
    assert!(secrets.iter().all(|secret| !metrics.contains(secret)));
}

const OLD_SHARED_KEY: &str = "old-shared-key-secret-0123456789";
const NEW_SHARED_KEY: &str = "new-shared-key-secret-9876543210";

/// While a SharedKey is rotated (the Webhook Rule moved, or its traffic
/// split, from the old key's Setting to the new one's), a request signed
/// with either secret is answered, with either algorithm, and the metrics
/// say which secret each was signed with. The settings header alone picks
/// the secrets: a SharedKey signature without it is not an auth token's.
#[tokio::test]
async fn either_shared_key_is_accepted_while_the_shared_key_is_rotated() {
    let app = spawn_app(&[
        ("SIP_URI_HOST", "sip.example.com"),
        ("TWILIO_AUTH_TOKEN", OLD_TOKEN),
        ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", OLD_SHARED_KEY),
        ("TWILIO_SECONDARY_SHARED_KEY_SECRET", NEW_SHARED_KEY),
    ])
    .await;
    let url = app.public_url("/receive-call");
    let cases = [
        (
            OLD_SHARED_KEY,
            "HMAC_SHA256",
            Some("webhooks_sharedkey_old"),
            200,
        ),
        (
            NEW_SHARED_KEY,
            "HMAC_SHA256",
            Some("webhooks_sharedkey_new"),
            200,
        ),
        (
            NEW_SHARED_KEY,
            "HMAC_SHA1",
            Some("webhooks_sharedkey_new"),
            200,
        ),
        (
            "a-third-secret",
            "HMAC_SHA256",
            Some("webhooks_sharedkey_3"),
            403,
        ),
        (NEW_SHARED_KEY, "HMAC_SHA1", None, 403),
    ];
    for (secret, algorithm, key_id, status) in cases {
        let hash = Algorithm::from_settings(&format!("algorithm={algorithm}")).unwrap();
        let signature = SignatureKey::with_algorithm(secret, hash).sign(&url, &pairs(&[CALLED]));
        let settings = key_id.map(|id| format!("key={id},algorithm={algorithm}"));
        let request = app
            .client
            .post(app.url("/receive-call"))
            .header("X-Twilio-Signature", signature)
            .form(&[CALLED]);
        let request = with_header(
            request,
            "X-Twilio-Webhooks-Signature-Settings",
            settings.as_deref(),
        );

        let (got, body) = status_and_body(request.send().await.unwrap()).await;
        assert_eq!(got, status, "{algorithm} {key_id:?}: {body}");
    }
    assert_counted_secretly(
        &app,
        &["shared_key", "secondary_shared_key"],
        &[OLD_SHARED_KEY, NEW_SHARED_KEY],
    )
    .await;
}

/// The secondary token alone (the primary not set yet) is enough.
#[tokio::test]
async fn the_secondary_token_alone_checks_signatures() {
    let app = spawn_app(&[
        ("SIP_URI_HOST", "sip.example.com"),
        ("TWILIO_AUTH_TOKEN", ""),
        ("TWILIO_SECONDARY_AUTH_TOKEN", NEW_TOKEN),
    ])
    .await;
    let url = app.public_url("/receive-call");

    let good = SignatureKey::new(NEW_TOKEN).sign(&url, &pairs(&[CALLED]));
    let bad = SignatureKey::new(OLD_TOKEN).sign(&url, &pairs(&[CALLED]));
    for (signature, status) in [(good, 200), (bad, 403)] {
        let response = post_called(&app, &signature).await;
        assert_eq!(response.status().as_u16(), status);
    }
}

/// Each request's log line names the token its signature was made with;
/// neither token appears anywhere in the logs.
#[tokio::test]
async fn the_log_line_says_which_token_signed_and_never_shows_one() {
    let process = crate::process::start_binary(
        &[],
        &[
            ("SIP_URI_HOST", "sip.example.com"),
            ("TWILIO_AUTH_TOKEN", OLD_TOKEN),
            ("TWILIO_SECONDARY_AUTH_TOKEN", NEW_TOKEN),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let url = format!("{}/receive-call", process.address);
    for token in [NEW_TOKEN, OLD_TOKEN, "a-third-token"] {
        reqwest::Client::new()
            .post(&url)
            .header(
                "X-Twilio-Signature",
                SignatureKey::new(token).sign(&url, &pairs(&[CALLED])),
            )
            .form(&[CALLED])
            .send()
            .await
            .unwrap();
    }
    let logs = process.stop_and_read_logs();

    let signed_with = signed_with_of_receive_calls(&logs);
    assert_eq!(
        signed_with,
        [
            serde_json::json!("secondary"),
            serde_json::json!("primary"),
            serde_json::Value::Null
        ],
        "{logs}"
    );
    assert!(
        !logs.contains(OLD_TOKEN) && !logs.contains(NEW_TOKEN),
        "{logs}"
    );
}

const SHARED_KEY_SECRET: &str = "webhooks-shared-key-secret-0d9e";

/// A request Twilio signed with a webhook SharedKey is counted and logged
/// as `shared_key`; the secret appears in neither the metrics nor the logs.
/// In a process of its own, each count is exact: a forged request is one
/// rejection.
#[tokio::test]
async fn a_shared_key_signature_is_counted_and_logged_as_shared_key() {
    let process = crate::process::start_binary(
        &[],
        &[
            ("SIP_URI_HOST", "sip.example.com"),
            ("TWILIO_AUTH_TOKEN", OLD_TOKEN),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", SHARED_KEY_SECRET),
            ("RUST_LOG", "debug"),
        ],
    )
    .await;
    let url = format!("{}/receive-call", process.address);
    let shared = SignatureKey::with_algorithm(SHARED_KEY_SECRET, Algorithm::HmacSha256);
    let client = reqwest::Client::new();
    for (key, settings) in [
        (
            &shared,
            Some("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"),
        ),
        (&SignatureKey::new(OLD_TOKEN), None),
    ] {
        let request = client
            .post(&url)
            .header("X-Twilio-Signature", key.sign(&url, &pairs(&[CALLED])))
            .form(&[CALLED]);
        let request = with_header(request, "X-Twilio-Webhooks-Signature-Settings", settings);
        assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
    }
    let forged = client
        .post(&url)
        .header("X-Twilio-Signature", "forged")
        .form(&[CALLED]);
    assert_eq!(forged.send().await.unwrap().status().as_u16(), 403);
    let metrics = client
        .get(format!("{}/metrics", process.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let logs = process.stop_and_read_logs();

    let signed_with = signed_with_of_receive_calls(&logs);
    assert_eq!(
        signed_with,
        [
            serde_json::json!("shared_key"),
            serde_json::json!("primary"),
            serde_json::Value::Null
        ],
        "{logs}"
    );
    for series in [
        r#"flexbridge_signatures_accepted_total{token="shared_key"} "#,
        r#"flexbridge_signature_rejections_total{reason="invalid_signature"} "#,
    ] {
        let count = crate::metrics::value(&metrics, series);
        assert_eq!(count, Some(1.0), "{series} in\n{metrics}");
    }
    assert!(!logs.contains(SHARED_KEY_SECRET) && !metrics.contains(SHARED_KEY_SECRET));
}

/// The `signed_with` field of each `/receive-call` request's log line, in order.
fn signed_with_of_receive_calls(logs: &str) -> Vec<serde_json::Value> {
    crate::process::request_spans(logs)
        .into_iter()
        .filter(|span| span["http.route"] == "/receive-call")
        .map(|span| span["signed_with"].clone())
        .collect()
}
