//! The scripts of `examples/curl/`, run as the README says: unsigned against
//! a `--dev` instance, and signed (`TWILIO_AUTH_TOKEN` set) against one that
//! checks signatures. The scripts exit 0 whatever the status, so each test
//! reads what they print.

use std::path::Path;
use std::process::Command;

use flexbridge::config::DEV_DEFAULTS;
use flexbridge::vendors::asapp::DEV_STREAM_URL;
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::asapp::{
    ASAPP_ID, ASAPP_SECRET, STREAM_PATH, stream_url_answer, transfer, transfer_path,
};
use crate::polyai::{API_KEY as POLYAI_API_KEY, STATE_PATH};
use crate::process::{coverage_env, start_binary};

const TOKEN: &str = "curl-examples-token-7d2a91";
const CALL: &str = "CA0123456789abcdef0123456789abcdef";
const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
/// ASAPP's call transfer (as flexbridge passes it on) and PolyAI's handoff
/// state as `--dev` makes them up, and as the signed test's stand-ins give them.
const ASAPP_TRANSFER: &str = r#"{"callTransferStatus":"COMPLETED","currentTaskName":"dev_demo","referenceVariables":{"customer_name":"Dev Demo"},"transferType":"AGENT","transferVariables":{"reason":"caller asked for an agent"}}"#;
const POLYAI_STATE: &str = r#"{"dev_demo":true,"reason":"caller asked for an agent","summary":"Wants to change the delivery address of order 1234."}"#;

/// What each voice script prints, with the `--dev` demo settings.
fn voice_answers() -> [(&'static str, String); 6] {
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
        (
            "asapp",
            format!(
                "{XML}<Response><Connect action=\"/call-complete?callSid={CALL}\"><Stream url=\"{DEV_STREAM_URL}\"><Parameter name=\"asapp_callTransferId\" value=\"{CALL}\"/><Parameter name=\"asapp_externalConversationId\" value=\"{CALL}\"/><Parameter name=\"customerId\" value=\"c-42\"/><Parameter name=\"input_accountTier\" value=\"gold\"/></Stream></Connect></Response>\n{}\n",
                enqueue(&format!(
                    r#"{{"asapp":{ASAPP_TRANSFER},"call_sid":"{CALL}","handoff":{{"context":{{"reason":"caller asked for an agent"}},"reason":"caller asked for an agent","session_id":"{CALL}","vendor":"asapp"}},"reason":"caller asked for an agent"}}"#
                ))
            ),
        ),
        (
            "polyai",
            format!(
                "{XML}<Response><Connect connectorId=\"dev-demo-connector\" action=\"/polyai/call-complete\"/></Response>\n{POLYAI_STATE}\n{}\n",
                enqueue(&format!(
                    r#"{{"call_sid":"{CALL}","dev_demo":true,"handoff":{{"context":{POLYAI_STATE},"reason":"caller asked for an agent","session_id":"{CALL}","summary":"Wants to change the delivery address of order 1234.","vendor":"polyai"}},"polyai":{POLYAI_STATE},"reason":"caller asked for an agent","summary":"Wants to change the delivery address of order 1234."}}"#
                ))
            ),
        ),
    ]
}

/// Stand-ins for ASAPP and PolyAI answering what `--dev` makes up, each
/// expecting the requests one signed run of the scripts makes; the settings
/// that point flexbridge at them.
async fn vendor_stand_ins() -> (MockServer, MockServer, Vec<(&'static str, String)>) {
    let asapp = MockServer::start().await;
    let polyai = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(STREAM_PATH))
        .and(header("asapp-api-id", ASAPP_ID))
        .respond_with(stream_url_answer(DEV_STREAM_URL))
        .expect(1)
        .mount(&asapp)
        .await;
    Mock::given(method("GET"))
        .and(path(transfer_path(CALL)))
        .respond_with(transfer(
            "COMPLETED",
            serde_json::json!({
                "transferType": "AGENT",
                "currentTaskName": "dev_demo",
                "referenceVariables": {"customer_name": "Dev Demo"},
                "transferVariables": {"reason": "caller asked for an agent"},
            }),
        ))
        .expect(1)
        .mount(&asapp)
        .await;
    // Once for the flow's lookup, once when the call comes back.
    Mock::given(method("GET"))
        .and(path(STATE_PATH))
        .and(query_param("id", CALL))
        .and(header("x-api-key", POLYAI_API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(POLYAI_STATE, "application/json"))
        .expect(2)
        .mount(&polyai)
        .await;
    let settings = vec![
        ("ASAPP_API_HOST", asapp.uri()),
        ("ASAPP_API_ID", ASAPP_ID.to_owned()),
        ("ASAPP_API_SECRET", ASAPP_SECRET.to_owned()),
        ("POLYAI_API_BASE_URL", polyai.uri()),
        ("POLYAI_API_KEY", POLYAI_API_KEY.to_owned()),
    ];
    (asapp, polyai, settings)
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
        .envs(coverage_env())
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
/// and an instance checking signatures (asking stand-ins for ASAPP and
/// PolyAI) answers as `--dev` does; signed with another token, every
/// request is refused before it reaches a vendor.
#[tokio::test]
async fn the_voice_scripts_sign_their_requests_when_a_token_is_set() {
    let (_asapp, _polyai, vendors) = vendor_stand_ins().await;
    let mut env: Vec<(&str, &str)> = DEV_DEFAULTS.to_vec();
    env.push(("TWILIO_AUTH_TOKEN", TOKEN));
    env.extend(vendors.iter().map(|(name, value)| (*name, value.as_str())));
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
    for secret in [TOKEN, ASAPP_SECRET, POLYAI_API_KEY] {
        assert!(!logs.contains(secret), "a secret is never logged");
    }
}
