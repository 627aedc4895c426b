//! Differential check against Twilio's own validator: every case in
//! `tests/fixtures/signature_cases.json` (made by
//! `tests/fixtures/oracle/gen-signatures.js` with the `twilio` npm package's
//! `getExpectedTwilioSignature`, `validateRequest` and
//! `validateRequestWithBody`) gets the same signature and the same verdict.

use flexbridge::twilio::SignatureKey;
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

#[test]
fn signatures_and_verdicts_match_twilio_node() {
    let fixture: Fixture = serde_json::from_str(include_str!("../fixtures/signature_cases.json"))
        .expect("fixture parses");
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
        let (signed, verdict) = match &case.body {
            Some(body) => (
                key.sign(&case.url, &[]),
                key.validate_with_body(&case.signature, &case.url, body.as_bytes()),
            ),
            None => (
                key.sign(&case.url, &case.params),
                key.validate(&case.signature, &case.url, &case.params),
            ),
        };
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
