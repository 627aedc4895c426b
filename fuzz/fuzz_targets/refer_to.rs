//! `ReferTransferTarget` end to end, without HTTP: parse the Refer-To, read
//! the session history key (header or User-to-User), pick the forwarded
//! `X-` headers, and render the TwiML `/refer-handler` would answer in
//! Studio mode and in Flex mode. Every document must be well-formed XML with
//! a `<Response>` root; the Studio URL must be plain ASCII; the Flex task
//! attributes must be a JSON object.
//!
//! Input: the parameter's value as Twilio would deliver it after form
//! decoding (any bytes; invalid UTF-8 is replaced, as decoding does).

#![no_main]

mod common;

use std::sync::LazyLock;

use common::settings;
use flexbridge::config::Settings;
use flexbridge::domain::{CallSid, ReferTo, user_to_user_data};
use flexbridge::twiml::Verb;
use flexbridge::voice::{self, Handback};
use libfuzzer_sys::fuzz_target;

const STUDIO: &str = "https://webhooks.twilio.com/v1/Accounts/AC11111111111111111111111111111111/Flows/FW22222222222222222222222222222222?existing=1";

static STUDIO_MODE: LazyLock<Settings> = LazyLock::new(|| {
    settings(&[
        ("SIP_URI_HOST", "sip.example.com"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
    ])
});
static FLEX_MODE: LazyLock<Settings> =
    LazyLock::new(|| settings(&[("FLEX_WORKFLOW_SID", "WW33333333333333333333333333333333")]));
static CALL: LazyLock<CallSid> =
    LazyLock::new(|| CallSid::parse("CA44444444444444444444444444444444").expect("a valid SID"));

fuzz_target!(|data: &[u8]| {
    // The User-to-User reader works on bytes: exercise it on raw input too.
    let _ = user_to_user_data(data);

    let text = String::from_utf8_lossy(data);
    let Ok(refer_to) = ReferTo::parse(&text) else {
        // The route answers with the fallback; rendering that is covered below.
        render_and_check(&Handback {
            call_sid: Some(&CALL),
            error: Some("invalid_refer_target"),
            ..Handback::default()
        });
        return;
    };
    assert!(refer_to.headers().iter().all(|h| !h.name.trim().is_empty()));
    let key = refer_to.session_history_key();
    if let Ok(key) = &key {
        assert!(!key.as_bytes().is_empty(), "a key is never empty");
    }
    for header in refer_to.forwarded_headers() {
        assert!(header.name.as_bytes()[..2].eq_ignore_ascii_case(b"x-"));
    }
    render_and_check(&Handback {
        call_sid: Some(&CALL),
        key: key.as_ref().ok(),
        error: key.as_ref().err().map(|e| e.code()),
        refer_to: Some(&refer_to),
    });
});

fn render_and_check(handback: &Handback<'_>) {
    let studio = voice::hand_back(&STUDIO_MODE, handback);
    if let [Verb::Redirect { url }] = studio.verbs() {
        assert!(url.is_ascii(), "the Redirect URL is plain ASCII: {url:?}");
        assert!(url.starts_with(STUDIO), "{url}");
    } else {
        panic!("Studio mode answers one Redirect: {studio:?}");
    }
    check_document(&studio.render(), "Redirect");

    let flex = voice::hand_back(&FLEX_MODE, handback);
    if let [
        Verb::Enqueue {
            task_attributes, ..
        },
    ] = flex.verbs()
    {
        let value: serde_json::Value =
            serde_json::from_str(task_attributes).expect("task attributes are JSON");
        assert!(value.is_object());
    } else {
        panic!("Flex mode answers one Enqueue: {flex:?}");
    }
    check_document(&flex.render(), "Enqueue");
}

fn check_document(twiml: &str, verb: &str) {
    assert!(twiml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?>"#));
    let doc = roxmltree::Document::parse(twiml)
        .unwrap_or_else(|e| panic!("well-formed XML expected ({e}): {twiml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response");
    let first = root.first_element_child().expect("one verb");
    assert_eq!(first.tag_name().name(), verb);
}
