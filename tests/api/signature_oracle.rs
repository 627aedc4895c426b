//! Differential check against Twilio's own validator: every case in
//! `tests/fixtures/signature_cases.json` (made by
//! `tests/fixtures/oracle/gen-signatures.js` with the `twilio` npm package's
//! `getExpectedTwilioSignature`, `validateRequest` and
//! `validateRequestWithBody`) gets the same signature and the same verdict;
//! so does every case of `tests/fixtures/shared_key_cases.json`, webhooks
//! signed with a SharedKey (`gen-shared-key.js`).

use flexbridge::twilio::SignatureKey;
use flexbridge::twilio::signature::Algorithm;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    twilio_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    auth_token: String,
    url: String,
    params: Vec<(String, String)>,
    body: Option<String>,
    signature: String,
    valid: bool,
    expected_signature: String,
}

/// `tests/fixtures/signature_cases.json`.
fn signature_fixture() -> Fixture {
    serde_json::from_str(include_str!("../fixtures/signature_cases.json")).expect("fixture parses")
}

/// What `key` signs for the case's request, and whether it takes `claimed`
/// for it (through `bodySHA256` when the case has a body).
fn sign_and_check(key: &SignatureKey, case: &Case, claimed: &str) -> (String, bool) {
    match &case.body {
        Some(body) => (
            key.sign(&case.url, &[]),
            key.validate_with_body(claimed, &case.url, body.as_bytes()),
        ),
        None => (
            key.sign(&case.url, &case.params),
            key.validate(claimed, &case.url, &case.params),
        ),
    }
}

#[test]
fn signatures_and_verdicts_match_twilio_node() {
    let fixture = signature_fixture();
    assert_eq!(fixture.twilio_version, "6.3.1");
    assert!(
        fixture.cases.len() >= 500,
        "the fixture has {} cases",
        fixture.cases.len()
    );
    let valid = fixture.cases.iter().filter(|c| c.valid).count();
    assert!(
        valid > 100 && fixture.cases.len() - valid > 100,
        "both verdicts are well represented"
    );

    let mut disagreements = Vec::new();
    for case in &fixture.cases {
        let key = SignatureKey::new(&case.auth_token);
        let (signed, verdict) = sign_and_check(&key, case, &case.signature);
        if signed != case.expected_signature {
            disagreements.push(format!(
                "{}: signature {signed} != {}",
                case.name, case.expected_signature
            ));
        }
        if verdict != case.valid {
            disagreements.push(format!(
                "{}: verdict {verdict} != {}",
                case.name, case.valid
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[derive(Deserialize)]
struct PublicUrlFixture {
    library: String,
    cases: Vec<PublicUrlCase>,
}

#[derive(Deserialize)]
struct PublicUrlCase {
    name: String,
    public_base_url: String,
    path: String,
    auth_token: String,
    params: Vec<(String, String)>,
    signature: String,
}

/// Twilio signs the URL exactly as configured in its console, host case
/// included: a webhook signed by twilio-node or twilio-python for the
/// `PUBLIC_BASE_URL` as written (mixed-case host, path prefix, port, query)
/// is answered, not refused.
#[tokio::test]
async fn webhooks_signed_for_the_public_base_url_as_written_are_accepted() {
    let fixtures = [
        include_str!("../fixtures/public_url_cases.json"),
        include_str!("../fixtures/public_url_cases_python.json"),
    ];
    let mut libraries = Vec::new();
    for text in fixtures {
        let fixture: PublicUrlFixture = serde_json::from_str(text).expect("fixture parses");
        libraries.push(fixture.library.clone());
        for case in &fixture.cases {
            let app = crate::helpers::spawn_app(&[
                ("SIP_URI_HOST", "sip.example.com"),
                ("PUBLIC_BASE_URL", &case.public_base_url),
                ("TWILIO_AUTH_TOKEN", &case.auth_token),
            ])
            .await;

            let response = app
                .client
                .post(app.url(&case.path))
                .header("X-Twilio-Signature", &case.signature)
                .form(&case.params)
                .send()
                .await
                .unwrap();

            let what = format!("{} ({})", case.name, fixture.library);
            assert_eq!(response.status().as_u16(), 200, "{what}");
            let twiml = response.text().await.unwrap();
            assert!(twiml.contains("<Dial"), "{what}: {twiml}");
        }
    }
    assert_eq!(libraries, ["twilio-node 6.3.1", "twilio-python 9.13.0"]);
}

#[derive(Deserialize)]
struct SharedKeyFixture {
    twilio_version: String,
    settings_cases: Vec<SettingsCase>,
    derived_cases: Vec<DerivedCase>,
    signature_cases: Vec<SharedKeyCase>,
    middleware_cases: Vec<MiddlewareCase>,
}

#[derive(Deserialize)]
struct SettingsCase {
    header: String,
    algorithm: String,
    supported: bool,
}

#[derive(Deserialize)]
struct DerivedCase {
    case: String,
    signature: String,
    valid: bool,
}

#[derive(Deserialize)]
struct SharedKeyCase {
    name: String,
    secret: String,
    algorithm: String,
    url: String,
    params: Vec<(String, String)>,
    signature: String,
    valid: bool,
    expected_signature: String,
}

#[derive(Deserialize)]
struct MiddlewareCase {
    name: String,
    auth_token: Option<String>,
    shared_key_secret: Option<String>,
    url: String,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    status: u16,
}

fn shared_key_fixture() -> SharedKeyFixture {
    let fixture: SharedKeyFixture =
        serde_json::from_str(include_str!("../fixtures/shared_key_cases.json"))
            .expect("fixture parses");
    assert_eq!(fixture.twilio_version, "6.3.1");
    fixture
}

/// Twilio's own name for an algorithm, as its library compares them.
fn algorithm_named(name: &str) -> Algorithm {
    match name.to_ascii_uppercase().as_str() {
        "HMAC_SHA1" => Algorithm::HmacSha1,
        "HMAC_SHA256" => Algorithm::HmacSha256,
        other => panic!("the fixture names {other}"),
    }
}

/// Webhooks signed with a SharedKey (`X-Twilio-Webhooks-Signature-Settings`):
/// the algorithm read from the header, and every signature and verdict with
/// HMAC-SHA256 or a SharedKey's HMAC-SHA1, are twilio-node's
/// (`tests/fixtures/shared_key_cases.json`, by `gen-shared-key.js`).
#[test]
fn shared_key_signatures_and_verdicts_match_twilio_node() {
    let fixture = shared_key_fixture();
    let mut disagreements = Vec::new();

    for case in &fixture.settings_cases {
        let ours = Algorithm::from_settings(&case.header);
        let theirs = case.supported.then(|| algorithm_named(&case.algorithm));
        if ours.as_ref().ok() != theirs.as_ref() {
            disagreements.push(format!(
                "settings {:?}: {ours:?}, twilio reads {} (supported: {})",
                case.header, case.algorithm, case.supported
            ));
        }
    }
    assert!(fixture.settings_cases.iter().any(|c| !c.supported));

    let sources = signature_fixture();
    assert_eq!(fixture.derived_cases.len(), sources.cases.len());
    for derived in &fixture.derived_cases {
        let case = sources
            .cases
            .iter()
            .find(|c| c.name == derived.case)
            .expect("every derived case names a case of signature_cases.json");
        let key = SignatureKey::with_algorithm(&case.auth_token, Algorithm::HmacSha256);
        let (signed, verdict) = sign_and_check(&key, case, &derived.signature);
        if signed != derived.signature || verdict != derived.valid {
            disagreements.push(format!(
                "sha256 {}: {signed} ({verdict}) != {} ({})",
                case.name, derived.signature, derived.valid
            ));
        }
    }

    for case in &fixture.signature_cases {
        let key = SignatureKey::with_algorithm(&case.secret, algorithm_named(&case.algorithm));
        let signed = key.sign(&case.url, &case.params);
        let verdict = key.validate(&case.signature, &case.url, &case.params);
        if signed != case.expected_signature || verdict != case.valid {
            disagreements.push(format!(
                "{}: {signed} ({verdict}) != {} ({})",
                case.name, case.expected_signature, case.valid
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.join("\n").lines().count(),
        disagreements.join("\n")
    );
}

/// A voice route answers what twilio-node's `webhook()` middleware answers,
/// configured with the same auth token and SharedKey secret: 200 (the route
/// runs), 400 without a signature, 403 for a wrong one or an unknown
/// algorithm, 500 when the secret the request needs is not set. The same
/// holds with that secret as `TWILIO_SECONDARY_SHARED_KEY_SECRET`, beside
/// another key's (a rotation).
#[tokio::test]
async fn voice_routes_answer_shared_key_webhooks_as_twilio_node_does() {
    let fixture = shared_key_fixture();
    assert!(fixture.middleware_cases.len() >= 10);
    let slots = fixture.middleware_cases.iter().flat_map(|case| {
        let secret = case.shared_key_secret.as_deref();
        // The rotation run exists only for a case that has a secret.
        let rotated = secret.map(|secret| (case, "another-shared-key-secret", secret));
        std::iter::once((case, secret.unwrap_or(""), "")).chain(rotated)
    });
    for (case, shared_key, secondary) in slots {
        let url = url::Url::parse(&case.url).unwrap();
        let origin = url.origin().ascii_serialization();
        let app = crate::helpers::spawn_app(&[
            ("SIP_URI_HOST", "sip.example.com"),
            ("PUBLIC_BASE_URL", &origin),
            (
                "TWILIO_AUTH_TOKEN",
                case.auth_token.as_deref().unwrap_or(""),
            ),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", shared_key),
            ("TWILIO_SECONDARY_SHARED_KEY_SECRET", secondary),
        ])
        .await;
        let mut request = app.client.post(app.url(url.path())).form(&case.params);
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();

        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let slot = if secondary.is_empty() {
            ""
        } else {
            " (secondary)"
        };
        let name = format!("{}{slot}", case.name);
        assert_eq!(status, case.status, "{name}: {body}");
        match status {
            200 => assert!(body.contains("<Dial"), "{name}: {body}"),
            500 if case.shared_key_secret.is_none() => assert_eq!(
                body,
                "this request is signed with a webhook SharedKey \
                 (X-Twilio-Webhooks-Signature-Settings): set TWILIO_WEBHOOK_SHARED_KEY_SECRET\n",
                "{name}"
            ),
            _ => {}
        }
    }
}
