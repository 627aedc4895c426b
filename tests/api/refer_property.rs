//! Property: whatever Twilio passes as `ReferTransferTarget` (up to 4 KiB),
//! `/refer-handler` answers 200 with well-formed TwiML that returns the
//! caller to Studio through a plain-ASCII URL.

use proptest::prelude::*;

use crate::helpers::{STUDIO, TestApp, assert_twiml_response, redirect_url, spawn_studio_app};

/// Refer-To-shaped text built from the pieces that matter to the parser.
fn refer_to_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("\"".to_owned()),
        Just("sip:".to_owned()),
        Just("tel:".to_owned()),
        Just("?".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just(";".to_owned()),
        Just("%".to_owned()),
        Just("User-to-User=".to_owned()),
        Just("X-Watson-Assistant-Session-History-Key=".to_owned()),
        Just("X-".to_owned()),
        Just("%3Bencoding%3Dhex".to_owned()),
        "%[0-9A-Fa-fG-Zg-z]{0,2}",
        "[0-9a-f]{1,8}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn any_target() -> impl Strategy<Value = String> {
    prop_oneof![refer_to_like(), any::<String>()].prop_map(|mut s| {
        // Keep within 4 KiB, cutting on a character boundary.
        while s.len() > 4096 {
            s.pop();
        }
        s
    })
}

async fn check(app: &TestApp, target: &str) {
    let response = app
        .post_form("/refer-handler", &[("ReferTransferTarget", target)])
        .await;
    let twiml = assert_twiml_response(response).await;
    let url = redirect_url(&twiml);
    assert!(
        url.starts_with(&format!("{STUDIO}?FlowEvent=return&")),
        "{target:?} → {url}"
    );
    assert!(url.is_ascii(), "{target:?} → {url}");
}

#[test]
fn refer_handler_answers_well_formed_twiml_for_any_target() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_studio_app());
    let config = ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    };
    proptest!(config, |(target in any_target())| {
        runtime.block_on(check(&app, &target));
    });
}
