//! The README's quick start: `flexbridge --dev` answers every route at once.

use crate::helpers::{assert_handoff_schema, enqueued_attributes};
use crate::metrics::handovers;
use crate::process::start_binary;

#[tokio::test]
async fn dev_mode_serves_the_voice_routes_with_demo_settings() {
    let process = start_binary(&["--dev"], &[]).await;

    let (_, dial) = process
        .post_form("/receive-call", &[("Called", "+18005551234")])
        .await;
    let (_, transfer) = process
        .post_form(
            "/refer-handler",
            &[(
                "ReferTransferTarget",
                "<sip:a@b?X-Watson-Assistant-Session-History-Key=k>",
            )],
        )
        .await;

    assert_eq!(
        dial,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial answerOnBridge=\"true\" referUrl=\"/refer-handler\">\
         <Sip>sip:+18005551234@assistant.example.invalid;secure=true</Sip></Dial></Response>"
    );
    assert_eq!(
        transfer,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Redirect method=\"POST\">\
         https://webhooks.twilio.com/v1/Accounts/AC00000000000000000000000000000000/Flows/FW00000000000000000000000000000000\
         ?FlowEvent=return&amp;SessionHistoryKey=k</Redirect></Response>"
    );
}

/// An empty variable stays unset in `--dev`, so Flex mode can be tried too.
#[tokio::test]
async fn dev_mode_keeps_an_explicitly_empty_variable_unset() {
    let process = start_binary(&["--dev"], &[("STUDIO_WEBHOOK_URL", "")]).await;

    let (_, twiml) = process
        .post_form(
            "/refer-handler",
            &[(
                "ReferTransferTarget",
                "<sip:a@b?X-Watson-Assistant-Session-History-Key=k>",
            )],
        )
        .await;

    assert!(
        twiml.contains("<Enqueue workflowSid=\"WW00000000000000000000000000000000\">"),
        "{twiml}"
    );
}

/// `--dev` never calls Twilio: the answer shows the exact form body instead,
/// with the dedup window on (the default) or off.
#[tokio::test]
async fn dev_mode_dry_runs_the_handover_and_shows_the_exact_request() {
    for env in [&[][..], &[("HANDOVER_DEDUP_SECONDS", "0")][..]] {
        dry_run_shows_the_exact_request(env).await;
    }
}

async fn dry_run_shows_the_exact_request(env: &[(&str, &str)]) {
    let process = start_binary(&["--dev"], env).await;

    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/tools/flex-handover", process.address))
        .header("X-Session-Id", "webhook:conversations__IS0123456789abcdef0123456789abcdef/CH0123456789abcdef0123456789abcdef")
        .header("X-Identity", "whatsapp:+14155550100")
        .json(&serde_json::json!({"summary": "refund"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(answer["status"], "dry_run", "{env:?}");
    assert_eq!(answer["request"]["method"], "POST");
    assert_eq!(
        answer["request"]["url"],
        "https://flex-api.twilio.com/v1/Interactions"
    );
    let channel = r#"{"initiated_by":"customer","properties":{"media_channel_sid":"CH0123456789abcdef0123456789abcdef"},"type":"whatsapp"}"#;
    let routing = r#"{"properties":{"attributes":{"customerAddress":"whatsapp:+14155550100","customerName":"whatsapp:+14155550100","from":"whatsapp:+14155550100","handoff":{"context":{"summary":"refund"},"session_id":"conversations__IS0123456789abcdef0123456789abcdef/CH0123456789abcdef0123456789abcdef","summary":"refund","vendor":"ai_assistant"},"summary":"refund"},"task_channel_unique_name":"chat","workflow_sid":"WW00000000000000000000000000000000","workspace_sid":"WS00000000000000000000000000000000"}}"#;
    assert_eq!(
        answer["request"]["form"],
        serde_json::json!({"Channel": channel, "Routing": routing})
    );
    let expected_body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Channel", channel)
        .append_pair("Routing", routing)
        .finish();
    assert_eq!(answer["request"]["body"], expected_body);
    let metrics = reqwest::get(format!("{}/metrics", process.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Its own process: exactly this one.
    let counted = handovers(&metrics, "twilio_flex", "dry_run");
    assert_eq!(counted, Some(1.0), "{env:?}: {metrics}");
}

/// `--dev` never calls ASAPP or PolyAI: every vendor route answers with demo
/// values (a placeholder stream URL, an AGENT transfer, a demo handoff state).
#[tokio::test]
async fn dev_mode_answers_the_vendor_routes_with_demo_values() {
    let process = start_binary(&["--dev"], &[]).await;
    let client = reqwest::Client::new();
    let call = "CA0123456789abcdef0123456789abcdef";
    let post = |route: &str| {
        client
            .post(format!("{}{route}", process.address))
            .form(&[("CallSid", call)])
            .send()
    };

    let engage = post("/engage").await.unwrap().text().await.unwrap();
    let complete = post("/call-complete").await.unwrap().text().await.unwrap();
    let studio_json = post("/call-complete?format=json")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let connect = post("/polyai/connect").await.unwrap().text().await.unwrap();
    let state = post("/polyai/handoff-state")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let polyai_complete = post("/polyai/call-complete")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let decl = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    assert_eq!(
        engage,
        format!(
            "{decl}<Response><Connect action=\"/call-complete?callSid={call}\">\
             <Stream url=\"wss://genagent.asapp.example.invalid/twilio-media-stream\">\
             <Parameter name=\"asapp_callTransferId\" value=\"{call}\"/>\
             <Parameter name=\"asapp_externalConversationId\" value=\"{call}\"/></Stream></Connect></Response>"
        )
    );
    let transfer = r#"{"callTransferStatus":"COMPLETED","transferType":"AGENT","currentTaskName":"dev_demo","referenceVariables":{"customer_name":"Dev Demo"},"transferVariables":{"reason":"caller asked for an agent"}}"#;
    assert_eq!(studio_json, transfer);
    assert!(
        complete.contains("<Enqueue workflowSid=\"WW00000000000000000000000000000000\"><Task>{&quot;asapp&quot;:{&quot;callTransferStatus&quot;:&quot;COMPLETED&quot;"),
        "{complete}"
    );
    assert_eq!(
        connect,
        format!(
            "{decl}<Response><Connect connectorId=\"dev-demo-connector\" action=\"/polyai/call-complete\"/></Response>"
        )
    );
    assert_eq!(
        state,
        r#"{"dev_demo":true,"reason":"caller asked for an agent","summary":"Wants to change the delivery address of order 1234."}"#
    );
    let attributes = enqueued_attributes(&polyai_complete);
    assert_eq!(attributes["call_sid"], call, "{polyai_complete}");
    assert_eq!(attributes["polyai"]["dev_demo"], true, "{polyai_complete}");
    assert_eq!(assert_handoff_schema(&attributes)["vendor"], "polyai");
}

/// `--dev` serves the ConversationRelay and Dialogflow CX routes with demo
/// settings: a placeholder WebSocket URL and connector name, and the Flex
/// handoff of whatever the callbacks carry.
#[tokio::test]
async fn dev_mode_connects_and_hands_off_the_conversation_relay_and_virtual_agent_routes() {
    let process = start_binary(&["--dev"], &[]).await;
    let client = reqwest::Client::new();
    let call = "CA0123456789abcdef0123456789abcdef";
    let post = |route: &str, params: &[(&str, &str)]| {
        let mut form = vec![("CallSid", call), ("CallStatus", "in-progress")];
        form.extend_from_slice(params);
        let request = client
            .post(format!("{}{route}", process.address))
            .form(&form);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };

    let relay = post("/conversation-relay/connect", &[]).await;
    let relay_done = post(
        "/conversation-relay/complete",
        &[
            ("SessionId", "VX1"),
            ("HandoffData", r#"{"reason":"billing"}"#),
        ],
    )
    .await;
    let agent = post("/virtual-agent/connect", &[]).await;
    let agent_done = post(
        "/virtual-agent/complete",
        &[("VirtualAgentStatus", "live-agent-handoff")],
    )
    .await;

    let decl = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    assert_eq!(
        relay,
        format!(
            "{decl}<Response><Connect action=\"/conversation-relay/complete\">\
             <ConversationRelay url=\"wss://agent.example.invalid/conversation-relay\">\
             <Parameter name=\"call_sid\" value=\"{call}\"/></ConversationRelay></Connect></Response>"
        )
    );
    assert_eq!(
        agent,
        format!(
            "{decl}<Response><Connect action=\"/virtual-agent/complete\">\
             <VirtualAgent connectorName=\"dev-demo-dialogflow-cx\"/></Connect></Response>"
        )
    );
    for (done, vendor) in [
        (&relay_done, "conversation_relay"),
        (&agent_done, "dialogflow_cx"),
    ] {
        assert!(
            done.contains("<Enqueue workflowSid=\"WW00000000000000000000000000000000\">"),
            "{done}"
        );
        let attributes = enqueued_attributes(done);
        assert_eq!(attributes["call_sid"], call);
        assert_eq!(assert_handoff_schema(&attributes)["vendor"], vendor);
    }
}
