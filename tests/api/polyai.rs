//! `/polyai/connect`, `/polyai/handoff-state` and `/polyai/call-complete`
//! against a local stand-in for PolyAI (wiremock): exact TwiML and JSON,
//! exact outbound requests, and every vendor fault.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::asapp::{DECL, Fault, xml_text};
use crate::flex_handover::json_of;
use crate::helpers::{
    CALL_SID, STUDIO, TestApp, WORKFLOW, assert_handoff_schema, enqueued_attributes, spawn_app_over,
};
use crate::metrics::handovers;
use crate::process::closed_origin;

pub const API_KEY: &str = "polyai-key-5d2b91";
const CONNECTOR: &str = "connector-7c1a";
const PUBLIC: &str = "https://flexbridge.example.com";
const SORRY: &str = "Sorry, please hold.";
pub const STATE_PATH: &str = "/v1/handoff_state";
/// A handoff state with spacing and key order a re-serialisation would change.
const STATE: &str = r#"{"reason": "billing", "summary": "Disputes a <charge> & wants \"refund\"", "caller": {"name": "Ana"}}"#;

/// An app whose PolyAI origin is `polyai`, with Flex and a public base URL;
/// `extra` overrides or adds variables (an empty value unsets one).
async fn spawn_polyai_app(polyai: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    let uri = polyai.uri();
    spawn_app_over(
        &[
            ("POLYAI_API_BASE_URL", uri.as_str()),
            ("POLYAI_API_KEY", API_KEY),
            ("POLYAI_CONNECTOR_ID", CONNECTOR),
            ("PUBLIC_BASE_URL", PUBLIC),
            ("FLEX_WORKFLOW_SID", WORKFLOW),
            ("FALLBACK_MESSAGE", SORRY),
            ("UPSTREAM_TIMEOUT_MS", "2000"),
        ],
        extra,
    )
    .await
}

fn state_answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(STATE, "application/json")
}

async fn mount_state(polyai: &MockServer, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(STATE_PATH))
        .and(query_param("id", CALL_SID))
        .respond_with(response)
        .mount(polyai)
        .await;
}

/// Assert that PolyAI received exactly one authenticated state request.
fn assert_one_state_request(requests: &[Request]) {
    assert_eq!(requests.len(), 1, "exactly one request to PolyAI");
    let request = &requests[0];
    assert_eq!(request.method.as_str(), "GET");
    assert_eq!(request.url.path(), STATE_PATH);
    assert_eq!(request.url.query(), Some(format!("id={CALL_SID}").as_str()));
    assert_eq!(request.headers["x-api-key"], API_KEY);
    assert_eq!(request.headers["accept"], "application/json");
}

/// Each way PolyAI can fail (see [`Fault::vars`] for the deadline).
fn polyai_faults() -> Vec<Fault> {
    vec![
        Fault::answer(
            "slower than the deadline",
            state_answer().set_delay(Duration::from_millis(700)),
            "polyai_timeout",
        ),
        Fault::answer("401", ResponseTemplate::new(401), "polyai_refused"),
        Fault::answer("500", ResponseTemplate::new(500), "polyai_refused"),
        Fault::answer("503", ResponseTemplate::new(503), "polyai_refused"),
        Fault::answer(
            "429 asking for a wait no clock can hold",
            ResponseTemplate::new(429).insert_header("Retry-After", "99999999999999999999"),
            "polyai_refused",
        ),
        Fault::answer(
            "200 but not JSON",
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            "polyai_bad_response",
        ),
        Fault::setting(
            "connection refused",
            "POLYAI_API_BASE_URL",
            closed_origin(),
            "polyai_unreachable",
        ),
        Fault::setting(
            "no key",
            "POLYAI_API_KEY",
            String::new(),
            "polyai_not_configured",
        ),
    ]
}

#[tokio::test]
async fn polyai_connect_hands_the_call_to_the_connector() {
    let polyai = MockServer::start().await;
    let app = spawn_polyai_app(&polyai, &[]).await;

    let twiml = app.voice("/polyai/connect", &[("CallSid", CALL_SID)]).await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Connect connectorId=\"{CONNECTOR}\" action=\"{PUBLIC}/polyai/call-complete\"/></Response>"
        )
    );
    assert!(
        polyai.received_requests().await.unwrap().is_empty(),
        "connect calls nobody"
    );
}

/// `POLYAI_CONNECT_MESSAGE` is said first; every value is escaped; the
/// action is relative without `PUBLIC_BASE_URL`.
#[tokio::test]
async fn polyai_connect_says_the_configured_message_first_and_escapes_every_value() {
    let polyai = MockServer::start().await;
    let app = spawn_polyai_app(
        &polyai,
        &[
            ("POLYAI_CONNECT_MESSAGE", "Calls are recorded & <reviewed>."),
            ("POLYAI_CONNECTOR_ID", "conn\"<1>&"),
            ("PUBLIC_BASE_URL", ""),
        ],
    )
    .await;

    let response = app
        .get_signed(&format!("/polyai/connect?CallSid={CALL_SID}"))
        .await;
    let twiml = crate::helpers::assert_twiml_response(response).await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Say>Calls are recorded &amp; &lt;reviewed&gt;.</Say>\
             <Connect connectorId=\"conn&quot;&lt;1&gt;&amp;\" action=\"/polyai/call-complete\"/></Response>"
        )
    );
}

#[tokio::test]
async fn polyai_connect_without_a_connector_apologises_and_falls_back() {
    let polyai = MockServer::start().await;
    let app = spawn_polyai_app(
        &polyai,
        &[("POLYAI_CONNECTOR_ID", ""), ("STUDIO_WEBHOOK_URL", STUDIO)],
    )
    .await;

    let twiml = app.voice("/polyai/connect", &[("CallSid", CALL_SID)]).await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Say>{SORRY}</Say><Redirect method=\"POST\">{STUDIO}?FlowEvent=return&amp;FlexbridgeError=polyai_not_configured</Redirect></Response>"
        )
    );
}

/// GET with `call_sid` (a Studio Make HTTP Request widget) or POST with
/// `CallSid`: PolyAI's JSON, byte for byte.
#[tokio::test]
async fn handoff_state_answers_polyais_json_unchanged() {
    // `call_sid` first, as the widget sends it; a blank one (a Studio
    // variable that came out empty) does not hide `CallSid`.
    let cases = [
        "get call_sid",
        "post CallSid",
        "get CallSid",
        "post blank call_sid",
        "post call_sid before CallSid",
    ];
    for case in cases {
        let polyai = MockServer::start().await;
        mount_state(&polyai, state_answer()).await;
        let app = spawn_polyai_app(&polyai, &[]).await;

        let response = match case {
            "get call_sid" => {
                app.get_signed(&format!("/polyai/handoff-state?call_sid={CALL_SID}"))
                    .await
            }
            "post CallSid" => {
                app.post_form("/polyai/handoff-state", &[("CallSid", CALL_SID)])
                    .await
            }
            "post blank call_sid" => {
                let form = [("call_sid", " "), ("CallSid", CALL_SID)];
                app.post_form("/polyai/handoff-state", &form).await
            }
            "post call_sid before CallSid" => {
                let other = "CA99999999999999999999999999999999";
                let form = [("CallSid", other), ("call_sid", CALL_SID)];
                app.post_form("/polyai/handoff-state", &form).await
            }
            _ => {
                app.get_signed(&format!("/polyai/handoff-state?CallSid={CALL_SID}"))
                    .await
            }
        };

        assert_eq!(response.status().as_u16(), 200, "{case}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{case}"
        );
        assert_eq!(response.text().await.unwrap(), STATE, "{case}");
        assert_one_state_request(&polyai.received_requests().await.unwrap());
    }
}

#[tokio::test]
async fn handoff_state_errors_are_json_with_the_right_status() {
    let mut cases: Vec<(Fault, u16)> = polyai_faults()
        .into_iter()
        .map(|fault| {
            let status = match fault.code {
                "polyai_timeout" => 504,
                "polyai_not_configured" => 500,
                _ => 502,
            };
            (fault, status)
        })
        .collect();
    cases.push((
        Fault::answer(
            "no state",
            ResponseTemplate::new(404),
            "polyai_handoff_state_not_found",
        ),
        404,
    ));
    for (fault, status) in cases {
        let polyai = MockServer::start().await;
        if let Some(response) = &fault.response {
            mount_state(&polyai, response.clone()).await;
        }
        let app = spawn_polyai_app(&polyai, &fault.vars(&[])).await;

        let (actual, body) =
            json_of(app.get_signed(&format!("/polyai/handoff-state?call_sid={CALL_SID}"))).await;

        let name = fault.name;
        assert_eq!(actual, status, "{name}: {body}");
        assert_eq!(body["status"], "error", "{name}");
        assert_eq!(body["error"], fault.code, "{name}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{name}");
        if status == 404 {
            let told = "PolyAI has no handoff state for this call.";
            assert_eq!(body["message"], told, "{name}");
        }
        assert!(!body.to_string().contains(API_KEY), "{name}");
        let received = polyai.received_requests().await.unwrap().len();
        assert_eq!(received, fault.requests(), "{name}");
    }
}

#[tokio::test]
async fn handoff_state_names_the_missing_setting_and_the_call_sid_parameters() {
    let polyai = MockServer::start().await;
    let app = spawn_polyai_app(&polyai, &[("POLYAI_API_KEY", "")]).await;

    let (unset, unset_body) =
        json_of(app.get_signed(&format!("/polyai/handoff-state?call_sid={CALL_SID}"))).await;
    let (missing, missing_body) = json_of(app.get_signed("/polyai/handoff-state")).await;
    let (invalid, invalid_body) =
        json_of(app.get_signed("/polyai/handoff-state?call_sid=CA..%2F..")).await;

    assert_eq!(
        (unset, unset_body),
        (
            500,
            json!({"status": "error", "error": "polyai_not_configured", "message": "PolyAI is not set up: POLYAI_API_KEY is not set."})
        )
    );
    assert_eq!(
        (missing, missing_body),
        (
            400,
            json!({"status": "error", "error": "missing_call_sid", "message": "the request has no call SID: send call_sid or CallSid."})
        )
    );
    assert_eq!(
        (invalid, invalid_body["error"].as_str()),
        (400, Some("invalid_call_sid"))
    );
    assert!(polyai.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn polyai_call_complete_enqueues_the_call_with_the_handoff_state() {
    let polyai = MockServer::start().await;
    mount_state(&polyai, state_answer()).await;
    let app = spawn_polyai_app(&polyai, &[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    let twiml = app
        .voice(
            "/polyai/call-complete",
            &[("CallSid", CALL_SID), ("CallStatus", "in-progress")],
        )
        .await;

    // The state's fields as attributes, and all of it again under `polyai`.
    let state = r#"{"caller":{"name":"Ana"},"reason":"billing","summary":"Disputes a <charge> & wants \"refund\""}"#;
    let task = format!(
        r#"{{"call_sid":"{CALL_SID}","caller":{{"name":"Ana"}},"handoff":{{"context":{state},"reason":"billing","session_id":"{CALL_SID}","summary":"Disputes a <charge> & wants \"refund\"","vendor":"polyai"}},"polyai":{state},"reason":"billing","summary":"Disputes a <charge> & wants \"refund\""}}"#
    );
    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>{}</Task></Enqueue></Response>",
            xml_text(&task)
        )
    );
    assert_handoff_schema(&enqueued_attributes(&twiml));
    assert_one_state_request(&polyai.received_requests().await.unwrap());
    let metrics = app.metrics_text().await;
    let counted = handovers(&metrics, "polyai", "handed_over");
    assert!(counted.is_some(), "{metrics}");
}

/// Every PolyAI fault, a missing state and a missing workflow: 200 and the
/// voice fallback (to Studio here).
#[tokio::test]
async fn polyai_call_complete_falls_back_on_each_fault() {
    let mut faults = polyai_faults();
    faults.push(Fault::answer(
        "no state",
        ResponseTemplate::new(404),
        "polyai_handoff_state_not_found",
    ));
    faults.push(Fault {
        name: "no workflow",
        response: Some(state_answer()),
        env: vec![("FLEX_WORKFLOW_SID", String::new())],
        code: "flex_workflow_not_configured",
    });
    for fault in faults {
        let polyai = MockServer::start().await;
        if let Some(response) = &fault.response {
            mount_state(&polyai, response.clone()).await;
        }
        let vars = fault.vars(&[("STUDIO_WEBHOOK_URL", STUDIO)]);
        let app = spawn_polyai_app(&polyai, &vars).await;

        let twiml = app
            .voice("/polyai/call-complete", &[("CallSid", CALL_SID)])
            .await;

        assert_eq!(
            twiml,
            format!(
                "{DECL}<Response><Redirect method=\"POST\">{STUDIO}?FlowEvent=return&amp;FlexbridgeError={}</Redirect></Response>",
                fault.code
            ),
            "{}",
            fault.name
        );
        let received = polyai.received_requests().await.unwrap().len();
        assert_eq!(received, fault.requests(), "{}", fault.name);
    }
}

/// Without Studio a failed lookup still reaches Flex, with the error.
#[tokio::test]
async fn polyai_call_complete_falls_back_to_flex_without_the_state() {
    let polyai = MockServer::start().await;
    mount_state(&polyai, ResponseTemplate::new(500)).await;
    let app = spawn_polyai_app(&polyai, &[]).await;

    let twiml = app
        .voice("/polyai/call-complete", &[("CallSid", CALL_SID)])
        .await;

    let task = format!(r#"{{"call_sid":"{CALL_SID}","flexbridge_error":"polyai_refused"}}"#);
    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>{}</Task></Enqueue></Response>",
            xml_text(&task)
        )
    );
}

#[tokio::test]
async fn polyai_call_complete_without_a_call_sid_falls_back_without_calling_polyai() {
    let polyai = MockServer::start().await;
    mount_state(&polyai, state_answer()).await;
    let app = spawn_polyai_app(&polyai, &[("FLEX_WORKFLOW_SID", "")]).await;

    let twiml = app
        .voice("/polyai/call-complete", &[("From", "+14155550100")])
        .await;

    assert_eq!(
        twiml,
        format!("{DECL}<Response><Say>{SORRY}</Say><Hangup/></Response>")
    );
    assert!(polyai.received_requests().await.unwrap().is_empty());
}

/// A call PolyAI has no state for is routine, logged at INFO; PolyAI refusing
/// flexbridge needs an operator, a WARN with the message.
#[tokio::test]
async fn a_missing_handoff_state_is_logged_as_info_and_a_refusal_as_a_warning() {
    let cases = [
        (404, 404, "polyai_handoff_state_not_found", "INFO"),
        (401, 502, "polyai_refused", "WARN"),
    ];
    for (answer, status, code, level) in cases {
        let polyai = MockServer::start().await;
        mount_state(&polyai, ResponseTemplate::new(answer)).await;
        let uri = polyai.uri();
        let logs = crate::process::logs_of_posts(
            &[
                ("POLYAI_API_BASE_URL", uri.as_str()),
                ("POLYAI_API_KEY", API_KEY),
            ],
            &[("CallSid", CALL_SID)],
            &[("/polyai/handoff-state", status)],
        )
        .await;

        let levels: Vec<_> = crate::process::log_events(&logs)
            .filter(|event| event["fields"]["error.code"] == code)
            .map(|event| event["level"].clone())
            .collect();
        assert_eq!(levels, [json!(level)], "{logs}");
    }
}

/// The API key never reaches the logs, even at debug level and on failure.
#[tokio::test]
async fn the_polyai_key_never_reaches_the_logs() {
    let polyai = MockServer::start().await;
    mount_state(&polyai, ResponseTemplate::new(401)).await;
    let uri = polyai.uri();
    let logs = crate::process::logs_of_posts(
        &[
            ("POLYAI_API_BASE_URL", uri.as_str()),
            ("POLYAI_API_KEY", API_KEY),
        ],
        &[("CallSid", CALL_SID)],
        &[
            ("/polyai/call-complete", 200),
            ("/polyai/handoff-state", 502),
        ],
    )
    .await;

    assert!(logs.contains("polyai_refused"), "{logs}");
    assert!(!logs.contains(API_KEY), "{logs}");
}
