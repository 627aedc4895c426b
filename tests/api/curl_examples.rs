//! The scripts of `examples/curl/`, run as the README says: unsigned against
//! a `--dev` instance, and signed (`TWILIO_AUTH_TOKEN` set) against one that
//! checks signatures. The scripts exit 0 whatever the status, so each test
//! reads what they print.

use std::path::Path;
use std::process::Command;

use flexbridge::config::DEV_DEFAULTS;
use serde_json::Value;

use crate::process::start_binary;

const TOKEN: &str = "curl-examples-token-7d2a91";
const CALL: &str = "CA0123456789abcdef0123456789abcdef";
const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// What each voice script prints, with the `--dev` demo settings.
fn voice_answers() -> [(&'static str, String); 4] {
    let studio = "https://webhooks.twilio.com/v1/Accounts/AC00000000000000000000000000000000/Flows/FW00000000000000000000000000000000";
    let enqueue = |task: &str| {
        format!(
            "{XML}<Response><Enqueue workflowSid=\"WW00000000000000000000000000000000\"><Task>{}</Task></Enqueue></Response>",
            task.replace('"', "&quot;")
        )
    };
    [
        (
            "receive-call",
            format!(
                "{XML}<Response><Dial answerOnBridge=\"true\" referUrl=\"/refer-handler\"><Sip>sip:+18005551234@assistant.example.invalid;secure=true</Sip></Dial></Response>\n"
            ),
        ),
        (
            "refer-handler",
            format!(
                "{XML}<Response><Redirect method=\"POST\">{studio}?FlowEvent=return&amp;SessionHistoryKey=dev%3A%3Alatest%3A%3A893499%3A%3Aabc&amp;X-Customer-Tier=gold</Redirect></Response>\n"
            ),
        ),
        (
            "conversation-relay",
            format!(
                "{XML}<Response><Connect action=\"/conversation-relay/complete\"><ConversationRelay url=\"wss://agent.example.invalid/conversation-relay\"><Parameter name=\"call_sid\" value=\"{CALL}\"/><Parameter name=\"customerId\" value=\"c-42\"/></ConversationRelay></Connect></Response>\n{}\n",
                enqueue(&format!(
                    r#"{{"call_sid":"{CALL}","handoff":{{"context":{{"reason":"billing","summary":"Disputes a charge"}},"reason":"billing","session_id":"VX0123456789abcdef0123456789abcdef","summary":"Disputes a charge","vendor":"conversation_relay"}}}}"#
                ))
            ),
        ),
        (
            "virtual-agent",
            format!(
                "{XML}<Response><Connect action=\"/virtual-agent/complete\"><VirtualAgent connectorName=\"dev-demo-dialogflow-cx\"/></Connect></Response>\n{}\n",
                enqueue(&format!(
                    r#"{{"call_sid":"{CALL}","handoff":{{"context":{{"reason":"billing"}},"reason":"billing","session_id":"projects/p/locations/global/agents/a/sessions/s-1","vendor":"dialogflow_cx"}}}}"#
                ))
            ),
        ),
    ]
}

/// Run `examples/curl/{script}.sh` against `base` with only `env` (and
/// `PATH`) set; return its exit code and what it printed.
fn run(script: &str, base: &str, env: &[(&str, &str)]) -> (i32, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/curl")
        .join(format!("{script}.sh"));
    let mut command = Command::new("bash");
    command
        .arg(path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BASE", base)
        .envs(env.iter().copied());
    let out = command.output().expect("bash and curl run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn every_script_gets_its_answer_from_a_dev_instance() {
    let process = start_binary(&["--dev"], &[]).await;
    let base = process.address.clone();

    for (script, expected) in voice_answers() {
        assert_eq!(run(script, &base, &[]), (0, expected), "{script}.sh");
    }
    for (script, url) in [
        ("flex-handover", "https://flex-api.twilio.com/v1/Interactions".to_owned()),
        (
            "studio-handover",
            "https://conversations.twilio.com/v1/Services/IS0123456789abcdef0123456789abcdef/Conversations/CH0123456789abcdef0123456789abcdef/Webhooks".to_owned(),
        ),
    ] {
        let (code, out) = run(script, &base, &[]);
        let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(code, 0, "{script}.sh");
        assert_eq!(answer["status"], "dry_run", "{script}.sh: {out}");
        assert_eq!(answer["request"]["url"], url.as_str(), "{script}.sh: {out}");
    }
    assert_eq!(run("healthz", &base, &[]), (0, "ok\n".to_owned()));
    let (code, metrics) = run("metrics", &base, &[]);
    let logs = process.stop_and_read_logs();

    assert_eq!(code, 0);
    assert!(
        metrics.contains(
            "flexbridge_http_requests_total{route=\"/receive-call\",method=\"POST\",status=\"200\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.lines().all(|line| line.starts_with("flexbridge_")),
        "{metrics}"
    );
    assert!(!logs.contains("\"level\":\"ERROR\""), "{logs}");
}

/// With `TWILIO_AUTH_TOKEN` set the scripts sign through `flexbridge sign`,
/// and an instance checking signatures answers as `--dev` does; signed
/// with another token, every request is refused.
#[tokio::test]
async fn the_voice_scripts_sign_their_requests_when_a_token_is_set() {
    let mut env: Vec<(&str, &str)> = DEV_DEFAULTS.to_vec();
    env.push(("TWILIO_AUTH_TOKEN", TOKEN));
    let process = start_binary(&["serve"], &env).await;
    let base = process.address.clone();
    let signed = |token| {
        [
            ("TWILIO_AUTH_TOKEN", token),
            ("FLEXBRIDGE", env!("CARGO_BIN_EXE_flexbridge")),
        ]
    };

    let answers: Vec<_> = voice_answers()
        .into_iter()
        .map(|(script, expected)| {
            let good = run(script, &base, &signed(TOKEN));
            let bad = run(script, &base, &signed("another-token"));
            (script, expected, good, bad)
        })
        .collect();
    let logs = process.stop_and_read_logs();

    for (script, expected, good, (code, refused)) in answers {
        assert_eq!(good, (0, expected), "{script}.sh");
        assert_eq!(code, 0, "{script}.sh");
        let lines: Vec<_> = refused.lines().filter(|line| !line.is_empty()).collect();
        assert!(
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|line| *line == "invalid X-Twilio-Signature"),
            "{script}.sh: {refused}"
        );
    }
    assert!(!logs.contains(TOKEN), "the auth token is never logged");
}
