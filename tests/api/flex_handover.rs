//! `/tools/flex-handover` and `/tools/studio-handover` against a local
//! stand-in for Twilio (wiremock): exact outbound requests, upstream faults,
//! dedup, errors and authentication.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{TestApp, assert_handoff_schema, spawn_app_over};
use crate::metrics::handovers;
use crate::process::closed_origin;

pub const AC: &str = "AC0123456789abcdef0123456789abcdef";
pub const SK: &str = "SK0123456789abcdef0123456789abcdef";
pub const API_SECRET: &str = "api-secret-value-7c1d";
pub const WS: &str = "WS0123456789abcdef0123456789abcdef";
pub const WW: &str = "WW0123456789abcdef0123456789abcdef";
pub const IS: &str = "IS0123456789abcdef0123456789abcdef";
pub const CH: &str = "CH0123456789abcdef0123456789abcdef";
pub const CA: &str = "CA0123456789abcdef0123456789abcdef";
pub const FW: &str = "FW0123456789abcdef0123456789abcdef";
pub const KD: &str = "KD0123456789abcdef0123456789abcdef";
pub const TOOL_KEY: &str = "tool-key-9b2e41";

pub fn conversation_session() -> String {
    format!("webhook:conversations__{IS}/{CH}")
}

/// An app whose Twilio, Flex and Conversations origins are `twilio`.
pub async fn spawn_tools_app(twilio: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    let uri = twilio.uri();
    spawn_app_over(&tools_env(&uri), extra).await
}

/// Twilio, Flex and Conversations at `twilio`, with credentials, Flex
/// targets and a tool key: what the handover tools need.
pub fn tools_env(twilio: &str) -> Vec<(&str, &str)> {
    vec![
        ("TWILIO_API_BASE_URL", twilio),
        ("FLEX_API_BASE_URL", twilio),
        ("CONVERSATIONS_API_BASE_URL", twilio),
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_API_KEY", SK),
        ("TWILIO_API_SECRET", API_SECRET),
        ("FLEX_WORKSPACE_SID", WS),
        ("FLEX_WORKFLOW_SID", WW),
        ("STUDIO_FLOW_SID", FW),
        ("TOOL_API_KEY", TOOL_KEY),
        ("UPSTREAM_TIMEOUT_MS", "2000"),
    ]
}

impl TestApp {
    /// POST a tool request with the tool key, session and identity headers.
    pub async fn post_tool(
        &self,
        route: &str,
        session: &str,
        identity: &str,
        input: Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(route))
            .bearer_auth(TOOL_KEY)
            .header("X-Session-Id", session)
            .header("X-Identity", identity)
            .json(&input)
            .send()
            .await
            .expect("request reaches the app")
    }
}

/// Await a response; return its status and JSON body.
/// The plainest handover: a conversation, a phone identity, an empty input.
pub async fn hand_over(app: &TestApp) -> (u16, Value) {
    json_of(app.post_tool(
        "/tools/flex-handover",
        &conversation_session(),
        "phone:+14155550100",
        json!({}),
    ))
    .await
}

/// Answer the first interaction request with `first`, later ones with a new interaction.
async fn mount_first_then_created(twilio: &MockServer, first: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/Interactions"))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(twilio)
        .await;
    mount_interactions(twilio, created(KD)).await;
}

pub async fn json_of(response: impl Future<Output = reqwest::Response>) -> (u16, Value) {
    let response = response.await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn created(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "sid": sid }))
}

async fn mount_interactions(twilio: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/Interactions"))
        .respond_with(response)
        .mount(twilio)
        .await;
}

fn form_of(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn field(request: &Request, name: &str) -> String {
    form_of(request)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} field"))
}

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

/// The interaction request for each channel type, compared as JSON values.
#[tokio::test]
async fn flex_handover_sends_the_exact_interaction_for_each_channel_type() {
    let cases = [
        ("whatsapp:+14155550100", "whatsapp", "whatsapp:+14155550100"),
        ("phone:+14155550100", "sms", "+14155550100"),
        ("user_id:FX0123456789", "web", "FX0123456789"),
        ("email:jane@example.com", "chat", "jane@example.com"),
    ];
    for (identity, channel_type, address) in cases {
        let twilio = MockServer::start().await;
        mount_interactions(&twilio, created(KD)).await;
        let app = spawn_tools_app(&twilio, &[]).await;

        let (status, body) = json_of(app.post_tool(
            "/tools/flex-handover",
            &conversation_session(),
            identity,
            json!({"summary": "Wants a refund", "attempts": 3}),
        ))
        .await;

        assert_eq!(status, 200, "{identity}: {body}");
        assert_eq!(body["status"], "handed_over");
        assert_eq!(body["interaction_sid"], KD);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("member of our team")
        );
        let requests = twilio.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1, "{identity}");
        let request = &requests[0];
        assert_eq!(request.method.as_str(), "POST");
        assert_eq!(request.url.path(), "/v1/Interactions");
        assert_eq!(
            request.headers["authorization"],
            basic(SK, API_SECRET).as_str()
        );
        assert_eq!(
            request.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        let channel: Value = serde_json::from_str(&field(request, "Channel")).unwrap();
        let routing: Value = serde_json::from_str(&field(request, "Routing")).unwrap();
        assert_eq!(
            channel,
            json!({"type": channel_type, "initiated_by": "customer", "properties": {"media_channel_sid": CH}}),
            "{identity}"
        );
        let handoff = json!({
            "vendor": "ai_assistant",
            "summary": "Wants a refund",
            "session_id": format!("conversations__{IS}/{CH}"),
            "context": {"summary": "Wants a refund"},
        });
        assert_eq!(
            routing,
            json!({"properties": {
                "workspace_sid": WS,
                "workflow_sid": WW,
                "task_channel_unique_name": "chat",
                "attributes": {"from": address, "customerName": address, "customerAddress": address, "summary": "Wants a refund", "handoff": handoff},
            }}),
            "{identity}"
        );
        assert_handoff_schema(&routing["properties"]["attributes"]);
    }
}

/// Without an API key the account SID and auth token authenticate.
#[tokio::test]
async fn flex_handover_falls_back_to_account_sid_and_auth_token() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created(KD)).await;
    let app = spawn_tools_app(
        &twilio,
        &[("TWILIO_API_KEY", ""), ("TWILIO_API_SECRET", "")],
    )
    .await;

    let (status, _) = hand_over(&app).await;

    assert_eq!(status, 200);
    let requests = twilio.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers["authorization"],
        basic(AC, crate::helpers::TEST_AUTH_TOKEN).as_str()
    );
}

/// Overrides pick the workspace and workflow, and are not task attributes;
/// tool input cannot replace the routing-relevant `from` / `customerAddress`.
#[tokio::test]
async fn flex_handover_applies_overrides_and_keeps_routing_attributes() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created(KD)).await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let other_ws = "WS11111111111111111111111111111111";
    let other_ww = "WW22222222222222222222222222222222";

    let response = app
        .client
        .post(app.url(&format!("/tools/flex-handover?FlexWorkspaceSid={other_ws}")))
        .bearer_auth(TOOL_KEY)
        .header("X-Session-Id", conversation_session())
        .header("X-Identity", "phone:+14155550100")
        // `FlowSid` is the Studio tool's target: an input both tools share
        // may carry it, and it describes no customer.
        .json(&json!({"FlexWorkflowSid": other_ww, "FlowSid": "FW33333333333333333333333333333333", "from": "spoofed", "customerAddress": "spoofed", "customerName": "Jane"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
    let requests = twilio.received_requests().await.unwrap();
    let routing: Value = serde_json::from_str(&field(&requests[0], "Routing")).unwrap();
    assert_eq!(routing["properties"]["workspace_sid"], other_ws);
    assert_eq!(routing["properties"]["workflow_sid"], other_ww);
    // The tool input is the handoff's context, as sent (but the targets).
    let input = json!({"from": "spoofed", "customerAddress": "spoofed", "customerName": "Jane"});
    assert_eq!(
        routing["properties"]["attributes"],
        json!({"from": "+14155550100", "customerAddress": "+14155550100", "customerName": "Jane",
               "handoff": {"vendor": "ai_assistant", "session_id": format!("conversations__{IS}/{CH}"), "context": input}})
    );
}

/// A voice session updates the live call with TwiML that enqueues it into Flex.
#[tokio::test]
async fn flex_handover_of_a_call_updates_it_with_enqueue_twiml() {
    let twilio = MockServer::start().await;
    let calls_path = format!("/2010-04-01/Accounts/{AC}/Calls/{CA}.json");
    Mock::given(method("POST"))
        .and(path(calls_path.as_str()))
        .respond_with(created(CA))
        .expect(1)
        .mount(&twilio)
        .await;
    let app = spawn_tools_app(&twilio, &[]).await;

    let session = format!("voice:{CA}/UT1");
    let hand_over_call = || {
        json_of(app.post_tool(
            "/tools/flex-handover",
            &session,
            "phone:+14155550100",
            json!({"summary": "Billing <question> & more"}),
        ))
    };
    let (status, body) = hand_over_call().await;
    let (_, repeat) = hand_over_call().await;

    // What the assistant tells the caller, word for word.
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "handed_over", "message": "I'm connecting you to a member of our team now. Please hold.", "call_sid": CA})
    );
    assert_eq!(
        repeat,
        json!({"status": "already_handed_over", "message": "You're already on your way to a member of our team. Please hold.", "call_sid": CA})
    );
    let requests = twilio.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers["authorization"],
        basic(SK, API_SECRET).as_str()
    );
    let twiml = field(&requests[0], "Twiml");
    let doc = roxmltree::Document::parse(&twiml).expect("the Twiml field is well-formed XML");
    let enqueue = doc.root_element().first_element_child().unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "Response");
    assert_eq!(enqueue.tag_name().name(), "Enqueue");
    assert_eq!(enqueue.attribute("workflowSid"), Some(WW));
    let task: Value =
        serde_json::from_str(enqueue.first_element_child().unwrap().text().unwrap()).unwrap();
    assert_eq!(
        task,
        json!({"from": "+14155550100", "customerName": "+14155550100", "customerAddress": "+14155550100", "summary": "Billing <question> & more",
               "handoff": {"vendor": "ai_assistant", "summary": "Billing <question> & more", "session_id": format!("voice:{CA}"),
                           "context": {"summary": "Billing <question> & more"}}})
    );
    assert_handoff_schema(&task);
}

/// Each upstream fault: the answer, and how many times Twilio was asked.
#[tokio::test]
async fn flex_handover_maps_each_upstream_fault() {
    let twilio_error = json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401});
    let cases: Vec<(&str, ResponseTemplate, u16, &str, usize)> = vec![
        (
            "400 with a Twilio error",
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 21211, "message": "Invalid channel", "status": 400})),
            502,
            "twilio_error",
            1,
        ),
        (
            "401",
            ResponseTemplate::new(401).set_body_json(twilio_error.clone()),
            502,
            "twilio_error",
            1,
        ),
        (
            "404",
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 20404, "message": "Not found", "status": 404})),
            502,
            "twilio_error",
            1,
        ),
        (
            "500",
            ResponseTemplate::new(500).set_body_string("oops"),
            502,
            "twilio_error",
            1,
        ),
        (
            "503",
            ResponseTemplate::new(503).set_body_string("unavailable"),
            502,
            "twilio_error",
            1,
        ),
        (
            "200 but not JSON",
            ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
            502,
            "upstream_unavailable",
            1,
        ),
        (
            "429 every time",
            ResponseTemplate::new(429).insert_header("Retry-After", "0"),
            502,
            "twilio_error",
            3,
        ),
        (
            "slower than the deadline",
            created(KD).set_delay(Duration::from_millis(1500)),
            504,
            "upstream_timeout",
            1,
        ),
    ];
    for (name, response, expected_status, expected_code, expected_attempts) in cases {
        let twilio = MockServer::start().await;
        mount_interactions(&twilio, response).await;
        let app = spawn_tools_app(&twilio, &[("UPSTREAM_TIMEOUT_MS", "500")]).await;

        let (status, body) = hand_over(&app).await;

        assert_eq!(status, expected_status, "{name}: {body}");
        assert_eq!(body["status"], "error", "{name}");
        assert_eq!(body["error"], expected_code, "{name}: {body}");
        assert!(!body["message"].as_str().unwrap().is_empty(), "{name}");
        assert_eq!(
            twilio.received_requests().await.unwrap().len(),
            expected_attempts,
            "{name}: upstream attempts"
        );
    }
}

#[tokio::test]
async fn a_twilio_refusal_carries_twilios_code_and_message() {
    let twilio = MockServer::start().await;
    mount_interactions(
        &twilio,
        ResponseTemplate::new(400).set_body_json(json!({"code": 21211, "message": "Invalid 'Channel'", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})),
    )
    .await;
    let app = spawn_tools_app(&twilio, &[]).await;

    let (_, body) = hand_over(&app).await;

    assert_eq!(
        body,
        json!({
            "status": "error",
            "error": "twilio_error",
            "message": "I couldn't hand this conversation to our team: Twilio answered 400 (error 21211: Invalid 'Channel').",
            "twilio": {"status": 400, "code": 21211, "message": "Invalid 'Channel'", "more_info": "https://www.twilio.com/docs/errors/21211"},
        })
    );
}

/// A 429 whose Retry-After outlasts the deadline is reported at once, not
/// retried. The deadline is longer than the one-second wait a value that
/// is not understood gets, so a wait too long to count must not be taken
/// for one.
#[tokio::test]
async fn a_429_asking_for_a_wait_past_the_deadline_is_reported_at_once() {
    for retry_after in [
        "10",
        "99999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let twilio = MockServer::start().await;
        mount_interactions(
            &twilio,
            ResponseTemplate::new(429).insert_header("Retry-After", retry_after),
        )
        .await;
        let app = spawn_tools_app(&twilio, &[("UPSTREAM_TIMEOUT_MS", "3000")]).await;

        let (status, body) = hand_over(&app).await;

        assert_eq!(
            (status, body["error"].clone()),
            (502, json!("twilio_error")),
            "{retry_after}: {body}"
        );
        assert_eq!(
            twilio.received_requests().await.unwrap().len(),
            1,
            "{retry_after}: upstream attempts"
        );
    }
}

/// 429 is retried after its Retry-After, and the retry succeeds. An HTTP
/// date already past means at once: well within a deadline shorter than
/// the one-second wait a value that is not understood gets.
#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_and_then_succeeds() {
    for (retry_after, deadline_ms) in [("0", "2000"), ("Wed, 21 Oct 2015 07:28:00 GMT", "500")] {
        let twilio = MockServer::start().await;
        mount_first_then_created(
            &twilio,
            ResponseTemplate::new(429).insert_header("Retry-After", retry_after),
        )
        .await;
        let app = spawn_tools_app(&twilio, &[("UPSTREAM_TIMEOUT_MS", deadline_ms)]).await;

        let (status, body) = hand_over(&app).await;

        assert_eq!(
            (status, body["interaction_sid"].clone()),
            (200, json!(KD)),
            "{retry_after}: {body}"
        );
        assert_eq!(
            twilio.received_requests().await.unwrap().len(),
            2,
            "{retry_after}"
        );
    }
}

/// A refused connection is retried (it cannot have been applied) at most
/// twice, after 100 ms then 200 ms, and never with a wait that would end past
/// the deadline: with 290 ms, the second wait no longer fits.
#[tokio::test]
async fn a_refused_connection_is_retried_twice_within_the_deadline_then_reported() {
    let origin = closed_origin();
    for (deadline_ms, attempts) in [("8000", 3), ("290", 2)] {
        let twilio = MockServer::start().await;
        let app = spawn_tools_app(
            &twilio,
            &[
                ("FLEX_API_BASE_URL", origin.as_str()),
                ("UPSTREAM_TIMEOUT_MS", deadline_ms),
            ],
        )
        .await;

        let (status, body) = hand_over(&app).await;

        assert_eq!(status, 502, "{deadline_ms}: {body}");
        assert_eq!(body["error"], "upstream_unavailable", "{deadline_ms}");
        let reported = format!("twilio could not be reached ({attempts} attempt(s))");
        assert!(
            body["message"].as_str().unwrap().contains(&reported),
            "{deadline_ms}: {body}"
        );
        // The recorder is process-wide: other tests may have counted too.
        let metrics = app.metrics_text().await;
        let counted = handovers(&metrics, "twilio_flex", "upstream_unavailable");
        assert!(counted.is_some_and(|n| n >= 1.0), "{metrics}");
    }
}

#[tokio::test]
async fn a_repeat_within_the_window_creates_nothing_and_returns_the_first_sid() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created(KD)).await;
    let app = spawn_tools_app(&twilio, &[]).await;

    let (_, first) = hand_over(&app).await;
    let (status, second) = json_of(app.post_tool(
        "/tools/flex-handover",
        &format!("conversations__{IS}/{CH}"),
        "phone:+14155550100",
        json!({}),
    ))
    .await;

    assert_eq!(
        first,
        json!({"status": "handed_over", "message": "Thanks for waiting. I've passed our conversation to a member of our team, who will reply here shortly.", "interaction_sid": KD})
    );
    assert_eq!(status, 200);
    assert_eq!(
        second,
        json!({"status": "already_handed_over", "message": "A member of our team already has this conversation and will reply here shortly.", "interaction_sid": KD})
    );
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
}

/// 20 concurrent requests for one conversation create exactly one interaction.
#[tokio::test]
async fn twenty_concurrent_handovers_of_one_conversation_create_one_interaction() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created(KD).set_delay(Duration::from_millis(200))).await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let session = conversation_session();

    let answers = futures_util::future::join_all((0..20).map(|_| {
        json_of(app.post_tool(
            "/tools/flex-handover",
            &session,
            "phone:+14155550100",
            json!({}),
        ))
    }))
    .await;

    assert_eq!(
        twilio.received_requests().await.unwrap().len(),
        1,
        "exactly one interaction"
    );
    let handed: Vec<_> = answers
        .iter()
        .filter(|(_, b)| b["status"] == "handed_over")
        .collect();
    let already: Vec<_> = answers
        .iter()
        .filter(|(_, b)| b["status"] == "already_handed_over")
        .collect();
    assert_eq!((handed.len(), already.len()), (1, 19), "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 200 && b["interaction_sid"] == KD)
    );
}

#[tokio::test]
async fn different_conversations_are_not_merged() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created(KD)).await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let other = format!("conversations__{IS}/CH99999999999999999999999999999999");

    app.post_tool(
        "/tools/flex-handover",
        &conversation_session(),
        "phone:+14155550100",
        json!({}),
    )
    .await;
    let (_, second) = json_of(app.post_tool(
        "/tools/flex-handover",
        &other,
        "phone:+14155550100",
        json!({}),
    ))
    .await;

    assert_eq!(second["status"], "handed_over");
    assert_eq!(twilio.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn entries_expire_after_the_window() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created(KD)).await;
    let app = spawn_tools_app(&twilio, &[("HANDOVER_DEDUP_SECONDS", "1")]).await;

    app.post_tool(
        "/tools/flex-handover",
        &conversation_session(),
        "phone:+14155550100",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, second) = hand_over(&app).await;

    assert_eq!(second["status"], "handed_over");
    assert_eq!(twilio.received_requests().await.unwrap().len(), 2);
}

/// A failed handover is not remembered: the next attempt tries again.
#[tokio::test]
async fn a_failed_handover_is_not_remembered() {
    let twilio = MockServer::start().await;
    mount_first_then_created(&twilio, ResponseTemplate::new(500)).await;
    let app = spawn_tools_app(&twilio, &[]).await;

    let (first, _) = hand_over(&app).await;
    let (second, body) = hand_over(&app).await;

    assert_eq!((first, second), (502, 200));
    assert_eq!(body["status"], "handed_over");
}

/// A request the tool must refuse with 400, and the code it must give.
struct BadCase<'a> {
    name: &'a str,
    session: Option<&'a str>,
    identity: Option<&'a str>,
    body: &'a str,
    code: &'a str,
    /// What the assistant is told after "I can't hand this conversation over: ".
    reason: &'a str,
}

#[tokio::test]
async fn bad_headers_body_and_overrides_get_400_with_a_readable_message() {
    let twilio = MockServer::start().await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let session = conversation_session();
    let cases = [
        BadCase {
            name: "no session",
            session: None,
            identity: Some("phone:+1415"),
            body: "{}",
            code: "missing_session_id",
            reason: "the X-Session-Id header is missing.",
        },
        BadCase {
            name: "malformed session",
            session: Some("conversations__IS123/CH456"),
            identity: Some("phone:+1415"),
            body: "{}",
            code: "invalid_session_id",
            reason: "X-Session-Id must look like conversations__IS…/CH… (optionally prefixed with webhook:) or voice:CA….",
        },
        BadCase {
            name: "no identity",
            session: Some(&session),
            identity: None,
            body: "{}",
            code: "missing_identity",
            reason: "the X-Identity header is missing.",
        },
        BadCase {
            name: "identity without trait",
            session: Some(&session),
            identity: Some("+14155550100"),
            body: "{}",
            code: "invalid_identity",
            reason: "X-Identity must look like <trait>:<value>, e.g. phone:+14155550100 or whatsapp:+14155550100.",
        },
        BadCase {
            name: "body not an object",
            session: Some(&session),
            identity: Some("phone:+1415"),
            body: "[1,2]",
            code: "invalid_body",
            reason: "the tool input must be a JSON object.",
        },
        BadCase {
            name: "body not JSON",
            session: Some(&session),
            identity: Some("phone:+1415"),
            body: "summary=x",
            code: "invalid_body",
            reason: "the tool input must be a JSON object.",
        },
        BadCase {
            name: "override not a workflow SID",
            session: Some(&session),
            identity: Some("phone:+1415"),
            body: r#"{"FlexWorkflowSid":"WS0123456789abcdef0123456789abcdef"}"#,
            code: "invalid_override",
            reason: r#"FlexWorkflowSid: "WS0123456789abcdef0123456789abcdef" is not a Twilio workflow SID (expected WW followed by 32 hex digits)."#,
        },
        BadCase {
            name: "override garbage",
            session: Some(&session),
            identity: Some("phone:+1415"),
            body: r#"{"FlexWorkspaceSid":"<script>"}"#,
            code: "invalid_override",
            reason: r#"FlexWorkspaceSid: "<script>" is not a Twilio workspace SID (expected WS followed by 32 hex digits)."#,
        },
    ];
    for BadCase {
        name,
        session,
        identity,
        body,
        code,
        reason,
    } in cases
    {
        let mut request = app
            .client
            .post(app.url("/tools/flex-handover"))
            .bearer_auth(TOOL_KEY)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(session) = session {
            request = request.header("X-Session-Id", session);
        }
        if let Some(identity) = identity {
            request = request.header("X-Identity", identity);
        }

        let (status, answer) = json_of(async { request.send().await.unwrap() }).await;

        assert_eq!(status, 400, "{name}: {answer}");
        assert_eq!(answer["error"], code, "{name}");
        let told = format!("I can't hand this conversation over: {reason}");
        assert_eq!(answer["message"], told, "{name}");
    }
    assert!(
        twilio.received_requests().await.unwrap().is_empty(),
        "nothing reaches Twilio"
    );
}

/// Every override given must be a SID, also one the handover would not use
/// (a voice session needs no workspace) or one a valid override shadows
/// (the tool input comes before the query): a mistake is reported, not
/// silently ignored. A blank override counts as absent.
#[tokio::test]
async fn a_malformed_override_is_refused_even_where_it_would_not_be_used() {
    let twilio = MockServer::start().await;
    mount_interactions(&twilio, created("KD0123456789abcdef0123456789abcdef")).await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let valid = r#"{"FlexWorkflowSid":"WW0123456789abcdef0123456789abcdef"}"#;
    let cases = [
        (
            format!("voice:{CA}"),
            "",
            r#"{"FlexWorkspaceSid":"garbage"}"#,
            400,
        ),
        (
            conversation_session(),
            "?FlexWorkflowSid=garbage",
            valid,
            400,
        ),
        (
            conversation_session(),
            "?FlexWorkflowSid=&FlexWorkspaceSid=%20",
            "{}",
            200,
        ),
    ];
    for (session, query, body, expected) in cases {
        let (status, answer) = json_of(async {
            app.client
                .post(app.url(&format!("/tools/flex-handover{query}")))
                .bearer_auth(TOOL_KEY)
                .header("X-Session-Id", &session)
                .header("X-Identity", "phone:+14155550100")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        })
        .await;

        assert_eq!(status, expected, "{session}{query} {body}: {answer}");
        if expected == 400 {
            assert_eq!(answer["error"], "invalid_override", "{answer}");
        }
    }
}

#[tokio::test]
async fn missing_configuration_gets_500_naming_the_variable() {
    let cases = [
        (vec![("FLEX_WORKFLOW_SID", "")], "FLEX_WORKFLOW_SID"),
        (vec![("FLEX_WORKSPACE_SID", "")], "FLEX_WORKSPACE_SID"),
        (
            vec![("TWILIO_API_KEY", ""), ("TWILIO_ACCOUNT_SID", "")],
            "TWILIO_ACCOUNT_SID",
        ),
        (vec![("TWILIO_API_SECRET", "")], "TWILIO_API_SECRET"),
    ];
    for (env, variable) in cases {
        let twilio = MockServer::start().await;
        let app = spawn_tools_app(&twilio, &env).await;

        let (status, body) = json_of(app.post_tool(
            "/tools/flex-handover",
            &conversation_session(),
            "phone:+1415",
            json!({}),
        ))
        .await;

        assert_eq!(status, 500, "{variable}: {body}");
        assert_eq!(body["error"], "not_configured");
        assert_eq!(
            body["message"],
            format!("Handing over to an agent is not set up yet: {variable} is not set.")
        );
    }
}

/// Voice needs the account SID for the Calls URL even with an API key.
#[tokio::test]
async fn voice_handover_without_account_sid_names_it() {
    let twilio = MockServer::start().await;
    let app = spawn_tools_app(&twilio, &[("TWILIO_ACCOUNT_SID", "")]).await;

    let (status, body) = json_of(app.post_tool(
        "/tools/flex-handover",
        &format!("voice:{CA}"),
        "phone:+1415",
        json!({}),
    ))
    .await;

    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (
            500,
            "Handing over to an agent is not set up yet: TWILIO_ACCOUNT_SID is not set."
        )
    );
}

#[tokio::test]
async fn studio_handover_adds_a_conversation_scoped_studio_webhook() {
    let twilio = MockServer::start().await;
    let webhooks = format!("/v1/Services/{IS}/Conversations/{CH}/Webhooks");
    let wh = "WH0123456789abcdef0123456789abcdef";
    Mock::given(method("POST"))
        .and(path(webhooks.as_str()))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": wh, "target": "studio"})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let app = spawn_tools_app(&twilio, &[]).await;
    let other_flow = "FW99999999999999999999999999999999";

    let (status, body) = json_of(app.post_tool(
        "/tools/studio-handover",
        &conversation_session(),
        "phone:+1415",
        json!({"FlowSid": other_flow}),
    ))
    .await;
    let (_, repeat) = json_of(app.post_tool(
        "/tools/studio-handover",
        &conversation_session(),
        "phone:+1415",
        json!({}),
    ))
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "handed_over", "message": "Thanks for waiting. I've passed our conversation on, and you'll hear from us here shortly.", "webhook_sid": wh})
    );
    assert_eq!(
        repeat,
        json!({"status": "already_handed_over", "message": "This conversation has already been passed on; you'll hear from us here shortly.", "webhook_sid": wh})
    );
    let metrics = app.metrics_text().await;
    for outcome in ["handed_over", "already_handed_over"] {
        let counted = handovers(&metrics, "twilio_studio", outcome);
        assert!(counted.is_some(), "{outcome} in\n{metrics}");
    }
    let requests = twilio.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers["authorization"],
        basic(SK, API_SECRET).as_str()
    );
    assert_eq!(
        form_of(&requests[0]),
        vec![
            ("Target".to_owned(), "studio".to_owned()),
            ("Configuration.FlowSid".to_owned(), other_flow.to_owned())
        ]
    );
}

#[tokio::test]
async fn studio_handover_refuses_voice_sessions_and_malformed_flows_and_needs_a_flow() {
    let twilio = MockServer::start().await;
    let app = spawn_tools_app(&twilio, &[("STUDIO_FLOW_SID", "")]).await;

    let (voice, voice_body) = json_of(app.post_tool(
        "/tools/studio-handover",
        &format!("voice:{CA}"),
        "phone:+1415",
        json!({}),
    ))
    .await;
    let (unset, unset_body) = json_of(app.post_tool(
        "/tools/studio-handover",
        &conversation_session(),
        "phone:+1415",
        json!({}),
    ))
    .await;
    let (malformed, malformed_body) = json_of(app.post_tool(
        "/tools/studio-handover",
        &conversation_session(),
        "phone:+1415",
        json!({"FlowSid": "WW0123456789abcdef0123456789abcdef"}),
    ))
    .await;

    assert_eq!(
        voice_body,
        json!({"status": "error", "error": "unsupported_session", "message": "I can't hand this conversation over: a Studio handover needs a conversation; voice sessions use /tools/flex-handover."})
    );
    assert_eq!(voice, 400);
    assert_eq!(
        (malformed, malformed_body),
        (
            400,
            json!({"status": "error", "error": "invalid_override", "message": "I can't hand this conversation over: FlowSid: \"WW0123456789abcdef0123456789abcdef\" is not a Twilio Studio flow SID (expected FW followed by 32 hex digits)."})
        )
    );
    assert_eq!(
        (unset, unset_body["message"].as_str().unwrap()),
        (
            500,
            "Handing over to an agent is not set up yet: STUDIO_FLOW_SID is not set."
        )
    );
}
