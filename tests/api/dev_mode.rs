//! The README's quick start: `flexbridge --dev` answers every route at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `flexbridge` process, killed on drop.
pub struct Process {
    child: Child,
    pub address: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start the binary with `args` and `env` (nothing inherited) and wait until
/// `/healthz` answers, for at most 10 seconds.
pub async fn start_binary(args: &[&str], env: &[(&str, &str)]) -> Process {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_flexbridge"));
    command
        .args(args)
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let process = Process {
        child: command.spawn().expect("the binary starts"),
        address: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if client
            .get(format!("{}/healthz", process.address))
            .send()
            .await
            .is_ok()
        {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("flexbridge did not answer /healthz within 10 s");
}

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
