//! The README's quick start: `flexbridge --dev` answers every route at once.

use crate::process::start_binary;

#[tokio::test]
async fn dev_mode_serves_the_voice_routes_with_demo_settings() {
    let process = start_binary(&["--dev"], &[]).await;
    let client = reqwest::Client::new();

    let dial = client
        .post(format!("{}/receive-call", process.address))
        .form(&[("Called", "+18005551234")])
        .send()
        .await
        .unwrap();
    let transfer = client
        .post(format!("{}/refer-handler", process.address))
        .form(&[(
            "ReferTransferTarget",
            "<sip:a@b?X-Watson-Assistant-Session-History-Key=k>",
        )])
        .send()
        .await
        .unwrap();

    assert_eq!(
        dial.text().await.unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Dial answerOnBridge=\"true\" referUrl=\"/refer-handler\">\
         <Sip>sip:+18005551234@assistant.example.invalid;secure=true</Sip></Dial></Response>"
    );
    assert_eq!(
        transfer.text().await.unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Redirect method=\"POST\">\
         https://webhooks.twilio.com/v1/Accounts/AC00000000000000000000000000000000/Flows/FW00000000000000000000000000000000\
         ?FlowEvent=return&amp;SessionHistoryKey=k</Redirect></Response>"
    );
}

/// An empty variable stays unset in `--dev`, so Flex mode can be tried too.
#[tokio::test]
async fn dev_mode_keeps_an_explicitly_empty_variable_unset() {
    let process = start_binary(&["--dev"], &[("STUDIO_WEBHOOK_URL", "")]).await;

    let twiml = reqwest::Client::new()
        .post(format!("{}/refer-handler", process.address))
        .form(&[(
            "ReferTransferTarget",
            "<sip:a@b?X-Watson-Assistant-Session-History-Key=k>",
        )])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(
        twiml.contains("<Enqueue workflowSid=\"WW00000000000000000000000000000000\">"),
        "{twiml}"
    );
}
