//! Shared test harness: spawn the real app on a random port and talk to it over HTTP.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use flexbridge::config::Settings;
use flexbridge::startup::Application;
use flexbridge::twilio::SignatureKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The auth token every test app validates signatures with, unless a test
/// sets its own (or turns checks off).
pub const TEST_AUTH_TOKEN: &str = "test-auth-token-0123456789abcdef";

/// A Studio Trigger webhook URL used across tests.
pub const STUDIO: &str = "https://webhooks.twilio.com/v1/Accounts/AC11111111111111111111111111111111/Flows/FW22222222222222222222222222222222";
/// A TaskRouter workflow SID used across tests.
pub const WORKFLOW: &str = "WW33333333333333333333333333333333";
/// A call SID used across tests.
pub const CALL_SID: &str = "CA44444444444444444444444444444444";

/// `request` with the header `name` when there is a value, without it otherwise.
pub fn with_header(
    request: reqwest::RequestBuilder,
    name: &str,
    value: Option<&str>,
) -> reqwest::RequestBuilder {
    match value {
        Some(value) => request.header(name, value),
        None => request,
    }
}

/// The rows of the table in the README's `## {heading}` section: each
/// line that opens with a code span, without its leading `` | ` ``.
pub fn readme_rows(heading: &str) -> impl Iterator<Item = &'static str> {
    include_str!("../../README.md")
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("the README has no {heading} section"))
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
}

/// Assert that the README lists exactly `actual`, naming what differs.
pub fn assert_readme_lists(listed: &BTreeSet<&str>, actual: &BTreeSet<&str>) {
    let missing: Vec<_> = actual.difference(listed).collect();
    let extra: Vec<_> = listed.difference(actual).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in the README: {missing:?}; in the README only: {extra:?}"
    );
}

/// A running app and a client for it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    /// Signs requests the way Twilio does, when the app checks signatures.
    pub key: Option<SignatureKey>,
    /// The origin Twilio would call (`PUBLIC_BASE_URL`, else the local address).
    pub public_origin: String,
}

/// Start the app with these variables plus a local listen address and, by
/// default, signature checks on with [`TEST_AUTH_TOKEN`].
pub async fn spawn_app(env: &[(&str, &str)]) -> TestApp {
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.insert("HOST".into(), "127.0.0.1".into());
    vars.insert("PORT".into(), "0".into());
    vars.entry("TWILIO_AUTH_TOKEN".into())
        .or_insert_with(|| TEST_AUTH_TOKEN.into());
    let checks_on = vars
        .get("TWILIO_VALIDATE_SIGNATURES")
        .is_none_or(|v| v != "false");
    let key = checks_on
        .then(|| vars.get("TWILIO_AUTH_TOKEN").filter(|t| !t.is_empty()))
        .flatten()
        .map(|token| SignatureKey::new(token));
    let settings = Settings::from_lookup(&|name| vars.get(name).cloned(), false)
        .expect("test settings are valid");
    let app = Application::build(settings).expect("the app binds a local port");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let address = format!("http://127.0.0.1:{port}");
    let public_origin = vars
        .get("PUBLIC_BASE_URL")
        .filter(|b| !b.is_empty())
        .map_or_else(
            || address.clone(),
            |base| base.trim_end_matches('/').to_owned(),
        );
    TestApp {
        address,
        port,
        client: reqwest::Client::new(),
        key,
        public_origin,
    }
}

/// Start the app with `defaults`, each replaced by the override of the same
/// name in `overrides` (which may also add variables; an empty value unsets
/// one, as in the environment).
pub async fn spawn_app_over(defaults: &[(&str, &str)], overrides: &[(&str, &str)]) -> TestApp {
    let mut env = defaults.to_vec();
    for (name, value) in overrides {
        env.retain(|(n, _)| n != name);
        env.push((name, value));
    }
    spawn_app(&env).await
}

/// Studio mode: SIP host and Studio URL set.
pub async fn spawn_studio_app() -> TestApp {
    spawn_app(&[
        ("SIP_URI_HOST", "sip.example.com"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
    ])
    .await
}

impl TestApp {
    /// The local URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The Prometheus text `GET /metrics` answers (no token configured).
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }

    /// The public URL of `path`: what Twilio signs.
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{path}", self.public_origin)
    }

    /// The signature Twilio would send for a form POST to `path`, if checks are on.
    pub fn signature_for(&self, path: &str, params: &[(&str, &str)]) -> Option<String> {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.key
            .as_ref()
            .map(|key| key.sign(&self.public_url(path), &owned))
    }

    /// POST a form to `path`, signed as Twilio would sign it.
    pub async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).form(params);
        if let Some(signature) = self.signature_for(path, params) {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.expect("request reaches the app")
    }

    /// POST a raw body to `path`, signed over the parameters the app will
    /// decode from it (Twilio signs what it sends).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", content_type);
        if let Some(key) = &self.key {
            let params: Vec<(String, String)> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            request = request.header(
                "X-Twilio-Signature",
                key.sign(&self.public_url(path), &params),
            );
        }
        request
            .body(body)
            .send()
            .await
            .expect("request reaches the app")
    }

    /// GET `path_and_query`, signed over the URL.
    pub async fn get_signed(&self, path_and_query: &str) -> reqwest::Response {
        let mut request = self.client.get(self.url(path_and_query));
        if let Some(key) = &self.key {
            request = request.header(
                "X-Twilio-Signature",
                key.sign(&self.public_url(path_and_query), &[]),
            );
        }
        request.send().await.expect("request reaches the app")
    }

    /// POST a form to a voice route and return its TwiML, asserting the
    /// voice-route contract: 200, text/xml, a well-formed `<Response>`.
    pub async fn voice(&self, path: &str, params: &[(&str, &str)]) -> String {
        let response = self.post_form(path, params).await;
        assert_twiml_response(response).await
    }
}

/// Assert the voice contract on a response and return its body.
pub async fn assert_twiml_response(response: reqwest::Response) -> String {
    assert_eq!(
        response.status().as_u16(),
        200,
        "voice routes always answer 200"
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/xml; charset=utf-8",
        "voice routes answer TwiML"
    );
    let body = response.text().await.expect("a UTF-8 body");
    assert_well_formed_twiml(&body);
    body
}

/// Parse with a strict XML parser; the root must be `<Response>` and the
/// declaration must be the one Twilio's libraries write.
pub fn assert_well_formed_twiml(body: &str) {
    assert!(
        body.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#),
        "TwiML starts with the XML declaration: {body}"
    );
    let doc = roxmltree::Document::parse(body)
        .unwrap_or_else(|e| panic!("well-formed XML expected ({e}): {body}"));
    assert_eq!(doc.root_element().tag_name().name(), "Response", "{body}");
}

/// The text of the single `<Redirect>` of a response, checking its method.
pub fn redirect_url(body: &str) -> String {
    let doc = roxmltree::Document::parse(body).expect("well-formed XML");
    let verbs: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .collect();
    assert_eq!(verbs.len(), 1, "exactly one verb: {body}");
    assert_eq!(verbs[0].tag_name().name(), "Redirect", "{body}");
    assert_eq!(verbs[0].attribute("method"), Some("POST"), "{body}");
    verbs[0].text().unwrap_or_default().to_owned()
}

/// Structural comparison of two TwiML documents: same elements in the same
/// order, same attributes (any order), same text; `<Task>` text is compared
/// as JSON values, since key order carries no meaning there.
pub fn assert_equivalent_twiml(actual: &str, expected: &str) {
    let a = roxmltree::Document::parse(actual).expect("actual is well-formed");
    let e = roxmltree::Document::parse(expected).expect("expected is well-formed");
    compare_nodes(a.root_element(), e.root_element(), actual, expected);
}

fn compare_nodes(a: roxmltree::Node, e: roxmltree::Node, actual: &str, expected: &str) {
    let ctx = || format!("\nactual:   {actual}\nexpected: {expected}");
    assert_eq!(
        a.tag_name().name(),
        e.tag_name().name(),
        "element name{}",
        ctx()
    );
    let mut a_attrs: Vec<_> = a.attributes().map(|x| (x.name(), x.value())).collect();
    let mut e_attrs: Vec<_> = e.attributes().map(|x| (x.name(), x.value())).collect();
    a_attrs.sort();
    e_attrs.sort();
    assert_eq!(
        a_attrs,
        e_attrs,
        "attributes of <{}>{}",
        a.tag_name().name(),
        ctx()
    );
    let text = |n: roxmltree::Node| -> String {
        n.children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect()
    };
    if a.tag_name().name() == "Task" {
        let a_json: serde_json::Value = serde_json::from_str(&text(a)).expect("Task is JSON");
        let e_json: serde_json::Value = serde_json::from_str(&text(e)).expect("Task is JSON");
        assert_eq!(a_json, e_json, "Task attributes{}", ctx());
    } else {
        assert_eq!(
            text(a),
            text(e),
            "text of <{}>{}",
            a.tag_name().name(),
            ctx()
        );
    }
    let a_children: Vec<_> = a.children().filter(|c| c.is_element()).collect();
    let e_children: Vec<_> = e.children().filter(|c| c.is_element()).collect();
    assert_eq!(
        a_children.len(),
        e_children.len(),
        "children of <{}>{}",
        a.tag_name().name(),
        ctx()
    );
    for (ac, ec) in a_children.into_iter().zip(e_children) {
        compare_nodes(ac, ec, actual, expected);
    }
}

/// Assert that task attributes match `schemas/handoff.schema.json`, the
/// handoff shape every vendor's Flex task carries, and return its `handoff`.
pub fn assert_handoff_schema(attributes: &serde_json::Value) -> serde_json::Value {
    static SCHEMA: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/handoff.schema.json"))
                .expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
    });
    let errors: Vec<String> = SCHEMA
        .iter_errors(attributes)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {attributes}");
    attributes["handoff"].clone()
}

/// The task attributes of the single `<Enqueue>` of a TwiML answer.
pub fn enqueued_attributes(twiml: &str) -> serde_json::Value {
    let doc = roxmltree::Document::parse(twiml).expect("well-formed XML");
    let task = doc
        .descendants()
        .find(|n| n.has_tag_name("Task"))
        .unwrap_or_else(|| panic!("no <Task>: {twiml}"));
    serde_json::from_str(task.text().unwrap_or_default()).expect("the task attributes are JSON")
}

/// What a client reads on `stream` after sending `GET /healthz` on it: the
/// whole answer, or nothing when the connection has been closed.
pub async fn healthz_on(stream: &mut tokio::net::TcpStream) -> String {
    let request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut answer = Vec::new();
    let mut buffer = [0; 1024];
    // The body, `ok`, ends the answer; anything else is in after 5 s.
    while !answer.ends_with(b"\r\n\r\nok") {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}
