//! `/engage` and `/call-complete` against a local stand-in for ASAPP
//! (wiremock): exact TwiML and JSON, exact outbound requests, the
//! streaming-URL cache, and every vendor fault.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::flex_handover::json_of;
use crate::helpers::{CALL_SID, STUDIO, TestApp, WORKFLOW, assert_handoff_schema, spawn_app_over};
use crate::metrics::{handovers, value};
use crate::process::closed_origin;

pub const ASAPP_ID: &str = "asapp-id-7f3a";
pub const ASAPP_SECRET: &str = "asapp-secret-c91e0b";
const PUBLIC: &str = "https://flexbridge.example.com";
const STREAM: &str = "wss://media.asapp.test/twilio?token=a1&region=us";
pub const STREAM_PATH: &str = "/mg-genagent/v1/twilio-media-stream-url";
const SORRY: &str = "Sorry, please hold.";
pub const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Where ASAPP's API reads the call transfer of `call`.
pub fn transfer_path(call: &str) -> String {
    format!("/generativeagent/v1/call-transfers/{call}")
}

/// An app whose ASAPP origin is `asapp`, with Flex and a public base URL;
/// `extra` overrides or adds variables (an empty value unsets one).
pub async fn spawn_asapp_app(asapp: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    let uri = asapp.uri();
    spawn_app_over(
        &[
            ("ASAPP_API_HOST", uri.as_str()),
            ("ASAPP_API_ID", ASAPP_ID),
            ("ASAPP_API_SECRET", ASAPP_SECRET),
            ("PUBLIC_BASE_URL", PUBLIC),
            ("FLEX_WORKFLOW_SID", WORKFLOW),
            ("FALLBACK_MESSAGE", SORRY),
            ("UPSTREAM_TIMEOUT_MS", "2000"),
        ],
        extra,
    )
    .await
}

pub fn stream_url_answer(url: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "streamingUrl": url }))
}

async fn mount_stream_url(asapp: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(STREAM_PATH))
        .respond_with(response)
        .mount(asapp)
        .await;
}

async fn mount_transfer(asapp: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(transfer_path(CALL_SID)))
        .respond_with(response)
        .mount(asapp)
        .await;
}

pub fn transfer(status: &str, output: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": CALL_SID,
        "externalConversationId": CALL_SID,
        "status": status,
        "createdAt": "2024-06-01T12:34:56Z",
        "type": "PHONE_NUMBER",
        "outputContext": output,
    }))
}

fn agent_output() -> Value {
    json!({
        "transferType": "AGENT",
        "currentTaskName": "billing_dispute",
        "referenceVariables": {"account_id": "A-1001"},
        "transferVariables": {"reason": "refund <now> & \"fast\""},
    })
}

/// XML text escaping, written independently of the app's writer.
pub fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Assert that ASAPP received exactly one authenticated `GET path`.
fn assert_one_asapp_get(requests: &[Request], expected_path: &str) {
    assert_eq!(requests.len(), 1, "exactly one request to ASAPP");
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "GET");
    assert_eq!(request.url.path(), expected_path);
    assert_eq!(request.url.query(), None);
    assert_eq!(request.headers["asapp-api-id"], ASAPP_ID);
    assert_eq!(request.headers["asapp-api-secret"], ASAPP_SECRET);
    assert_eq!(request.headers["accept"], "application/json");
}

/// A Studio return with `FlexbridgeError={code}`.
fn studio_fallback(code: &str) -> String {
    format!(
        r#"{DECL}<Response><Redirect method="POST">{STUDIO}?FlowEvent=return&amp;FlexbridgeError={code}</Redirect></Response>"#
    )
}

#[tokio::test]
async fn engage_connects_the_call_to_the_stream_with_the_call_sid_and_forwarded_fields() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, stream_url_answer(STREAM)).await;
    let app = spawn_asapp_app(&asapp, &[]).await;

    let twiml = app
        .voice(
            "/engage?input_lang=en&taskName=ignored-repeat&input_note=ignored-repeat",
            &[
                ("CallSid", CALL_SID),
                ("From", "+14155550100"),
                ("taskName", "billing"),
                ("customerId", "cust-42"),
                ("input_note", "5 < 6 & \"quoted\" 'x'"),
                ("input_blank", " "),
                ("input_", "no name"),
                ("Caller", "+14155550100"),
            ],
        )
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Connect action=\"{PUBLIC}/call-complete?callSid={CALL_SID}\">\
             <Stream url=\"wss://media.asapp.test/twilio?token=a1&amp;region=us\">\
             <Parameter name=\"asapp_callTransferId\" value=\"{CALL_SID}\"/>\
             <Parameter name=\"asapp_externalConversationId\" value=\"{CALL_SID}\"/>\
             <Parameter name=\"customerId\" value=\"cust-42\"/>\
             <Parameter name=\"taskName\" value=\"billing\"/>\
             <Parameter name=\"input_note\" value=\"5 &lt; 6 &amp; &quot;quoted&quot; &apos;x&apos;\"/>\
             <Parameter name=\"input_lang\" value=\"en\"/>\
             </Stream></Connect></Response>"
        )
    );
    let doc = roxmltree::Document::parse(&twiml).unwrap();
    let note = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("input_note"))
        .unwrap();
    assert_eq!(note.attribute("value"), Some("5 < 6 & \"quoted\" 'x'"));
    assert_one_asapp_get(&asapp.received_requests().await.unwrap(), STREAM_PATH);
}

#[tokio::test]
async fn engage_without_a_public_base_url_gives_a_relative_action_and_accepts_get() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, stream_url_answer("wss://m.asapp.test/s")).await;
    let app = spawn_asapp_app(&asapp, &[("PUBLIC_BASE_URL", "")]).await;

    let response = app
        .get_signed(&format!("/engage?CallSid={CALL_SID}&customerId=c%261"))
        .await;
    let twiml = crate::helpers::assert_twiml_response(response).await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Connect action=\"/call-complete?callSid={CALL_SID}\"><Stream url=\"wss://m.asapp.test/s\">\
             <Parameter name=\"asapp_callTransferId\" value=\"{CALL_SID}\"/>\
             <Parameter name=\"asapp_externalConversationId\" value=\"{CALL_SID}\"/>\
             <Parameter name=\"customerId\" value=\"c&amp;1\"/></Stream></Connect></Response>"
        )
    );
}

/// Studio sends the call with `FlowEvent=return`: no action, and the call
/// goes back to the flow when the stream ends (when the flow is configured).
#[tokio::test]
async fn engage_from_studio_has_no_action_and_returns_the_call_to_the_flow() {
    let expected_connect = format!(
        "<Connect><Stream url=\"wss://m.asapp.test/s\">\
         <Parameter name=\"asapp_callTransferId\" value=\"{CALL_SID}\"/>\
         <Parameter name=\"asapp_externalConversationId\" value=\"{CALL_SID}\"/></Stream></Connect>"
    );
    let cases = [
        (
            vec![("STUDIO_WEBHOOK_URL", STUDIO)],
            format!(
                "{DECL}<Response>{expected_connect}<Redirect method=\"POST\">{STUDIO}?FlowEvent=return</Redirect></Response>"
            ),
        ),
        (
            vec![],
            format!("{DECL}<Response>{expected_connect}</Response>"),
        ),
    ];
    for (env, expected) in cases {
        let asapp = MockServer::start().await;
        mount_stream_url(&asapp, stream_url_answer("wss://m.asapp.test/s")).await;
        let app = spawn_asapp_app(&asapp, &env).await;

        let twiml = app
            .voice("/engage?FlowEvent=return", &[("CallSid", CALL_SID)])
            .await;

        assert_eq!(twiml, expected, "{env:?}");
    }
}

/// Only `FlowEvent=return`, in any case, marks a call sent by Studio: another
/// `FlowEvent`, or `return` under another name, keeps the `action`.
#[tokio::test]
async fn only_flow_event_return_marks_a_call_from_studio() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, stream_url_answer("wss://m.asapp.test/s")).await;
    let app = spawn_asapp_app(&asapp, &[("PUBLIC_BASE_URL", "")]).await;

    let direct = format!(" action=\"/call-complete?callSid={CALL_SID}\"");
    for (query, action) in [
        ("FlowEvent=RETURN", ""),
        ("FlowEvent=start", direct.as_str()),
        ("next=return", direct.as_str()),
    ] {
        let twiml = app
            .voice(&format!("/engage?{query}"), &[("CallSid", CALL_SID)])
            .await;

        assert_eq!(
            twiml,
            format!(
                "{DECL}<Response><Connect{action}><Stream url=\"wss://m.asapp.test/s\">\
                 <Parameter name=\"asapp_callTransferId\" value=\"{CALL_SID}\"/>\
                 <Parameter name=\"asapp_externalConversationId\" value=\"{CALL_SID}\"/>\
                 </Stream></Connect></Response>"
            ),
            "{query}"
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_engages_fetch_the_stream_url_once() {
    let asapp = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(STREAM_PATH))
        .respond_with(stream_url_answer(STREAM).set_delay(Duration::from_millis(200)))
        .expect(1)
        .mount(&asapp)
        .await;
    let app = spawn_asapp_app(&asapp, &[]).await;

    let answers = futures_util::future::join_all(
        (0..50).map(|_| app.voice("/engage", &[("CallSid", CALL_SID)])),
    )
    .await;

    assert_eq!(asapp.received_requests().await.unwrap().len(), 1);
    assert!(
        answers.iter().all(|twiml| twiml
            .contains("<Stream url=\"wss://media.asapp.test/twilio?token=a1&amp;region=us\">")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_stream_url_is_reused_by_the_next_call() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, stream_url_answer(STREAM)).await;
    let app = spawn_asapp_app(&asapp, &[]).await;

    let first = app.voice("/engage", &[("CallSid", CALL_SID)]).await;
    let second = app.voice("/engage", &[("CallSid", CALL_SID)]).await;

    assert_eq!(first, second);
    assert_eq!(asapp.received_requests().await.unwrap().len(), 1);
}

/// A failed refresh is not remembered: the next call asks ASAPP again.
#[tokio::test]
async fn a_failed_stream_url_fetch_is_not_cached() {
    let asapp = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(STREAM_PATH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&asapp)
        .await;
    mount_stream_url(&asapp, stream_url_answer(STREAM)).await;
    let app = spawn_asapp_app(&asapp, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    let first = app.voice("/engage", &[("CallSid", CALL_SID)]).await;
    let second = app.voice("/engage", &[("CallSid", CALL_SID)]).await;

    assert!(first.contains("FlexbridgeError=asapp_refused"), "{first}");
    assert!(second.contains("<Stream url="), "{second}");
    assert_eq!(asapp.received_requests().await.unwrap().len(), 2);
}

/// One way a vendor can fail: what its stand-in answers (nothing when the
/// fault is in the configuration or the connection), the variables that
/// cause it, and the code flexbridge reports.
pub struct Fault {
    pub name: &'static str,
    pub response: Option<ResponseTemplate>,
    pub env: Vec<(&'static str, String)>,
    pub code: &'static str,
}

impl Fault {
    pub fn answer(name: &'static str, response: ResponseTemplate, code: &'static str) -> Self {
        Self {
            name,
            response: Some(response),
            env: Vec::new(),
            code,
        }
    }

    pub fn setting(
        name: &'static str,
        variable: &'static str,
        value: String,
        code: &'static str,
    ) -> Self {
        Self {
            name,
            response: None,
            env: vec![(variable, value)],
            code,
        }
    }

    /// A fault in the request itself: the vendor is never asked.
    pub fn in_request(name: &'static str, code: &'static str) -> Self {
        Self {
            name,
            response: None,
            env: Vec::new(),
            code,
        }
    }

    /// How many requests the vendor receives: one for a fault in its
    /// answer, none for one in the settings. No answer in the tables is
    /// retried: only a refused connection is, and a 429 whose wait fits
    /// the deadline.
    pub fn requests(&self) -> usize {
        usize::from(self.response.is_some())
    }

    /// The app's variables: `base`, this fault's, then the deadline: 300 ms
    /// where the deadline is the fault, else long enough that a loaded
    /// machine never turns the fault's own answer into a timeout.
    pub fn vars<'a>(&'a self, base: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut vars = base.to_vec();
        vars.extend(self.env.iter().map(|(k, v)| (*k, v.as_str())));
        let deadline_ms = if self.code.ends_with("_timeout") {
            "300"
        } else {
            "3000"
        };
        vars.push(("UPSTREAM_TIMEOUT_MS", deadline_ms));
        vars
    }
}

/// Each way ASAPP can fail (see [`Fault::vars`] for the deadline).
fn asapp_faults() -> Vec<Fault> {
    let unauthorized =
        json!({"error": {"requestId": "r-1", "code": "401-01", "message": "Unauthorized"}});
    vec![
        Fault::answer(
            "slower than the deadline",
            stream_url_answer(STREAM).set_delay(Duration::from_millis(700)),
            "asapp_timeout",
        ),
        Fault::answer(
            "401",
            ResponseTemplate::new(401).set_body_json(unauthorized),
            "asapp_refused",
        ),
        Fault::answer(
            "500",
            ResponseTemplate::new(500).set_body_string("oops"),
            "asapp_refused",
        ),
        Fault::answer("503", ResponseTemplate::new(503), "asapp_refused"),
        Fault::answer(
            "429 asking for a wait no clock can hold",
            ResponseTemplate::new(429).insert_header("Retry-After", "99999999999999999999"),
            "asapp_refused",
        ),
        Fault::answer(
            "200 but not JSON",
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            "asapp_bad_response",
        ),
        Fault::answer(
            "200 JSON of another shape",
            ResponseTemplate::new(200).set_body_json(json!({"url": STREAM})),
            "asapp_bad_response",
        ),
        Fault::setting(
            "connection refused",
            "ASAPP_API_HOST",
            closed_origin(),
            "asapp_unreachable",
        ),
        Fault::setting(
            "no secret",
            "ASAPP_API_SECRET",
            String::new(),
            "asapp_not_configured",
        ),
        Fault::setting(
            "no host",
            "ASAPP_API_HOST",
            String::new(),
            "asapp_not_configured",
        ),
    ]
}

/// Every ASAPP fault on `/engage`: 200, the apology, then back to Studio.
#[tokio::test]
async fn engage_says_the_fallback_message_then_returns_to_studio_on_each_asapp_fault() {
    for fault in asapp_faults() {
        let asapp = MockServer::start().await;
        if let Some(response) = &fault.response {
            mount_stream_url(&asapp, response.clone()).await;
        }
        let vars = fault.vars(&[("STUDIO_WEBHOOK_URL", STUDIO)]);
        let app = spawn_asapp_app(&asapp, &vars).await;

        let twiml = app.voice("/engage", &[("CallSid", CALL_SID)]).await;

        assert_eq!(
            twiml,
            format!(
                "{DECL}<Response><Say>{SORRY}</Say><Redirect method=\"POST\">{STUDIO}?FlowEvent=return&amp;FlexbridgeError={}</Redirect></Response>",
                fault.code
            ),
            "{}",
            fault.name
        );
        let received = asapp.received_requests().await.unwrap().len();
        assert_eq!(received, fault.requests(), "{}", fault.name);
    }
}

#[tokio::test]
async fn engage_refuses_a_stream_url_that_is_not_wss() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, stream_url_answer("https://media.asapp.test/s")).await;
    let app = spawn_asapp_app(&asapp, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    let twiml = app.voice("/engage", &[("CallSid", CALL_SID)]).await;

    assert!(
        twiml.contains("FlexbridgeError=asapp_bad_response"),
        "{twiml}"
    );
}

/// Without Studio the apology comes before Flex; without either it is said once.
#[tokio::test]
async fn engage_falls_back_to_flex_or_to_a_single_apology() {
    let flex_task = xml_text(&format!(
        r#"{{"call_sid":"{CALL_SID}","flexbridge_error":"asapp_refused"}}"#
    ));
    let cases = [
        (
            vec![],
            format!(
                "{DECL}<Response><Say>{SORRY}</Say><Enqueue workflowSid=\"{WORKFLOW}\"><Task>{flex_task}</Task></Enqueue></Response>"
            ),
        ),
        (
            vec![("FLEX_WORKFLOW_SID", "")],
            format!("{DECL}<Response><Say>{SORRY}</Say><Hangup/></Response>"),
        ),
    ];
    for (env, expected) in cases {
        let asapp = MockServer::start().await;
        mount_stream_url(&asapp, ResponseTemplate::new(401)).await;
        let app = spawn_asapp_app(&asapp, &env).await;

        let twiml = app.voice("/engage", &[("CallSid", CALL_SID)]).await;

        assert_eq!(twiml, expected, "{env:?}");
    }
}

#[tokio::test]
async fn engage_and_call_complete_without_a_valid_call_sid_fall_back_without_calling_asapp() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, stream_url_answer(STREAM)).await;
    let app = spawn_asapp_app(&asapp, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    for path in ["/engage", "/call-complete"] {
        let missing = app.voice(path, &[("From", "+14155550100")]).await;
        let invalid = app.voice(path, &[("CallSid", "CA123")]).await;

        assert_eq!(missing, studio_fallback("missing_call_sid"), "{path}");
        assert_eq!(invalid, studio_fallback("invalid_call_sid"), "{path}");
    }
    assert!(asapp.received_requests().await.unwrap().is_empty());
}

/// `AGENT`: into Flex, the transfer under `asapp` in the task attributes.
#[tokio::test]
async fn call_complete_enqueues_an_agent_transfer_into_flex_with_its_variables() {
    let asapp = MockServer::start().await;
    mount_transfer(&asapp, transfer("COMPLETED", agent_output())).await;
    let app = spawn_asapp_app(&asapp, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    let twiml = app
        .voice(
            &format!("/call-complete?callSid={CALL_SID}"),
            &[("CallSid", CALL_SID), ("CallStatus", "in-progress")],
        )
        .await;

    let task = format!(
        r#"{{"asapp":{{"callTransferStatus":"COMPLETED","currentTaskName":"billing_dispute","referenceVariables":{{"account_id":"A-1001"}},"transferType":"AGENT","transferVariables":{{"reason":"refund <now> & \"fast\""}}}},"call_sid":"{CALL_SID}","handoff":{{"context":{{"reason":"refund <now> & \"fast\""}},"reason":"refund <now> & \"fast\"","session_id":"{CALL_SID}","vendor":"asapp"}},"reason":"refund <now> & \"fast\""}}"#
    );
    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>{}</Task></Enqueue></Response>",
            xml_text(&task)
        )
    );
    let doc = roxmltree::Document::parse(&twiml).unwrap();
    let attributes: Value = serde_json::from_str(
        doc.descendants()
            .find(|n| n.has_tag_name("Task"))
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(attributes["reason"], "refund <now> & \"fast\"");
    assert_eq!(
        attributes["asapp"]["transferVariables"]["reason"],
        "refund <now> & \"fast\""
    );
    assert_eq!(
        assert_handoff_schema(&attributes)["reason"],
        "refund <now> & \"fast\""
    );
    assert_one_asapp_get(
        &asapp.received_requests().await.unwrap(),
        &transfer_path(CALL_SID),
    );
}

/// The `callSid` flexbridge put in the action URL wins over the form's.
#[tokio::test]
async fn call_complete_reads_the_call_sid_from_the_action_url_first() {
    let asapp = MockServer::start().await;
    mount_transfer(&asapp, transfer("COMPLETED", agent_output())).await;
    let app = spawn_asapp_app(&asapp, &[]).await;

    app.voice(
        &format!("/call-complete?callSid={CALL_SID}"),
        &[("CallSid", "CA99999999999999999999999999999999")],
    )
    .await;
    app.voice("/call-complete", &[("CallSid", CALL_SID)]).await;

    let paths: Vec<String> = asapp
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(paths, [transfer_path(CALL_SID), transfer_path(CALL_SID)]);
}

/// `SYSTEM`, a completed call without a type, or an unknown type: GenerativeAgent
/// is done with the call, which ends, Studio configured or not.
#[tokio::test]
async fn call_complete_hangs_up_when_the_transfer_is_not_for_an_agent() {
    let cases = [
        (
            "SYSTEM",
            transfer(
                "completed",
                json!({"transferType": "SYSTEM", "currentTaskName": "order status", "transferVariables": {"k": "v"}}),
            ),
        ),
        ("completed without type", transfer("COMPLETED", json!({}))),
        (
            "no output context",
            ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETED"})),
        ),
        (
            "unknown type",
            transfer("COMPLETED", json!({"transferType": "QUEUE"})),
        ),
    ];
    for (name, response) in cases {
        for studio in [&[("STUDIO_WEBHOOK_URL", STUDIO)][..], &[]] {
            let asapp = MockServer::start().await;
            mount_transfer(&asapp, response.clone()).await;
            let app = spawn_asapp_app(&asapp, studio).await;

            let twiml = app
                .voice(
                    &format!("/call-complete?callSid={CALL_SID}"),
                    &[("CallSid", CALL_SID)],
                )
                .await;

            assert_eq!(
                twiml,
                format!("{DECL}<Response><Hangup/></Response>"),
                "{name}, Studio: {studio:?}"
            );
        }
    }
}

/// No transfer record: the caller hung up. Not an error, so no fallback.
#[tokio::test]
async fn call_complete_hangs_up_when_the_caller_already_hung_up() {
    let asapp = MockServer::start().await;
    mount_transfer(
        &asapp,
        ResponseTemplate::new(404).set_body_json(
            json!({"error": {"requestId": "r", "code": "404-01", "message": "Not found"}}),
        ),
    )
    .await;
    let app = spawn_asapp_app(&asapp, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    let twiml = app.voice("/call-complete", &[("CallSid", CALL_SID)]).await;

    assert_eq!(twiml, format!("{DECL}<Response><Hangup/></Response>"));
    let metrics = app.metrics_text().await;
    let counted = handovers(&metrics, "asapp", "caller_hung_up");
    assert!(counted.is_some(), "{metrics}");
}

/// `EXPIRED` without an agent request: what GenerativeAgent decided is lost,
/// so the caller gets the voice fallback.
#[tokio::test]
async fn call_complete_falls_back_when_the_transfer_expired() {
    let asapp = MockServer::start().await;
    mount_transfer(&asapp, transfer("EXPIRED", json!({}))).await;
    let app = spawn_asapp_app(&asapp, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    let twiml = app.voice("/call-complete", &[("CallSid", CALL_SID)]).await;

    assert_eq!(twiml, studio_fallback("asapp_transfer_expired"));
}

#[tokio::test]
async fn call_complete_without_a_workflow_falls_back_for_an_agent_transfer() {
    let asapp = MockServer::start().await;
    mount_transfer(&asapp, transfer("COMPLETED", agent_output())).await;
    let app = spawn_asapp_app(
        &asapp,
        &[("FLEX_WORKFLOW_SID", ""), ("STUDIO_WEBHOOK_URL", STUDIO)],
    )
    .await;

    let twiml = app.voice("/call-complete", &[("CallSid", CALL_SID)]).await;

    assert_eq!(twiml, studio_fallback("flex_workflow_not_configured"));
}

/// Every ASAPP fault on `/call-complete` (TwiML): 200 and the voice fallback.
#[tokio::test]
async fn call_complete_falls_back_on_each_asapp_fault() {
    for fault in asapp_faults() {
        let asapp = MockServer::start().await;
        if let Some(response) = &fault.response {
            mount_transfer(&asapp, response.clone()).await;
        }
        let vars = fault.vars(&[("STUDIO_WEBHOOK_URL", STUDIO)]);
        let app = spawn_asapp_app(&asapp, &vars).await;

        let twiml = app.voice("/call-complete", &[("CallSid", CALL_SID)]).await;

        assert_eq!(twiml, studio_fallback(fault.code), "{}", fault.name);
        let received = asapp.received_requests().await.unwrap().len();
        assert_eq!(received, fault.requests(), "{}", fault.name);
    }
}

/// POST `/call-complete` as a Studio Make HTTP Request widget would, signed.
async fn post_for_json(
    app: &TestApp,
    path_and_query: &str,
    params: &[(&str, &str)],
    accept: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path_and_query)).form(params);
    if let Some(signature) = app.signature_for(path_and_query, params) {
        request = request.header("X-Twilio-Signature", signature);
    }
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn call_complete_answers_studio_with_the_transfer_as_json() {
    let asapp = MockServer::start().await;
    mount_transfer(&asapp, transfer("COMPLETED", agent_output())).await;
    let app = spawn_asapp_app(&asapp, &[]).await;
    let expected = r#"{"callTransferStatus":"COMPLETED","transferType":"AGENT","currentTaskName":"billing_dispute","referenceVariables":{"account_id":"A-1001"},"transferVariables":{"reason":"refund <now> & \"fast\""}}"#;

    let by_query = post_for_json(
        &app,
        "/call-complete?format=json",
        &[("CallSid", CALL_SID)],
        None,
    )
    .await;
    let by_accept = post_for_json(
        &app,
        "/call-complete",
        &[("CallSid", CALL_SID)],
        Some("text/html;q=0.5, Application/JSON"),
    )
    .await;
    let by_get = app
        .get_signed(&format!("/call-complete?callSid={CALL_SID}&format=JSON"))
        .await;

    for response in [by_query, by_accept, by_get] {
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.text().await.unwrap(), expected);
    }
    assert_eq!(asapp.received_requests().await.unwrap().len(), 3);
}

/// JSON errors: the status, code and message a flow can branch on.
#[tokio::test]
async fn call_complete_json_errors_carry_the_right_status_and_code() {
    struct Case {
        fault: Fault,
        params: &'static [(&'static str, &'static str)],
        status: u16,
        message: Option<&'static str>,
    }
    let with_sid: &[(&str, &str)] = &[("CallSid", CALL_SID)];
    let case = |fault, status, message| Case {
        fault,
        params: with_sid,
        status,
        message,
    };
    let unauthorized =
        json!({"error": {"requestId": "r-9", "code": "401-01", "message": "Unauthorized"}});
    let cases = [
        case(
            Fault::answer(
                "no transfer",
                ResponseTemplate::new(404),
                "asapp_transfer_not_found",
            ),
            404,
            Some(
                "ASAPP has no call transfer for this call (the caller hung up before GenerativeAgent finished).",
            ),
        ),
        case(
            Fault::answer(
                "401",
                ResponseTemplate::new(401).set_body_json(unauthorized),
                "asapp_refused",
            ),
            502,
            Some("ASAPP answered 401 (error 401-01, Unauthorized, request r-9)."),
        ),
        case(
            Fault::answer("500", ResponseTemplate::new(500), "asapp_refused"),
            502,
            Some("ASAPP answered 500."),
        ),
        case(
            Fault::answer(
                "bad JSON",
                ResponseTemplate::new(200).set_body_string("{"),
                "asapp_bad_response",
            ),
            502,
            None,
        ),
        case(
            Fault::answer(
                "timeout",
                transfer("COMPLETED", json!({})).set_delay(Duration::from_millis(700)),
                "asapp_timeout",
            ),
            504,
            Some("ASAPP did not answer within 300 ms."),
        ),
        case(
            Fault::setting(
                "unreachable",
                "ASAPP_API_HOST",
                closed_origin(),
                "asapp_unreachable",
            ),
            502,
            None,
        ),
        case(
            Fault::setting(
                "no id",
                "ASAPP_API_ID",
                String::new(),
                "asapp_not_configured",
            ),
            500,
            Some("ASAPP is not set up: ASAPP_API_ID is not set."),
        ),
        Case {
            fault: Fault::in_request("no call SID", "missing_call_sid"),
            params: &[("From", "+1")],
            status: 400,
            message: Some("the request has no call SID: send callSid or CallSid."),
        },
        Case {
            fault: Fault::in_request("bad call SID", "invalid_call_sid"),
            params: &[("CallSid", "CA12")],
            status: 400,
            message: None,
        },
    ];
    for Case {
        fault,
        params,
        status,
        message,
    } in cases
    {
        let asapp = MockServer::start().await;
        if let Some(response) = &fault.response {
            mount_transfer(&asapp, response.clone()).await;
        }
        let app = spawn_asapp_app(&asapp, &fault.vars(&[])).await;

        let (actual, body) = json_of(post_for_json(
            &app,
            "/call-complete?format=json",
            params,
            None,
        ))
        .await;

        let name = fault.name;
        assert_eq!(actual, status, "{name}: {body}");
        assert_eq!(body["status"], "error", "{name}");
        assert_eq!(body["error"], fault.code, "{name}: {body}");
        match message {
            Some(message) => assert_eq!(body["message"], message, "{name}"),
            None => assert!(!body["message"].as_str().unwrap().is_empty(), "{name}"),
        }
        assert!(!body.to_string().contains(ASAPP_SECRET), "{name}");
    }
}

/// In a process of its own, each count is exact: one handover, one request
/// to ASAPP.
#[tokio::test]
async fn call_complete_counts_its_handovers() {
    let asapp = MockServer::start().await;
    mount_transfer(&asapp, transfer("COMPLETED", agent_output())).await;
    let uri = asapp.uri();
    let flexbridge = crate::process::start_binary(
        &[],
        &[
            ("ASAPP_API_HOST", uri.as_str()),
            ("ASAPP_API_ID", ASAPP_ID),
            ("ASAPP_API_SECRET", ASAPP_SECRET),
            ("FLEX_WORKFLOW_SID", WORKFLOW),
            ("TWILIO_VALIDATE_SIGNATURES", "false"),
        ],
    )
    .await;

    let (status, _) = flexbridge
        .post_form("/call-complete", &[("CallSid", CALL_SID)])
        .await;
    let metrics = reqwest::get(format!("{}/metrics", flexbridge.address));
    let metrics = metrics.await.unwrap().text().await.unwrap();

    assert_eq!(status, 200);
    assert_eq!(
        handovers(&metrics, "asapp", "handed_over"),
        Some(1.0),
        "{metrics}"
    );
    let series = r#"flexbridge_upstream_requests_total{upstream="asapp",outcome="200"} "#;
    assert_eq!(value(&metrics, series), Some(1.0), "{metrics}");
}

/// The API secret never reaches the logs, even at debug level and on failure.
#[tokio::test]
async fn the_asapp_secret_never_reaches_the_logs() {
    let asapp = MockServer::start().await;
    mount_stream_url(&asapp, ResponseTemplate::new(401)).await;
    mount_transfer(&asapp, ResponseTemplate::new(500)).await;
    let uri = asapp.uri();
    let logs = crate::process::logs_of_posts(
        &[
            ("ASAPP_API_HOST", uri.as_str()),
            ("ASAPP_API_ID", ASAPP_ID),
            ("ASAPP_API_SECRET", ASAPP_SECRET),
        ],
        &[("CallSid", CALL_SID)],
        &[
            ("/engage", 200),
            ("/call-complete", 200),
            ("/call-complete?format=json", 502),
        ],
    )
    .await;

    assert!(logs.contains("asapp_refused"), "{logs}");
    assert!(!logs.contains(ASAPP_SECRET), "{logs}");
}
