//! The end of an AI agent's session, without HTTP: a `<Connect action>`
//! request body as Twilio sends it (form-encoded, any bytes), answered by
//! `/conversation-relay/complete` and `/virtual-agent/complete`. That reads
//! `HandoffData` and `VirtualAgentProviderData` (JSON, or text that is not),
//! builds the `handoff` attribute and trims the task attributes to
//! TaskRouter's limit.
//!
//! With a Flex workflow, every answer is `<Hangup/>` or one `<Enqueue>` whose
//! attributes are a JSON object within the limit, with the route's vendor;
//! text the agent sent is kept as text; every document is well-formed. A
//! handoff without a workflow is the `flex_workflow_not_configured` error
//! (the fallback), never a panic.

#![no_main]

mod common;

use std::sync::LazyLock;

use common::settings;
use flexbridge::config::Settings;
use flexbridge::handoff::MAX_ATTRIBUTES_BYTES;
use flexbridge::routes::{conversation_relay, virtual_agent};
use flexbridge::twilio::{FormParams, TwilioRequest};
use flexbridge::twiml::{Verb, VoiceResponse};
use flexbridge::voice::VoiceError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static FLEX: LazyLock<Settings> =
    LazyLock::new(|| settings(&[("FLEX_WORKFLOW_SID", "WW33333333333333333333333333333333")]));
static NO_WORKFLOW: LazyLock<Settings> = LazyLock::new(|| settings(&[]));

type Route = fn(&Settings, &TwilioRequest) -> Result<(VoiceResponse, &'static str), VoiceError>;

fuzz_target!(|data: &[u8]| {
    let request = TwilioRequest::from_form(FormParams::decode(data));
    let routes: [(Route, &str, &str); 2] = [
        (
            conversation_relay::act_on_session,
            "conversation_relay",
            "HandoffData",
        ),
        (
            virtual_agent::act_on_session,
            "dialogflow_cx",
            "VirtualAgentProviderData",
        ),
    ];
    for (route, vendor, field) in routes {
        let (twiml, _) = route(&FLEX, &request).expect("with a workflow every ending is answered");
        check(&twiml, vendor, request.get(field));

        match route(&NO_WORKFLOW, &request) {
            Ok((twiml, _)) => assert!(matches!(twiml.verbs(), [Verb::Hangup]), "{twiml:?}"),
            Err(error) => assert_eq!(error.code(), "flex_workflow_not_configured"),
        }
    }
});

fn check(twiml: &VoiceResponse, vendor: &str, sent: Option<&str>) {
    let document = twiml.render();
    let doc = roxmltree::Document::parse(&document)
        .unwrap_or_else(|e| panic!("well-formed XML expected ({e}): {document}"));
    assert_eq!(doc.root_element().tag_name().name(), "Response");
    let attributes = match twiml.verbs() {
        [Verb::Hangup] => return,
        [
            Verb::Enqueue {
                task_attributes, ..
            },
        ] => task_attributes,
        other => panic!("one Hangup or one Enqueue: {other:?}"),
    };
    assert!(
        attributes.len() <= MAX_ATTRIBUTES_BYTES,
        "{} bytes",
        attributes.len()
    );
    let attributes: Value = serde_json::from_str(attributes).expect("task attributes are JSON");
    let handoff = &attributes["handoff"];
    assert_eq!(handoff["vendor"], vendor);
    if let Some(reason) = handoff.get("reason") {
        assert!(reason.is_string(), "{reason}");
    }
    // ConversationRelay keeps text that is not a JSON object as text.
    let kept_whole = handoff.get("truncated").is_none() && vendor == "conversation_relay";
    if let (true, Some(sent), Some(Value::String(text))) =
        (kept_whole, sent, handoff.get("context"))
        && !sent.trim().is_empty()
    {
        assert_eq!(text, sent);
    }
}
