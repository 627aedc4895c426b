use crate::helpers::{
    CALL_SID, STUDIO, WORKFLOW, assert_handoff_schema, enqueued_attributes, redirect_url,
    spawn_app, spawn_studio_app,
};

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const IBM_KEY: &str = "dev::latest::893499::dff9c274-adc4-4f63-93de-781166760bf8::978f1fd7-4e24-47d8-adb0-24a8a6eff69e::b5ffd6c2-902f-4658-b586-e3fc170a6cf3::7ad616a350cc48078f17e3ee3df551de";
const IBM_KEY_ENCODED: &str = "dev%3A%3Alatest%3A%3A893499%3A%3Adff9c274-adc4-4f63-93de-781166760bf8%3A%3A978f1fd7-4e24-47d8-adb0-24a8a6eff69e%3A%3Ab5ffd6c2-902f-4658-b586-e3fc170a6cf3%3A%3A7ad616a350cc48078f17e3ee3df551de";
const KEY_HEADER: &str = "X-Watson-Assistant-Session-History-Key";

/// One Refer-To case: what Twilio sends as `ReferTransferTarget`, and the
/// query flexbridge must append to the Studio URL after `FlowEvent=return&`.
struct Case {
    name: &'static str,
    refer_to: String,
    query: String,
}

fn case(name: &'static str, refer_to: impl Into<String>, query: impl Into<String>) -> Case {
    Case {
        name,
        refer_to: refer_to.into(),
        query: query.into(),
    }
}

fn cases() -> Vec<Case> {
    let long_key = "k".repeat(1024);
    let long_hex = "6b".repeat(512);
    vec![
        // The four REFER examples of IBM's phone-integration documentation
        // (transfer headers sent as Refer-To URI headers, or not at all).
        case(
            "IBM: custom_header mode leaves the Refer-To bare",
            "sip:user@domain.com",
            "FlexbridgeError=missing_session_history_key",
        ),
        case(
            "IBM: custom_header mode with a custom User-to-User, no key in the Refer-To",
            "sip:user@domain.com",
            "FlexbridgeError=missing_session_history_key",
        ),
        case(
            "IBM: refer_to_header mode, key in hex User-to-User",
            "sip:user@domain.com?User-to-User=637573746f6d2d757365722d746f2d75736572%3Bencoding%3Dhex",
            "SessionHistoryKey=custom-user-to-user",
        ),
        case(
            "IBM: refer_to_header mode, custom User-to-User, key in its own header",
            format!(
                "sip:user@domain.com?User-to-User=637573746f6d2d757365722d746f2d75736572%3Bencoding%3Dhex&{KEY_HEADER}={IBM_KEY}"
            ),
            format!("SessionHistoryKey={IBM_KEY_ENCODED}"),
        ),
        case(
            "Twilio Flex default: ascii User-to-User and the key header",
            format!(
                "<sip:+18005551234@twilio.com?User-to-User=dev%3A%3Alatest%3A%3A893499%3A%3Aabc%3Bencoding%3Dascii&{KEY_HEADER}=dev%3A%3Alatest%3A%3A893499%3A%3Aabc>"
            ),
            "SessionHistoryKey=dev%3A%3Alatest%3A%3A893499%3A%3Aabc",
        ),
        case(
            "ascii User-to-User only",
            "<sip:+18005551234@twilio.com?User-to-User=dev%3A%3Alatest%3A%3A1%3A%3Aabc%3Bencoding%3Dascii>",
            "SessionHistoryKey=dev%3A%3Alatest%3A%3A1%3A%3Aabc",
        ),
        case(
            "User-to-User without parameters",
            "<sip:a@b?User-to-User=plainkey>",
            "SessionHistoryKey=plainkey",
        ),
        case(
            "hex in upper case",
            "<sip:a@b?User-to-User=4B4559%3Bencoding%3Dhex>",
            "SessionHistoryKey=KEY",
        ),
        case(
            "encoding parameter in upper case",
            "<sip:a@b?User-to-User=6b6579%3BENCODING%3DHEX>",
            "SessionHistoryKey=key",
        ),
        case(
            "hex User-to-User with purpose and content parameters",
            "<sip:a@b?User-to-User=6b6579%3Bpurpose%3Dfoo%3Bencoding%3Dhex%3Bcontent%3Dbar>",
            "SessionHistoryKey=key",
        ),
        case(
            "binary hex User-to-User is passed on byte for byte",
            "<sip:a@b?User-to-User=12a345b6c7d8901234e5%3Bencoding%3Dhex%3Bpurpose%3Dfoo%3Bcontent%3Dbar>",
            "SessionHistoryKey=%12%A3E%B6%C7%D8%90%124%E5",
        ),
        case(
            "odd-length hex is reported",
            "<sip:a@b?User-to-User=6b657%3Bencoding%3Dhex>",
            "FlexbridgeError=invalid_user_to_user",
        ),
        case(
            "non-hex digits are reported",
            "<sip:a@b?User-to-User=zz%3Bencoding%3Dhex&X-A=1>",
            "FlexbridgeError=invalid_user_to_user&X-A=1",
        ),
        case(
            "quoted User-to-User data",
            "<sip:a@b?User-to-User=%22abc%22%3Bencoding%3Dascii>",
            "SessionHistoryKey=abc",
        ),
        case(
            "empty User-to-User data",
            "<sip:a@b?User-to-User=%3Bencoding%3Dascii>",
            "FlexbridgeError=missing_session_history_key",
        ),
        case(
            "the key header wins over User-to-User",
            format!("<sip:a@b?User-to-User=uui&{KEY_HEADER}=fromheader>"),
            "SessionHistoryKey=fromheader",
        ),
        case(
            "the key header wins even when it comes first",
            format!("<sip:a@b?{KEY_HEADER}=fromheader&User-to-User=uui>"),
            "SessionHistoryKey=fromheader",
        ),
        case(
            "lower-case key header",
            "<sip:a@b?user-to-user=uui&x-watson-assistant-session-history-key=lower>",
            "SessionHistoryKey=lower",
        ),
        case(
            "upper-case User-to-User name",
            "<sip:a@b?USER-TO-USER=upper>",
            "SessionHistoryKey=upper",
        ),
        case(
            "an empty key header falls back to User-to-User",
            format!("<sip:a@b?{KEY_HEADER}=&User-to-User=uui>"),
            "SessionHistoryKey=uui",
        ),
        case(
            "the first of two key headers wins",
            format!("<sip:a@b?{KEY_HEADER}=one&{KEY_HEADER}=two>"),
            "SessionHistoryKey=one",
        ),
        case(
            "custom X- header is forwarded",
            format!("<sip:a@b?{KEY_HEADER}=k&X-Customer-Id=12345>"),
            "SessionHistoryKey=k&X-Customer-Id=12345",
        ),
        case(
            "X- headers keep their order and spelling",
            format!("<sip:a@b?X-Zeta=1&{KEY_HEADER}=k&x-alpha=2&X-Mid=3>"),
            "SessionHistoryKey=k&X-Zeta=1&x-alpha=2&X-Mid=3",
        ),
        case(
            "non-X headers are not forwarded",
            format!("<sip:a@b?{KEY_HEADER}=k&Subject=hi&Priority=urgent>"),
            "SessionHistoryKey=k",
        ),
        case(
            "encoded = inside a value",
            format!("<sip:a@b?{KEY_HEADER}=k&X-Q=a%3Db>"),
            "SessionHistoryKey=k&X-Q=a%3Db",
        ),
        case(
            "raw = inside a value splits only at the first",
            format!("<sip:a@b?{KEY_HEADER}=k=v&X-Q=a=b=c>"),
            "SessionHistoryKey=k%3Dv&X-Q=a%3Db%3Dc",
        ),
        case(
            "encoded & inside a value",
            format!("<sip:a@b?{KEY_HEADER}=k&X-Q=a%26b>"),
            "SessionHistoryKey=k&X-Q=a%26b",
        ),
        case(
            "raw > inside a value",
            format!("<sip:a@b?{KEY_HEADER}=k&X-Q=1>2>"),
            "SessionHistoryKey=k&X-Q=1%3E2",
        ),
        case(
            "encoded > inside a value",
            format!("<sip:a@b?{KEY_HEADER}=k&X-Q=1%3E2>"),
            "SessionHistoryKey=k&X-Q=1%3E2",
        ),
        case(
            "quoted display name",
            format!("\"Support, \\\"Tier 1\\\"\" <sip:a@b?{KEY_HEADER}=k>"),
            "SessionHistoryKey=k",
        ),
        case(
            "token display name",
            format!("Support Desk <sip:a@b?{KEY_HEADER}=k>"),
            "SessionHistoryKey=k",
        ),
        case(
            "brackets without a header part",
            "<sip:+18005551234@twilio.com>",
            "FlexbridgeError=missing_session_history_key",
        ),
        case(
            "empty header part",
            "<sip:a@b?>",
            "FlexbridgeError=missing_session_history_key",
        ),
        case(
            "empty header segments are skipped",
            format!("<sip:a@b?&&{KEY_HEADER}=k&&X-A=1&>"),
            "SessionHistoryKey=k&X-A=1",
        ),
        case(
            "a header without a value",
            format!("<sip:a@b?X-Flag&{KEY_HEADER}=k>"),
            "SessionHistoryKey=k&X-Flag=",
        ),
        case(
            "1024-byte key header",
            format!("<sip:a@b?{KEY_HEADER}={long_key}>"),
            format!("SessionHistoryKey={long_key}"),
        ),
        case(
            "1024-byte hex User-to-User",
            format!("<sip:a@b?User-to-User={long_hex}%3Bencoding%3Dhex>"),
            format!("SessionHistoryKey={}", "k".repeat(512)),
        ),
        case(
            "invalid percent escapes stay literal",
            format!("<sip:a@b?{KEY_HEADER}=k%ZZ%4&X-Q=100%>"),
            "SessionHistoryKey=k%25ZZ%254&X-Q=100%25",
        ),
        case(
            "bytes that are not UTF-8 after decoding",
            format!("<sip:a@b?{KEY_HEADER}=%FF%FEk>"),
            "SessionHistoryKey=%FF%FEk",
        ),
        case(
            "decoded exactly once",
            format!("<sip:a@b?{KEY_HEADER}=%2541>"),
            "SessionHistoryKey=%2541",
        ),
        case(
            "+ is not a space in SIP",
            format!("<sip:a@b?{KEY_HEADER}=a+b&X-Q=c%20d>"),
            "SessionHistoryKey=a%2Bb&X-Q=c%20d",
        ),
        case(
            "non-ASCII text",
            format!("<sip:a@b?{KEY_HEADER}=k&X-Name=Jos%C3%A9>"),
            "SessionHistoryKey=k&X-Name=Jos%C3%A9",
        ),
        case(
            "XML metacharacters in values",
            format!("<sip:a@b?{KEY_HEADER}=%3Ck%3E&X-Q=%22%27%26%3C>"),
            "SessionHistoryKey=%3Ck%3E&X-Q=%22%27%26%3C",
        ),
        case(
            "encoded header name",
            format!("<sip:a@b?{KEY_HEADER}=k&X-A%20B=1>"),
            "SessionHistoryKey=k&X-A%20B=1",
        ),
        case(
            "tel: target without headers",
            "<tel:+18005551234>",
            "FlexbridgeError=missing_session_history_key",
        ),
        case(
            "tel: target with a header part",
            format!("tel:+18005551234?{KEY_HEADER}=k"),
            "SessionHistoryKey=k",
        ),
        case(
            "sips: target",
            format!("<sips:+18005551234@twilio.com?{KEY_HEADER}=k>"),
            "SessionHistoryKey=k",
        ),
        case(
            "URI parameters before the headers",
            format!("<sip:+1800@h;transport=tls;user=phone?{KEY_HEADER}=k>"),
            "SessionHistoryKey=k",
        ),
        case(
            "header parameters after the brackets",
            format!("<sip:a@b?{KEY_HEADER}=k>;method=INVITE"),
            "SessionHistoryKey=k",
        ),
        case(
            "surrounding white space",
            format!("  <sip:a@b?{KEY_HEADER}=k>\t"),
            "SessionHistoryKey=k",
        ),
        case(
            "unbalanced angle bracket",
            format!("<sip:a@b?{KEY_HEADER}=k"),
            "FlexbridgeError=invalid_refer_target",
        ),
        case(
            "no URI scheme",
            "<+18005551234@twilio.com>",
            "FlexbridgeError=invalid_refer_target",
        ),
        case(
            "unterminated display name",
            "\"Support <sip:a@b>",
            "FlexbridgeError=invalid_refer_target",
        ),
        case(
            "not a URI at all",
            "transfer me please",
            "FlexbridgeError=invalid_refer_target",
        ),
        case(
            "white space only",
            "   ",
            "FlexbridgeError=missing_refer_target",
        ),
    ]
}

/// Every Refer-To case ends in a Redirect to Studio with exactly the expected query.
#[tokio::test]
async fn refer_handler_returns_each_transfer_to_studio_with_the_right_query() {
    let app = spawn_studio_app().await;
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "at least 40 Refer-To cases, have {}",
        cases.len()
    );

    for case in cases {
        let twiml = app
            .voice(
                "/refer-handler",
                &[
                    ("CallSid", CALL_SID),
                    ("ReferTransferTarget", &case.refer_to),
                ],
            )
            .await;

        let url = redirect_url(&twiml);
        assert_eq!(
            url,
            format!("{STUDIO}?FlowEvent=return&{}", case.query),
            "case: {}",
            case.name
        );
        assert!(
            url.is_ascii(),
            "case {}: the Redirect URL is plain ASCII",
            case.name
        );
    }
}

#[tokio::test]
async fn refer_handler_renders_the_exact_redirect_twiml() {
    let app = spawn_studio_app().await;
    let refer_to = format!("<sip:+18005551234@twilio.com?{KEY_HEADER}=a%26b&X-Note=x%3Cy>");

    let twiml = app
        .voice(
            "/refer-handler",
            &[("CallSid", CALL_SID), ("ReferTransferTarget", &refer_to)],
        )
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Redirect method=\"POST\">{STUDIO}?FlowEvent=return&amp;SessionHistoryKey=a%26b&amp;X-Note=x%3Cy</Redirect></Response>"
        )
    );
}

#[tokio::test]
async fn refer_handler_without_refer_target_still_returns_the_caller_to_studio() {
    let app = spawn_studio_app().await;

    let twiml = app.voice("/refer-handler", &[("CallSid", CALL_SID)]).await;

    assert_eq!(
        redirect_url(&twiml),
        format!("{STUDIO}?FlowEvent=return&FlexbridgeError=missing_refer_target")
    );
}

/// A Studio URL that already has a query keeps it; ours is appended.
#[tokio::test]
async fn refer_handler_keeps_the_studio_urls_own_query() {
    let studio = format!("{STUDIO}?Source=ivr&Lang=en%20US");
    let app = spawn_app(&[("STUDIO_WEBHOOK_URL", &studio)]).await;

    let twiml = app
        .voice(
            "/refer-handler",
            &[("ReferTransferTarget", &format!("<sip:a@b?{KEY_HEADER}=k>"))],
        )
        .await;

    assert_eq!(
        redirect_url(&twiml),
        format!("{studio}&FlowEvent=return&SessionHistoryKey=k")
    );
    assert!(
        twiml.contains("Source=ivr&amp;Lang=en%20US&amp;FlowEvent=return"),
        "{twiml}"
    );
}

/// Without Studio, the call goes straight into Flex with the key, the SIP
/// headers (repeated names joined) and the call SID as task attributes.
#[tokio::test]
async fn refer_handler_enqueues_into_flex_when_studio_is_not_configured() {
    let app = spawn_app(&[("FLEX_WORKFLOW_SID", WORKFLOW)]).await;
    let refer_to = format!(
        "<sip:+18005551234@twilio.com?User-to-User=uui%3Bencoding%3Dascii&{KEY_HEADER}=k%22ey&X-Tier=gold&x-tier=vip&X-Bin=%FF>"
    );

    let twiml = app
        .voice(
            "/refer-handler",
            &[("CallSid", CALL_SID), ("ReferTransferTarget", &refer_to)],
        )
        .await;

    let doc = roxmltree::Document::parse(&twiml).unwrap();
    let enqueue = doc.root_element().first_element_child().unwrap();
    assert_eq!(enqueue.tag_name().name(), "Enqueue");
    assert_eq!(enqueue.attribute("workflowSid"), Some(WORKFLOW));
    let task = enqueue.first_element_child().unwrap();
    assert_eq!(task.tag_name().name(), "Task");
    let attributes: serde_json::Value = serde_json::from_str(task.text().unwrap()).unwrap();
    let sip_headers = serde_json::json!({
        "User-to-User": "uui;encoding=ascii",
        KEY_HEADER: "k\"ey",
        "X-Tier": "gold, vip",
        "X-Bin": "\u{FFFD}",
    });
    assert_eq!(
        attributes,
        serde_json::json!({
            "call_sid": CALL_SID,
            "session_history_key": "k\"ey",
            "sip_headers": sip_headers,
            "handoff": {"vendor": "watsonx", "session_id": "k\"ey", "context": sip_headers},
        })
    );
    assert_handoff_schema(&attributes);
}

/// A key too long for a Flex task (TaskRouter caps its attributes) is cut
/// wherever it is repeated, the handoff's copies first, so the call is still
/// enqueued, with its SID.
#[tokio::test]
async fn refer_handler_cuts_a_key_too_long_for_a_task_and_still_enqueues() {
    let app = spawn_app(&[("FLEX_WORKFLOW_SID", WORKFLOW)]).await;
    let key = "k".repeat(20_000);
    let refer_to = format!("<sip:+18005551234@twilio.com?{KEY_HEADER}={key}>");

    let twiml = app
        .voice(
            "/refer-handler",
            &[("CallSid", CALL_SID), ("ReferTransferTarget", &refer_to)],
        )
        .await;

    let attributes = enqueued_attributes(&twiml);
    let size = attributes.to_string().len();
    assert!(size <= 16_000, "{size} bytes");
    assert_eq!(
        attributes,
        serde_json::json!({
            "call_sid": CALL_SID,
            "handoff": {"vendor": "watsonx", "session_id": "", "context": {}, "truncated": true},
        })
    );
    assert_handoff_schema(&attributes);
}

#[tokio::test]
async fn refer_handler_enqueues_with_the_error_code_when_the_key_is_missing() {
    let app = spawn_app(&[("FLEX_WORKFLOW_SID", WORKFLOW)]).await;

    let twiml = app
        .voice(
            "/refer-handler",
            &[("ReferTransferTarget", "<sip:a@b?X-A=1>")],
        )
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>\
             {{&quot;flexbridge_error&quot;:&quot;missing_session_history_key&quot;,\
             &quot;handoff&quot;:{{&quot;context&quot;:{{&quot;X-A&quot;:&quot;1&quot;}},&quot;vendor&quot;:&quot;watsonx&quot;}},\
             &quot;sip_headers&quot;:{{&quot;X-A&quot;:&quot;1&quot;}}}}\
             </Task></Enqueue></Response>"
        )
    );
}

#[tokio::test]
async fn refer_handler_with_neither_studio_nor_flex_says_goodbye() {
    let app = spawn_app(&[("FALLBACK_MESSAGE", "Goodbye & thanks")]).await;

    let twiml = app
        .voice(
            "/refer-handler",
            &[("ReferTransferTarget", &format!("<sip:a@b?{KEY_HEADER}=k>"))],
        )
        .await;

    assert_eq!(
        twiml,
        format!("{DECL}<Response><Say>Goodbye &amp; thanks</Say><Hangup/></Response>")
    );
}

/// A malformed CallSid is left out of the task rather than echoed.
#[tokio::test]
async fn refer_handler_leaves_out_a_malformed_call_sid() {
    let app = spawn_app(&[("FLEX_WORKFLOW_SID", WORKFLOW)]).await;

    let twiml = app
        .voice(
            "/refer-handler",
            &[
                ("CallSid", "CA<script>"),
                ("ReferTransferTarget", "<sip:a@b?X-A=1>"),
            ],
        )
        .await;

    assert!(!twiml.contains("call_sid"), "{twiml}");
    assert!(!twiml.contains("script"), "{twiml}");
}
