//! `/conversation-relay/*` and `/virtual-agent/*` over HTTP: every ending of
//! a session, the handoff schema on every task, TaskRouter's size limit, the
//! handover metrics, and bad input. The exact TwiML of each ending is also
//! checked against twilio-node in `twiml_oracle`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::asapp::{DECL, xml_text};
use crate::helpers::{
    CALL_SID, STUDIO, TestApp, WORKFLOW, assert_handoff_schema, assert_twiml_response,
    enqueued_attributes, spawn_app,
};
use crate::metrics::handovers;

const RELAY_COMPLETE: &str = "/conversation-relay/complete";
const AGENT_COMPLETE: &str = "/virtual-agent/complete";
const SESSION: &str = "VX55555555555555555555555555555555";
const HANGUP: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#;

async fn spawn_flex_app() -> TestApp {
    spawn_app(&[
        ("FLEX_WORKFLOW_SID", WORKFLOW),
        ("CONVERSATION_RELAY_URL", "wss://agent.example.com/relay"),
        ("DIALOGFLOW_CX_CONNECTOR_NAME", "dialogflow-cx-billing"),
    ])
    .await
}

/// The TwiML enqueueing `attributes` into the test workflow.
fn enqueue(attributes: &Value) -> String {
    format!(
        "{DECL}<Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>{}</Task></Enqueue></Response>",
        xml_text(&attributes.to_string())
    )
}

/// One way a session ends, the answer it gets and the outcome counted.
struct Ending {
    name: &'static str,
    path: &'static str,
    params: Vec<(&'static str, &'static str)>,
    /// The `handoff` of the enqueued task, or `None` for `<Hangup/>`.
    handoff: Option<Value>,
    outcome: &'static str,
}

fn endings() -> Vec<Ending> {
    let on_the_line = |extra: &[(&'static str, &'static str)]| {
        let mut params = vec![("CallSid", CALL_SID), ("CallStatus", "in-progress")];
        params.extend_from_slice(extra);
        params
    };
    vec![
        Ending {
            name: "relay: handoff",
            path: RELAY_COMPLETE,
            params: on_the_line(&[
                ("SessionId", SESSION),
                ("SessionStatus", "ended"),
                ("SessionDuration", "42"),
                (
                    "HandoffData",
                    r#"{"reason":"billing","summary":"Wants a refund","account":{"tier":"gold"}}"#,
                ),
            ]),
            handoff: Some(json!({
                "vendor": "conversation_relay", "reason": "billing", "summary": "Wants a refund",
                "session_id": SESSION,
                "context": {"reason": "billing", "summary": "Wants a refund", "account": {"tier": "gold"}},
            })),
            outcome: "handed_over",
        },
        Ending {
            name: "relay: handoff data that is not JSON",
            path: RELAY_COMPLETE,
            params: on_the_line(&[("HandoffData", "agent please")]),
            handoff: Some(json!({"vendor": "conversation_relay", "context": "agent please"})),
            outcome: "handed_over",
        },
        Ending {
            name: "relay: the app failed, the caller still on the line",
            path: RELAY_COMPLETE,
            params: on_the_line(&[
                ("SessionId", SESSION),
                ("SessionStatus", "failed"),
                ("ErrorCode", "64107"),
                ("ErrorMessage", "WebSocket closed"),
            ]),
            handoff: Some(json!({
                "vendor": "conversation_relay", "reason": "ai_session_failed", "session_id": SESSION,
                "context": {"session_status": "failed", "error_code": "64107", "error_message": "WebSocket closed"},
            })),
            outcome: "ai_session_failed",
        },
        Ending {
            name: "relay: ended without a handoff",
            path: RELAY_COMPLETE,
            params: on_the_line(&[("SessionId", SESSION), ("SessionStatus", "completed")]),
            handoff: None,
            outcome: "ended",
        },
        Ending {
            name: "relay: blank parameters count as absent",
            path: RELAY_COMPLETE,
            params: on_the_line(&[
                ("SessionId", SESSION),
                ("SessionStatus", "ended"),
                ("HandoffData", " "),
                ("ErrorCode", " "),
            ]),
            handoff: None,
            outcome: "ended",
        },
        Ending {
            name: "relay: a status flexbridge does not know ends the call (docs/decisions.md)",
            path: RELAY_COMPLETE,
            params: on_the_line(&[
                ("SessionId", SESSION),
                ("SessionStatus", "not-a-known-status"),
            ]),
            handoff: None,
            outcome: "ended",
        },
        Ending {
            name: "relay: the caller hung up",
            path: RELAY_COMPLETE,
            params: vec![
                ("CallSid", CALL_SID),
                ("CallStatus", "completed"),
                ("SessionStatus", "failed"),
                ("HandoffData", r#"{"reason":"x"}"#),
            ],
            handoff: None,
            outcome: "caller_hung_up",
        },
        Ending {
            name: "virtual agent: live-agent handoff",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentProvider", "DialogflowCX"),
                ("VirtualAgentStatus", "live-agent-handoff"),
                (
                    "VirtualAgentProviderData",
                    r#"{"ConversationId":"c-1","EndUserId":"u-1","AgentHandoffParameters":{"reason":"new account","product":"checking"}}"#,
                ),
            ]),
            handoff: Some(json!({
                "vendor": "dialogflow_cx", "reason": "new account", "session_id": "c-1",
                "context": {"reason": "new account", "product": "checking"},
            })),
            outcome: "handed_over",
        },
        Ending {
            name: "virtual agent: live-agent handoff in any case",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentStatus", "Live-Agent-Handoff"),
                (
                    "VirtualAgentProviderData",
                    r#"{"ConversationId":"c-2","AgentHandoffParameters":{"reason":"upgrade"}}"#,
                ),
            ]),
            handoff: Some(json!({
                "vendor": "dialogflow_cx", "reason": "upgrade", "session_id": "c-2",
                "context": {"reason": "upgrade"},
            })),
            outcome: "handed_over",
        },
        Ending {
            name: "virtual agent: a handoff without handoff parameters carries the provider data",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentStatus", "live-agent-handoff"),
                (
                    "VirtualAgentProviderData",
                    r#"{"ConversationId":"c-3","EndUserId":"u-3"}"#,
                ),
            ]),
            handoff: Some(json!({
                "vendor": "dialogflow_cx", "session_id": "c-3",
                "context": {"ConversationId": "c-3", "EndUserId": "u-3"},
            })),
            outcome: "handed_over",
        },
        Ending {
            name: "virtual agent: a handoff whose provider data is not JSON keeps it as text",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentStatus", "live-agent-handoff"),
                ("VirtualAgentProviderData", "wants a person"),
            ]),
            handoff: Some(json!({"vendor": "dialogflow_cx", "context": "wants a person"})),
            outcome: "handed_over",
        },
        Ending {
            name: "virtual agent: a handoff without provider data",
            path: AGENT_COMPLETE,
            params: on_the_line(&[("VirtualAgentStatus", "live-agent-handoff")]),
            handoff: Some(json!({"vendor": "dialogflow_cx", "context": null})),
            outcome: "handed_over",
        },
        Ending {
            name: "virtual agent: failed, the caller still on the line",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentStatus", "failed"),
                ("VirtualAgentErrorCode", "32601"),
                ("VirtualAgentError", "Provider error"),
                ("VirtualAgentProviderError", "Agent not found"),
            ]),
            handoff: Some(json!({
                "vendor": "dialogflow_cx", "reason": "ai_session_failed",
                "context": {"virtual_agent_status": "failed", "error_code": "32601",
                            "error_message": "Provider error", "provider_error": "Agent not found"},
            })),
            outcome: "ai_session_failed",
        },
        Ending {
            name: "virtual agent: paused, which only a Studio flow can resume",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentStatus", "paused"),
                ("VirtualAgentProviderData", r#"{"ConversationId":"c-2"}"#),
            ]),
            handoff: Some(json!({
                "vendor": "dialogflow_cx", "reason": "ai_session_failed", "session_id": "c-2",
                "context": {"virtual_agent_status": "paused", "error_code": null,
                            "error_message": null, "provider_error": null},
            })),
            outcome: "ai_session_failed",
        },
        Ending {
            name: "virtual agent: timed out, or a status Twilio adds later",
            path: AGENT_COMPLETE,
            params: on_the_line(&[("VirtualAgentStatus", "timeout")]),
            handoff: Some(json!({
                "vendor": "dialogflow_cx", "reason": "ai_session_failed",
                "context": {"virtual_agent_status": "timeout", "error_code": null,
                            "error_message": null, "provider_error": null},
            })),
            outcome: "ai_session_failed",
        },
        Ending {
            name: "virtual agent: completed",
            path: AGENT_COMPLETE,
            params: on_the_line(&[("VirtualAgentStatus", "completed")]),
            handoff: None,
            outcome: "ended",
        },
        Ending {
            name: "virtual agent: blank parameters count as absent",
            path: AGENT_COMPLETE,
            params: on_the_line(&[
                ("VirtualAgentStatus", " "),
                ("VirtualAgentErrorCode", " "),
                ("VirtualAgentProviderData", " "),
            ]),
            handoff: None,
            outcome: "ended",
        },
        Ending {
            name: "virtual agent: statuses in any case",
            path: AGENT_COMPLETE,
            params: on_the_line(&[("VirtualAgentStatus", "Completed")]),
            handoff: None,
            outcome: "ended",
        },
        Ending {
            name: "virtual agent: hangup in any case",
            path: AGENT_COMPLETE,
            params: on_the_line(&[("VirtualAgentStatus", "HANGUP")]),
            handoff: None,
            outcome: "caller_hung_up",
        },
        Ending {
            name: "virtual agent: hangup",
            path: AGENT_COMPLETE,
            params: on_the_line(&[("VirtualAgentStatus", "hangup")]),
            handoff: None,
            outcome: "caller_hung_up",
        },
    ]
}

/// Each ending gets its TwiML, every task matches the handoff schema, and
/// each outcome is counted under its vendor.
#[tokio::test]
async fn every_ending_of_a_session_gets_its_answer_and_is_counted() {
    let app = spawn_flex_app().await;

    for ending in endings() {
        let twiml = app.voice(ending.path, &ending.params).await;

        match &ending.handoff {
            Some(handoff) => {
                let attributes = json!({"call_sid": CALL_SID, "handoff": handoff});
                assert_eq!(twiml, enqueue(&attributes), "{}", ending.name);
                assert_handoff_schema(&enqueued_attributes(&twiml));
            }
            None => assert_eq!(twiml, HANGUP, "{}", ending.name),
        }
    }

    // The recorder is process-wide: other tests may have counted too.
    let metrics = app.metrics_text().await;
    let mut counted: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for ending in endings() {
        let vendor = if ending.path == RELAY_COMPLETE {
            "conversation_relay"
        } else {
            "dialogflow_cx"
        };
        *counted.entry((vendor, ending.outcome)).or_default() += 1.0;
    }
    assert_eq!(counted.len(), 8, "four outcomes for each vendor");
    for ((vendor, outcome), count) in counted {
        assert!(
            handovers(&metrics, vendor, outcome).is_some_and(|n| n >= count),
            "{vendor} {outcome} in\n{metrics}"
        );
    }
}

/// Twilio Agent Connect's handoff tool nests the LLM's reason (and any
/// static attributes, a summary among them) under `attributes`: they become
/// the handoff's `reason` and `summary`, the payload its context. The
/// `HandoffData` is the library's own (`tests/fixtures/agent_connect_handoffs.json`).
#[tokio::test]
async fn agent_connect_handoffs_give_the_reason_the_llm_gave() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/agent_connect_handoffs.json"))
            .expect("the fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    let app = spawn_flex_app().await;

    for case in cases {
        let data = case["HandoffData"].as_str().expect("HandoffData");
        let params = [
            ("CallSid", CALL_SID),
            ("CallStatus", "in-progress"),
            ("SessionId", SESSION),
            ("SessionStatus", "ended"),
            ("HandoffData", data),
        ];
        let twiml = app.voice(RELAY_COMPLETE, &params).await;

        let mut handoff = json!({
            "vendor": "conversation_relay", "reason": case["reason"], "session_id": SESSION,
            "context": serde_json::from_str::<Value>(data).expect("HandoffData is JSON"),
        });
        if let Some(summary) = case["tool_attributes"].get("summary") {
            handoff["summary"] = summary.clone();
        }
        let attributes = json!({"call_sid": CALL_SID, "handoff": handoff});
        assert_eq!(twiml, enqueue(&attributes), "{}", case["name"]);
        assert_handoff_schema(&enqueued_attributes(&twiml));
    }
}

/// Without a workflow, a handoff still keeps the caller: the voice fallback.
#[tokio::test]
async fn a_handoff_without_a_workflow_returns_the_caller_to_studio() {
    let app = spawn_app(&[("STUDIO_WEBHOOK_URL", STUDIO)]).await;

    for ending in endings().into_iter().filter(|e| e.handoff.is_some()) {
        let twiml = app.voice(ending.path, &ending.params).await;

        assert_eq!(
            twiml,
            format!(
                "{DECL}<Response><Redirect method=\"POST\">{STUDIO}?FlowEvent=return&amp;FlexbridgeError=flex_workflow_not_configured</Redirect></Response>"
            ),
            "{}",
            ending.name
        );
    }
    let metrics = app.metrics_text().await;
    let counted = handovers(
        &metrics,
        "conversation_relay",
        "flex_workflow_not_configured",
    );
    assert!(counted.is_some_and(|n| n >= 3.0), "{metrics}");
}

/// A handoff near the body limit (60 KB) is cut to TaskRouter's 16 KB, says
/// so, keeps the call and the reason, and the caller is still enqueued.
#[tokio::test]
async fn a_60_kb_handoff_is_trimmed_and_the_caller_still_enqueued() {
    let app = spawn_flex_app().await;
    // Plain words, so the form-encoded body stays under the 64 KiB limit.
    let transcript = "The caller wants a refund for order 42. ".repeat(1_500);
    let relay_data =
        json!({"reason": "billing", "summary": "Wants a refund", "transcript": transcript})
            .to_string();
    let agent_data = json!({
        "ConversationId": "c-1",
        "AgentHandoffParameters": {"reason": "billing", "transcript": transcript},
    })
    .to_string();
    assert!(relay_data.len() > 60_000 && agent_data.len() > 60_000);
    // The data sent, and the context kept: an object loses its largest
    // members, text its end.
    let cases = [
        (
            RELAY_COMPLETE,
            "HandoffData",
            relay_data.as_str(),
            Some(json!({"reason": "billing", "summary": "Wants a refund"})),
        ),
        (
            AGENT_COMPLETE,
            "VirtualAgentProviderData",
            agent_data.as_str(),
            Some(json!({"reason": "billing"})),
        ),
        (RELAY_COMPLETE, "HandoffData", transcript.as_str(), None),
    ];

    for (path, name, data, kept) in cases {
        let twiml = app
            .voice(
                path,
                &[
                    ("CallSid", CALL_SID),
                    ("VirtualAgentStatus", "live-agent-handoff"),
                    (name, data),
                ],
            )
            .await;

        let attributes = enqueued_attributes(&twiml);
        let size = attributes.to_string().len();
        assert!(size <= 16_000, "{path}: {size} bytes");
        let handoff = assert_handoff_schema(&attributes);
        assert_eq!(attributes["call_sid"], CALL_SID, "{path}");
        assert_eq!(handoff["truncated"], true, "{path}");
        assert_eq!(
            handoff["reason"],
            if kept.is_some() {
                json!("billing")
            } else {
                Value::Null
            }
        );
        match kept {
            Some(context) => assert_eq!(handoff["context"], context, "{path}"),
            None => {
                let text = handoff["context"].as_str().expect("text stays text");
                assert!(transcript.starts_with(text), "{path}: the start is kept");
                assert!(
                    size > 15_900,
                    "{path}: cut to {size} bytes, more than needed"
                );
            }
        }
    }
}

/// Whatever arrives, every new route answers 200 and well-formed TwiML, and
/// a complete route still hands the caller on.
#[tokio::test]
async fn any_input_gets_well_formed_twiml() {
    let app = spawn_flex_app().await;
    let huge = "x".repeat(30_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "garbage CallSid",
            b"CallSid=CA..%2F..%3Cx%3E&HandoffData=1&VirtualAgentStatus=failed".to_vec(),
        ),
        (
            "invalid percent-encoding",
            b"%%%&&==&CallSid=%ZZ&HandoffData=%7B%ZZ&VirtualAgentStatus=failed".to_vec(),
        ),
        (
            "invalid UTF-8",
            b"CallSid=%FF%FE&HandoffData=%C3%28%FF&VirtualAgentProviderData=%FF&VirtualAgentStatus=failed"
                .to_vec(),
        ),
        (
            "huge fields",
            format!("CallSid={huge}&HandoffData={huge}").into_bytes(),
        ),
        ("not a form", b"\x00\x01\x02{\"CallSid\":1}".to_vec()),
    ];
    for path in [
        "/conversation-relay/connect",
        RELAY_COMPLETE,
        "/virtual-agent/connect",
        AGENT_COMPLETE,
    ] {
        for (name, body) in &bodies {
            let response = app
                .post_raw(path, "application/x-www-form-urlencoded", body.clone())
                .await;

            let twiml = assert_twiml_response(response).await;
            let hands_on = ["<Connect", "<Enqueue", "<Hangup/>"];
            assert!(
                hands_on.iter().any(|verb| twiml.contains(verb)),
                "{path}, {name}: {twiml}"
            );
            // Data from the agent, or its failure, always reaches a person.
            let sends = |field: &[u8]| body.windows(field.len()).any(|w| w == field);
            let handed_on = match path {
                RELAY_COMPLETE => sends(b"HandoffData="),
                AGENT_COMPLETE => sends(b"VirtualAgentStatus=failed"),
                _ => false,
            };
            if handed_on {
                assert!(twiml.contains("<Enqueue"), "{path}, {name}: {twiml}");
            }
        }
    }
}
