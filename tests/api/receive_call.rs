use crate::helpers::{
    CALL_SID, STUDIO, WORKFLOW, assert_twiml_response, redirect_url, spawn_app, spawn_studio_app,
};

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

#[tokio::test]
async fn receive_call_dials_the_assistant_over_secure_sip() {
    let app = spawn_studio_app().await;

    let twiml = app
        .voice(
            "/receive-call",
            &[("CallSid", CALL_SID), ("Called", "+18005551234")],
        )
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Dial answerOnBridge=\"true\" referUrl=\"/refer-handler\">\
             <Sip>sip:+18005551234@sip.example.com;secure=true</Sip></Dial></Response>"
        )
    );
}

#[tokio::test]
async fn receive_call_uses_the_public_base_url_and_honours_sip_secure_false() {
    let app = spawn_app(&[
        (
            "SIP_URI_HOST",
            "public.voip.us-south.assistant.watson.cloud.ibm.com",
        ),
        ("SIP_SECURE", "false"),
        ("PUBLIC_BASE_URL", "https://flexbridge.fly.dev/"),
    ])
    .await;

    let twiml = app
        .voice("/receive-call", &[("Called", "+442071234567")])
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Dial answerOnBridge=\"true\" referUrl=\"https://flexbridge.fly.dev/refer-handler\">\
             <Sip>sip:+442071234567@public.voip.us-south.assistant.watson.cloud.ibm.com</Sip></Dial></Response>"
        )
    );
}

/// Twilio can be configured to use GET; the parameters then come in the query.
#[tokio::test]
async fn receive_call_accepts_get_with_query_parameters() {
    let app = spawn_studio_app().await;

    let response = app.get_signed("/receive-call?Called=%2B18005551234").await;
    let twiml = assert_twiml_response(response).await;

    assert!(
        twiml.contains("<Sip>sip:+18005551234@sip.example.com;secure=true</Sip>"),
        "{twiml}"
    );
}

/// A parameter in both the form and the query is read from the form, where
/// Twilio puts its own.
#[tokio::test]
async fn receive_call_reads_a_parameter_from_the_form_before_the_query() {
    let app = spawn_studio_app().await;

    let twiml = app
        .voice(
            "/receive-call?Called=%2B19995550000",
            &[("Called", "+18005551234")],
        )
        .await;

    assert!(
        twiml.contains("<Sip>sip:+18005551234@sip.example.com;secure=true</Sip>"),
        "{twiml}"
    );
}

/// Nothing but `+` and digits may reach the SIP URI: anything else could
/// send the call to another host or add SIP headers or URI parameters.
#[tokio::test]
async fn receive_call_falls_back_instead_of_dialling_an_injected_uri() {
    let app = spawn_studio_app().await;
    let attempts = [
        "1@evil.com",
        "+18005551234@evil.com",
        "+1800@evil.com;transport=tcp",
        "+18005551234;transport=tcp",
        "+18005551234?X-Evil=1",
        "sip:+18005551234@evil.com",
        "+1800 555 1234",
        "+18005551234\r\nX-Evil: 1",
        "<+18005551234>",
        "+12",
        "+1234567890123456",
        "18005551234",
        "",
        "\"><Dial>+19005550000</Dial>",
        "+１８００５５５１２３４",
    ];
    for called in attempts {
        let twiml = app.voice("/receive-call", &[("Called", called)]).await;

        assert!(
            !twiml.contains("<Dial"),
            "{called:?} must not be dialled: {twiml}"
        );
        assert_eq!(
            redirect_url(&twiml),
            format!("{STUDIO}?FlowEvent=return&FlexbridgeError=invalid_called"),
            "{called:?}"
        );
    }
}

#[tokio::test]
async fn receive_call_without_called_returns_the_caller_to_studio() {
    let app = spawn_studio_app().await;

    let twiml = app.voice("/receive-call", &[("CallSid", CALL_SID)]).await;

    assert_eq!(
        redirect_url(&twiml),
        format!("{STUDIO}?FlowEvent=return&FlexbridgeError=missing_called")
    );
}

/// The task names the call, also when a blank `CallSid` (a Studio variable
/// that came out empty) comes before the `callSid` every route reads next.
#[tokio::test]
async fn receive_call_without_sip_host_enqueues_into_flex_when_studio_is_unset() {
    let app = spawn_app(&[("FLEX_WORKFLOW_SID", WORKFLOW)]).await;
    let requests: [&[(&str, &str)]; 2] = [
        &[("CallSid", CALL_SID), ("Called", "+18005551234")],
        &[
            ("CallSid", " "),
            ("callSid", CALL_SID),
            ("Called", "+18005551234"),
        ],
    ];

    for params in requests {
        let twiml = app.voice("/receive-call", params).await;

        assert_eq!(
            twiml,
            format!(
                "{DECL}<Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>\
                 {{&quot;call_sid&quot;:&quot;{CALL_SID}&quot;,&quot;flexbridge_error&quot;:&quot;sip_host_not_configured&quot;}}\
                 </Task></Enqueue></Response>"
            ),
            "{params:?}"
        );
    }
}

/// The last resort speaks the configured message, escaped, and hangs up.
#[tokio::test]
async fn receive_call_with_nothing_configured_says_the_fallback_message_and_hangs_up() {
    let app = spawn_app(&[("FALLBACK_MESSAGE", "Sorry <we're> closed & \"back\" soon")]).await;

    let twiml = app
        .voice("/receive-call", &[("Called", "+18005551234")])
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Say>Sorry &lt;we&apos;re&gt; closed &amp; &quot;back&quot; soon</Say><Hangup/></Response>"
        )
    );
}

#[tokio::test]
async fn receive_call_with_nothing_configured_uses_the_default_message() {
    let app = spawn_app(&[]).await;

    let twiml = app
        .voice("/receive-call", &[("Called", "+18005551234")])
        .await;

    assert_eq!(
        twiml,
        format!(
            "{DECL}<Response><Say>We&apos;re sorry, we can&apos;t connect your call right now. \
             Please try again later.</Say><Hangup/></Response>"
        )
    );
}

/// A body that is not a form at all still gets TwiML, never an error.
#[tokio::test]
async fn receive_call_answers_twiml_to_a_body_that_is_not_a_form() {
    let app = spawn_studio_app().await;
    for (content_type, body) in [
        ("application/json", &b"{\"Called\": \"+18005551234\"}"[..]),
        (
            "application/x-www-form-urlencoded",
            &b"%%%&&==&Called=%ZZ"[..],
        ),
        ("application/x-www-form-urlencoded", &b"Called=%FF%FE"[..]),
        ("text/plain", &b"\x00\x01\x02"[..]),
    ] {
        let response = app
            .post_raw("/receive-call", content_type, body.to_vec())
            .await;
        let twiml = assert_twiml_response(response).await;
        assert!(twiml.contains("FlexbridgeError="), "{body:?}: {twiml}");
    }
}
