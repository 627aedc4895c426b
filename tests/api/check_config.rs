//! `flexbridge check-config` run as a process, as a user would.

use std::collections::BTreeSet;

use crate::helpers::{assert_readme_lists, readme_rows};
use crate::process::flexbridge;

/// `flexbridge check-config` with `args` and only `env`: its exit code, and
/// its stdout then its stderr.
pub fn check_config(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = flexbridge();
    command.arg("check-config").args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// Assert that the report has each of `lines`.
fn assert_lines(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.contains(line), "{line}\n{out}");
    }
}

#[test]
fn check_config_masks_secrets_and_reports_ready_routes() {
    let (code, out) = check_config(
        &[],
        &[
            ("SIP_URI_HOST", "sip.example.com"),
            (
                "STUDIO_WEBHOOK_URL",
                "https://webhooks.twilio.com/v1/Flows/FW1",
            ),
            ("TWILIO_AUTH_TOKEN", "super-secret-token-value"),
            ("TOOL_API_KEY", "tool-key-value"),
            ("LOG_FORMAT", "Pretty"),
        ],
    );

    assert_eq!(code, 0, "{out}");
    assert_lines(&out, &["\n  LOG_FORMAT                          pretty\n"]);
    assert!(!out.contains("super-secret-token-value"), "{out}");
    assert!(!out.contains("tool-key-value"), "{out}");
    assert!(
        out.contains("TWILIO_AUTH_TOKEN                   set (hidden)"),
        "{out}"
    );
    assert!(
        out.contains(
            "/receive-call                       ready: dials sip:{Called}@sip.example.com"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "/refer-handler                      ready: returns transfers to the Studio flow"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("ok: every set value is well formed\n"),
        "{out}"
    );
}

/// While the auth token is rotated both tokens are masked, and the report
/// says both are accepted and how to tell when the old one can go.
#[test]
fn check_config_masks_the_secondary_token_and_says_both_are_accepted() {
    let (code, out) = check_config(
        &[],
        &[
            ("TWILIO_AUTH_TOKEN", "old-token-value-0123"),
            ("TWILIO_SECONDARY_AUTH_TOKEN", "new-token-value-4567"),
        ],
    );

    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("old-token-value-0123") && !out.contains("new-token-value-4567"));
    assert_lines(
        &out,
        &[
            "TWILIO_AUTH_TOKEN                   set (hidden)",
            "TWILIO_SECONDARY_AUTH_TOKEN         set (hidden)",
            "X-Twilio-Signature                  checked with TWILIO_AUTH_TOKEN or TWILIO_SECONDARY_AUTH_TOKEN (rotating: remove the one Twilio no longer signs with, see flexbridge_signatures_accepted_total{token})",
        ],
    );
    let (_, unset) = check_config(&[], &[("TWILIO_AUTH_TOKEN", "old-token-value-0123")]);
    assert_lines(
        &unset,
        &[
            "TWILIO_SECONDARY_AUTH_TOKEN         (unset)",
            "X-Twilio-Signature                  checked with TWILIO_AUTH_TOKEN\n",
        ],
    );
}

/// A webhook SharedKey's secret is masked like the tokens, and the report
/// says which requests it checks, also when it is the only secret.
#[test]
fn check_config_masks_the_shared_key_secret_and_says_what_it_checks() {
    let (code, out) = check_config(
        &[],
        &[
            ("TWILIO_AUTH_TOKEN", "token-value-0123"),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", "shared-key-secret-89ab"),
        ],
    );

    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("shared-key-secret-89ab"), "{out}");
    assert_lines(
        &out,
        &[
            "TWILIO_WEBHOOK_SHARED_KEY_SECRET    set (hidden)",
            "X-Twilio-Signature                  checked with TWILIO_AUTH_TOKEN; SharedKey signatures with TWILIO_WEBHOOK_SHARED_KEY_SECRET\n",
        ],
    );
    let (code, alone) = check_config(
        &[],
        &[
            ("TWILIO_AUTH_TOKEN", ""),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", "shared-key-secret-89ab"),
        ],
    );
    assert_eq!(code, 0, "{alone}");
    assert_lines(
        &alone,
        &[
            "TWILIO_AUTH_TOKEN                   (unset)",
            "X-Twilio-Signature                  checked with TWILIO_WEBHOOK_SHARED_KEY_SECRET only: a request signed with the auth token answers 500 until TWILIO_AUTH_TOKEN is set\n",
        ],
    );
    // While the SharedKey is rotated both secrets are masked, and the
    // report says both are accepted, also when they are the only ones.
    let (code, rotating) = check_config(
        &[],
        &[
            ("TWILIO_AUTH_TOKEN", ""),
            ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", "shared-key-secret-89ab"),
            (
                "TWILIO_SECONDARY_SHARED_KEY_SECRET",
                "next-shared-secret-cdef",
            ),
        ],
    );
    assert_eq!(code, 0, "{rotating}");
    assert!(!rotating.contains("next-shared-secret-cdef"), "{rotating}");
    assert_lines(
        &rotating,
        &[
            "TWILIO_SECONDARY_SHARED_KEY_SECRET  set (hidden)",
            "X-Twilio-Signature                  checked with TWILIO_WEBHOOK_SHARED_KEY_SECRET or TWILIO_SECONDARY_SHARED_KEY_SECRET only (rotating: remove the one Twilio no longer signs with, see flexbridge_signatures_accepted_total{token}): a request signed with the auth token answers 500 until TWILIO_AUTH_TOKEN is set\n",
        ],
    );
    // The tools can tell their caller: a SharedKey signature will do.
    let tools = alone
        .lines()
        .find(|line| line.trim_start().starts_with("/tools/flex-handover"))
        .expect("the tool route is listed");
    assert!(
        tools.contains("not ready: set FLEX_WORKFLOW_SID"),
        "{tools}"
    );
    assert!(!tools.contains("TOOL_API_KEY"), "{tools}");
}

/// What a user who mistypes a setting reads, for each kind of value: the
/// line names the variable and says what is expected, in the words `serve`
/// also refuses to start with, and never repeats what may be a secret (an
/// API secret pasted as the key). The exit code is 1.
#[test]
fn check_config_says_what_each_malformed_setting_should_be() {
    let cases = [
        (
            "HOST",
            "not a host!",
            "expected an IP address or a host name",
        ),
        ("PORT", "eighty", "expected a port number from 0 to 65535"),
        (
            "PUBLIC_BASE_URL",
            "ftp://flexbridge.example.com",
            "the scheme must be https (or http for local testing)",
        ),
        (
            "KEEP_ALIVE_SECONDS",
            "0",
            "expected a whole number from 1 to 86400 seconds",
        ),
        (
            "TWILIO_ACCOUNT_SID",
            "AC1",
            "expected AC followed by 32 hex digits (the value is not shown: it may be the auth token)",
        ),
        (
            "TWILIO_API_KEY",
            "api-secret-pasted-here",
            "expected SK followed by 32 hex digits (the value is not shown: it may be the API secret)",
        ),
        (
            "TWILIO_VALIDATE_SIGNATURES",
            "maybe",
            "expected true or false",
        ),
        (
            "TWILIO_API_BASE_URL",
            "api.twilio.com",
            "not an absolute URL (relative URL without a base)",
        ),
        (
            "CONVERSATIONS_API_BASE_URL",
            "ftp://conversations.example",
            "the scheme must be https (or http for local testing)",
        ),
        (
            "SIP_URI_HOST",
            "sips:+1800@host",
            "expected a host name such as public.voip.us-south.assistant.watson.cloud.ibm.com, optionally with :port, and without sip:/sips: or a phone number",
        ),
        ("SIP_SECURE", "maybe", "expected true or false"),
        (
            "STUDIO_WEBHOOK_URL",
            "webhooks.twilio.com/v1",
            "not an absolute URL (relative URL without a base)",
        ),
        (
            "FLEX_WORKSPACE_SID",
            "WS1",
            r#""WS1" is not a Twilio workspace SID (expected WS followed by 32 hex digits)"#,
        ),
        (
            "FLEX_WORKFLOW_SID",
            "WS123",
            r#""WS123" is not a Twilio workflow SID (expected WW followed by 32 hex digits)"#,
        ),
        (
            "HANDOVER_DEDUP_SECONDS",
            "-1",
            "expected a whole number from 0 to 86400 seconds (0 turns dedup off)",
        ),
        (
            "HANDOVER_STORE",
            "mem",
            "expected memory, or a redis:// or rediss:// (TLS) URL",
        ),
        (
            "STUDIO_FLOW_SID",
            "FW1",
            r#""FW1" is not a Twilio Studio flow SID (expected FW followed by 32 hex digits)"#,
        ),
        (
            "UPSTREAM_TIMEOUT_MS",
            "99",
            "expected a whole number from 100 to 14000 milliseconds (Twilio gives up on a webhook after 15 s)",
        ),
        (
            "UPSTREAM_MAX_CONNECTIONS",
            "0",
            "expected a whole number from 1 to 10000",
        ),
        (
            "ASAPP_API_ID",
            "a\tb",
            "must be printable ASCII (it is sent as an HTTP header)",
        ),
        (
            "CONVERSATION_RELAY_URL",
            "https://agent.example.com",
            "the scheme must be wss (Twilio connects only to secure WebSockets)",
        ),
        (
            "CONVERSATION_RELAY_LANGUAGE",
            "en_US",
            "expected a language tag such as en-US",
        ),
        ("LOG_FORMAT", "xml", "expected json or pretty"),
    ];
    let env: Vec<(&str, &str)> = cases
        .iter()
        .map(|&(name, value, _)| (name, value))
        .collect();

    let (code, out) = check_config(&[], &env);

    assert_eq!(code, 1, "{out}");
    let refused: Vec<&str> = out
        .lines()
        .filter(|line| line.contains(" INVALID: "))
        .collect();
    let expected: Vec<String> = cases
        .iter()
        .map(|(name, _, why)| format!("  {name:<35} INVALID: {why}"))
        .collect();
    assert_eq!(refused, expected);
    assert!(out.ends_with(&format!("error: {} malformed value(s)\n", cases.len())));
    assert!(!out.contains("api-secret-pasted-here"), "{out}");
}

/// With nothing set, every setting reads the SPEC's default: the listen
/// address, the timeouts, and the origins outbound requests go to (a typo
/// in one would send production traffic nowhere, and every other test sets
/// them to a local server). Each route says what it still needs.
#[test]
fn check_config_shows_the_defaults_of_an_empty_environment() {
    let (code, out) = check_config(&[], &[]);

    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "flexbridge configuration
  HOST                                0.0.0.0
  PORT                                8080
  PUBLIC_BASE_URL                     (rebuilt per request from X-Forwarded-Proto / X-Forwarded-Host / Host)
  KEEP_ALIVE_SECONDS                  620
  TWILIO_ACCOUNT_SID                  (unset)
  TWILIO_AUTH_TOKEN                   (unset)
  TWILIO_SECONDARY_AUTH_TOKEN         (unset)
  TWILIO_WEBHOOK_SHARED_KEY_SECRET    (unset)
  TWILIO_SECONDARY_SHARED_KEY_SECRET  (unset)
  TWILIO_API_KEY                      (unset)
  TWILIO_API_SECRET                   (unset)
  TWILIO_VALIDATE_SIGNATURES          true
  TWILIO_API_BASE_URL                 https://api.twilio.com
  FLEX_API_BASE_URL                   https://flex-api.twilio.com
  CONVERSATIONS_API_BASE_URL          https://conversations.twilio.com
  TASKROUTER_API_BASE_URL             https://taskrouter.twilio.com
  STUDIO_API_BASE_URL                 https://studio.twilio.com
  SIP_URI_HOST                        (unset)
  SIP_SECURE                          true
  STUDIO_WEBHOOK_URL                  (unset)
  FLEX_WORKSPACE_SID                  (unset)
  FLEX_WORKFLOW_SID                   (unset)
  TOOL_API_KEY                        (unset)
  HANDOVER_DEDUP_SECONDS              600
  HANDOVER_STORE                      (memory: in-process, dedup per instance)
  STUDIO_FLOW_SID                     (unset)
  UPSTREAM_TIMEOUT_MS                 8000
  UPSTREAM_MAX_CONNECTIONS            64
  ASAPP_API_HOST                      (unset)
  ASAPP_API_ID                        (unset)
  ASAPP_API_SECRET                    (unset)
  POLYAI_API_BASE_URL                 https://api.polyai.app
  POLYAI_API_KEY                      (unset)
  POLYAI_CONNECTOR_ID                 (unset)
  POLYAI_CONNECT_MESSAGE              (unset: nothing is said)
  CONVERSATION_RELAY_URL              (unset)
  CONVERSATION_RELAY_WELCOME_GREETING (unset: the agent speaks first)
  CONVERSATION_RELAY_LANGUAGE         (unset: Twilio's default, en-US)
  CONVERSATION_CONFIGURATION_ID       (unset: no Conversation Orchestrator)
  DIALOGFLOW_CX_CONNECTOR_NAME        (unset)
  FALLBACK_MESSAGE                    We're sorry, we can't connect your call right now. Please try again later.
  METRICS_TOKEN                       (unset)
  LOG_FORMAT                          (pretty on a terminal, else json)
signatures
  X-Twilio-Signature                  FAIL CLOSED: every signed route answers 500 until TWILIO_AUTH_TOKEN is set
routes
  /receive-call                       fallback only: set SIP_URI_HOST
  /refer-handler                      fallback only: set STUDIO_WEBHOOK_URL (or FLEX_WORKFLOW_SID)
  /tools/flex-handover                not ready: set FLEX_WORKFLOW_SID, FLEX_WORKSPACE_SID, TWILIO_ACCOUNT_SID, TOOL_API_KEY (or TWILIO_AUTH_TOKEN)
  /tools/studio-handover              not ready: set STUDIO_FLOW_SID, TWILIO_ACCOUNT_SID, TOOL_API_KEY (or TWILIO_AUTH_TOKEN)
  /engage                             fallback only: set ASAPP_API_HOST, ASAPP_API_ID, ASAPP_API_SECRET
  /call-complete                      fallback only: set ASAPP_API_HOST, ASAPP_API_ID, ASAPP_API_SECRET, FLEX_WORKFLOW_SID
  /polyai/connect                     fallback only: set POLYAI_CONNECTOR_ID
  /polyai/handoff-state               not ready: set POLYAI_API_KEY
  /polyai/call-complete               fallback only: set POLYAI_API_KEY, FLEX_WORKFLOW_SID
  /conversation-relay/connect         fallback only: set CONVERSATION_RELAY_URL
  /conversation-relay/complete        fallback only: set FLEX_WORKFLOW_SID
  /virtual-agent/connect              fallback only: set DIALOGFLOW_CX_CONNECTOR_NAME
  /virtual-agent/complete             fallback only: set FLEX_WORKFLOW_SID
ok: every set value is well formed
"
    );
}

/// `--dev` makes every route ready, and each line says what it does
/// instead of calling out.
#[test]
fn check_config_in_dev_says_what_each_route_does() {
    let (code, out) = check_config(&["--dev"], &[]);

    assert_eq!(code, 0, "{out}");
    let report = out
        .split_once("\nsignatures\n")
        .map_or("", |(_, report)| report);
    assert_eq!(
        report,
        "  X-Twilio-Signature                  OFF (--dev)
routes
  /receive-call                       ready: dials sip:{Called}@assistant.example.invalid
  /refer-handler                      ready: returns transfers to the Studio flow
  /tools/flex-handover                ready: hands sessions to Flex (--dev: dry run, Twilio is not called)
  /tools/studio-handover              ready: hands conversations to the Studio flow (--dev: dry run, Twilio is not called)
  /engage                             ready: connects calls to GenerativeAgent (--dev: demo answers, ASAPP is not called)
  /call-complete                      ready: enqueues AGENT transfers into Flex (--dev: demo answers, ASAPP is not called)
  /polyai/connect                     ready: connects calls to the PolyAI connector
  /polyai/handoff-state               ready: answers PolyAI's handoff state (--dev: demo state, PolyAI is not called)
  /polyai/call-complete               ready: enqueues calls into Flex with the handoff state (--dev: demo state, PolyAI is not called)
  /conversation-relay/connect         ready: connects calls to wss://agent.example.invalid/conversation-relay
  /conversation-relay/complete        ready: enqueues handoffs and failed sessions into Flex
  /virtual-agent/connect              ready: connects calls to the Dialogflow CX connector dev-demo-dialogflow-cx
  /virtual-agent/complete             ready: enqueues live-agent handoffs and failed sessions into Flex
ok: every set value is well formed
"
    );
    let (_, flex_only) = check_config(&["--dev"], &[("STUDIO_WEBHOOK_URL", "")]);
    assert_lines(
        &flex_only,
        &["/refer-handler                      ready: enqueues transfers straight into Flex\n"],
    );
}

#[test]
fn check_config_reports_what_each_vendor_route_still_needs() {
    let (_, none) = check_config(&[], &[]);
    let (_, ready) = check_config(
        &[],
        &[
            ("ASAPP_API_HOST", "https://api.sandbox.asapp.com"),
            ("ASAPP_API_ID", "asapp-id"),
            ("ASAPP_API_SECRET", "asapp-secret-value"),
            ("POLYAI_API_KEY", "polyai-key-value"),
            ("POLYAI_CONNECTOR_ID", "connector-1"),
            ("FLEX_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef"),
        ],
    );

    assert_lines(
        &none,
        &[
            "/engage                             fallback only: set ASAPP_API_HOST, ASAPP_API_ID, ASAPP_API_SECRET",
            "/call-complete                      fallback only: set ASAPP_API_HOST, ASAPP_API_ID, ASAPP_API_SECRET, FLEX_WORKFLOW_SID",
            "/polyai/connect                     fallback only: set POLYAI_CONNECTOR_ID",
            "/polyai/handoff-state               not ready: set POLYAI_API_KEY",
            "/polyai/call-complete               fallback only: set POLYAI_API_KEY, FLEX_WORKFLOW_SID",
        ],
    );
    assert_lines(
        &ready,
        &[
            "/engage                             ready: connects calls to GenerativeAgent",
            "/call-complete                      ready: enqueues AGENT transfers into Flex",
            "/polyai/connect                     ready: connects calls to the PolyAI connector",
            "/polyai/handoff-state               ready: answers PolyAI's handoff state",
            "/polyai/call-complete               ready: enqueues calls into Flex with the handoff state",
            "ASAPP_API_SECRET                    set (hidden)",
            "POLYAI_API_KEY                      set (hidden)",
        ],
    );
    assert!(!ready.contains("asapp-secret-value") && !ready.contains("polyai-key-value"));
}

#[test]
fn check_config_reports_what_each_tool_still_needs() {
    let (_, none) = check_config(
        &[],
        &[("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")],
    );
    let (_, ready) = check_config(
        &[],
        &[
            ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
            ("TWILIO_API_SECRET", "api-secret-value"),
            ("TOOL_API_KEY", "tool-key-value"),
            ("FLEX_WORKSPACE_SID", "WS0123456789abcdef0123456789abcdef"),
            ("FLEX_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef"),
            ("STUDIO_FLOW_SID", "FW0123456789abcdef0123456789abcdef"),
        ],
    );

    assert_lines(
        &none,
        &[
            "/tools/flex-handover                not ready: set FLEX_WORKFLOW_SID, FLEX_WORKSPACE_SID, TWILIO_AUTH_TOKEN, TOOL_API_KEY (or TWILIO_AUTH_TOKEN)",
            "/tools/studio-handover              not ready: set STUDIO_FLOW_SID, TWILIO_AUTH_TOKEN, TOOL_API_KEY (or TWILIO_AUTH_TOKEN)",
        ],
    );
    assert_lines(
        &ready,
        &[
            "/tools/flex-handover                ready: hands sessions to Flex",
            "/tools/studio-handover              ready: hands conversations to the Studio flow",
        ],
    );
    assert!(!ready.contains("api-secret-value") && !ready.contains("tool-key-value"));
}

/// A tool knows its caller by the tool key or by a signature (made with
/// either auth token), or takes any caller when signatures are off; in
/// `--dev` it makes a dry run, which needs no REST credentials.
#[test]
fn a_tool_is_ready_with_either_auth_token_with_signatures_off_and_in_dev() {
    let targets = [
        ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_KEY", "SK0123456789abcdef0123456789abcdef"),
        ("TWILIO_API_SECRET", "api-secret-value"),
        ("FLEX_WORKSPACE_SID", "WS0123456789abcdef0123456789abcdef"),
        ("FLEX_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef"),
    ];
    let ready = "/tools/flex-handover                ready: hands sessions to Flex\n";
    for caller in [
        ("TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef"),
        (
            "TWILIO_SECONDARY_AUTH_TOKEN",
            "0123456789abcdef0123456789abcdef",
        ),
        ("TWILIO_WEBHOOK_SHARED_KEY_SECRET", "shared-key-secret-1"),
        ("TWILIO_SECONDARY_SHARED_KEY_SECRET", "shared-key-secret-2"),
        ("TWILIO_VALIDATE_SIGNATURES", "false"),
    ] {
        let (_, out) = check_config(&[], &[&targets[..], &[caller]].concat());
        assert_lines(&out, &[ready]);
    }

    let (_, dev) = check_config(&["--dev"], &[]);
    assert_lines(
        &dev,
        &[
            "/tools/flex-handover                ready: hands sessions to Flex (--dev: dry run, Twilio is not called)\n",
        ],
    );
}

#[test]
fn serve_refuses_to_start_with_a_malformed_value() {
    let output = flexbridge()
        .env("FLEX_WORKFLOW_SID", "nope")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "flexbridge: refusing to start, malformed configuration: \
         FLEX_WORKFLOW_SID: \"nope\" is not a Twilio workflow SID (expected WW followed by 32 hex digits)\n\
         run `flexbridge check-config` for the full report\n"
    );
}

/// A second instance on the same port (or anything else listening there)
/// stops the start with exit code 1, saying why on stderr and in the log.
#[test]
fn serve_exits_1_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();

    let output = flexbridge()
        .env("HOST", "127.0.0.1")
        .env("PORT", port)
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "flexbridge: Address already in use (os error 98)\n"
    );
    let logs = String::from_utf8_lossy(&output.stdout);
    let failed = r#""level":"ERROR","fields":{"message":"flexbridge failed","error.message":"Address already in use (os error 98)"}"#;
    assert!(logs.contains(failed), "{logs}");
}

/// The README's configuration table names exactly the variables
/// `check-config` reports (and `RUST_LOG`, the log filter), so a new
/// setting cannot ship undocumented, nor a removed one stay documented.
#[test]
fn the_readme_documents_every_setting_check_config_reports() {
    let (_, out) = check_config(&[], &[]);
    let reported: BTreeSet<&str> = out
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .chain(["RUST_LOG"])
        .collect();

    let documented: BTreeSet<&str> = readme_rows("Configuration")
        .flat_map(|row| {
            let names = row.split(" | ").next().unwrap_or_default();
            names.split(", ").map(|name| name.trim_matches('`'))
        })
        .collect();

    assert!(reported.len() >= 38, "{out}");
    assert_readme_lists(&documented, &reported);
}

const WS: &str = "WS0123456789abcdef0123456789abcdef";
const WW: &str = "WW0123456789abcdef0123456789abcdef";
const FW: &str = "FW0123456789abcdef0123456789abcdef";
const API_KEY: &str = "SK0123456789abcdef0123456789abcdef";
const API_SECRET: &str = "api-secret-kept-out-7";

/// `check-config --connect` with `args` before it, the API key and secret
/// and then `env`, off the test's runtime (it blocks until the process
/// exits); the secret must not be in what it prints.
async fn connect(args: &'static [&'static str], env: &[(&'static str, &str)]) -> (i32, String) {
    // `env` comes last, so an empty value there unsets a credential.
    let credentials = [
        ("TWILIO_API_KEY", API_KEY),
        ("TWILIO_API_SECRET", API_SECRET),
    ];
    let env: Vec<(&str, String)> = credentials
        .iter()
        .chain(env)
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    let (code, out) = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check_config(&[args, &["--connect"]].concat(), &env)
    })
    .await
    .expect("check-config ran");
    assert!(!out.contains(API_SECRET), "{out}");
    (code, out)
}

/// Twilio's answer to a REST `GET` it refuses, as its error document.
fn twilio_error(status: u16, code: u32, message: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "code": code, "message": message, "status": status,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
    }))
}

/// Assert that `server`, standing in for Twilio, received no request.
async fn assert_nothing_asked(server: &wiremock::MockServer) {
    let asked = server.received_requests().await;
    assert_eq!(asked.expect("wiremock records requests").len(), 0);
}

/// A `--connect` line.
fn connection(name: &str, text: &str) -> String {
    format!("\n  {name:<35} {text}\n")
}

/// `check-config --connect` asks TaskRouter for `FLEX_WORKFLOW_SID` in
/// `FLEX_WORKSPACE_SID`, with the REST credentials: 0 when it is there; 1,
/// with Twilio's reason, when it is not (a call enqueued into it would end)
/// or the credentials are refused. Without what it needs it says so and
/// does not fail.
#[tokio::test]
async fn check_config_connect_asks_taskrouter_whether_the_workflow_is_the_workspaces() {
    use base64::Engine as _;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let taskrouter = MockServer::start().await;
    let base = taskrouter.uri();
    let env = |workspace| {
        [
            ("TASKROUTER_API_BASE_URL", base.as_str()),
            ("FLEX_WORKSPACE_SID", workspace),
            ("FLEX_WORKFLOW_SID", WW),
        ]
    };
    let line = |text: &str| connection("FLEX_WORKFLOW_SID", text);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}"));

    Mock::given(method("GET"))
        .and(path(format!("/v1/Workspaces/{WS}/Workflows/{WW}")))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "sid": WW, "workspace_sid": WS, "friendly_name": "Assign to Anyone",
        })))
        .expect(1)
        .mount(&taskrouter)
        .await;
    let (code, out) = connect(&[], &env(WS)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&line("found: \"Assign to Anyone\"")), "{out}");
    taskrouter.verify().await;
    taskrouter.reset().await;

    // Another workspace's workflow, or a deleted one: Twilio's 404.
    let other = "WSfedcba9876543210fedcba9876543210";
    let not_found =
        format!("The requested resource /Workspaces/{other}/Workflows/{WW} was not found");
    Mock::given(method("GET"))
        .and(path(format!("/v1/Workspaces/{other}/Workflows/{WW}")))
        .respond_with(twilio_error(404, 20404, &not_found))
        .mount(&taskrouter)
        .await;
    let (code, out) = connect(&[], &env(other)).await;
    assert_eq!(code, 1, "{out}");
    let text = format!("NOT FOUND: Twilio answered 404 (error 20404: {not_found})");
    assert!(out.contains(&line(&text)), "{out}");
    assert!(out.ends_with("error: FLEX_WORKFLOW_SID: not a workflow of FLEX_WORKSPACE_SID: a call enqueued into it ends without reaching an agent\n"), "{out}");
    taskrouter.reset().await;

    // Credentials Twilio refuses.
    Mock::given(method("GET"))
        .respond_with(twilio_error(401, 20003, "Authenticate"))
        .mount(&taskrouter)
        .await;
    let (code, out) = connect(&[], &env(WS)).await;
    assert_eq!(code, 1, "{out}");
    let text = "NOT CHECKED: Twilio answered 401 (error 20003: Authenticate)";
    assert!(out.contains(&line(text)), "{out}");
    assert!(
        out.ends_with("error: FLEX_WORKFLOW_SID: Twilio did not confirm it\n"),
        "{out}"
    );
    taskrouter.reset().await;

    // Nothing is asked without a workspace, credentials or real SIDs; a
    // malformed SID is the report's error, not a question for TaskRouter.
    let dev = [("TASKROUTER_API_BASE_URL", base.as_str())];
    let no_key = [
        env(WS).as_slice(),
        &[("TWILIO_API_KEY", ""), ("TWILIO_API_SECRET", "")],
    ]
    .concat();
    let cases: [(&[(&str, &str)], _, _); 3] = [
        (&env(""), 0, "set FLEX_WORKSPACE_SID to check it"),
        (&no_key, 0, "set TWILIO_ACCOUNT_SID to check it"),
        (&env("WS-typo"), 1, "a value it needs is malformed"),
    ];
    for (env, expected, why) in cases {
        let (code, out) = connect(&[], env).await;
        assert_eq!(code, expected, "{out}");
        assert!(out.contains(&line(&format!("not checked: {why}"))), "{out}");
    }
    let (code, out) = connect(&["--dev"], &dev).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&line("not checked: --dev")), "{out}");
    assert_nothing_asked(&taskrouter).await;
}

/// `check-config --connect` asks Studio for the flow of
/// `STUDIO_WEBHOOK_URL`: a URL of no flow of the account sends every call
/// returned to Studio (each watsonx transfer, each voice fallback) to its end.
#[tokio::test]
async fn check_config_connect_asks_studio_whether_the_webhook_urls_flow_exists() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let studio = MockServer::start().await;
    let base = studio.uri();
    let webhook = format!(
        "https://webhooks.twilio.com/v1/Accounts/AC0123456789abcdef0123456789abcdef/Flows/{FW}?source=ivr"
    );
    let env = |url| {
        [
            ("STUDIO_API_BASE_URL", base.as_str()),
            ("STUDIO_WEBHOOK_URL", url),
        ]
    };
    let line = |text: &str| connection("STUDIO_WEBHOOK_URL", text);

    Mock::given(method("GET"))
        .and(path(format!("/v2/Flows/{FW}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "sid": FW, "friendly_name": "Watson IVR", "status": "published",
        })))
        .expect(1)
        .mount(&studio)
        .await;
    let (code, out) = connect(&[], &env(&webhook)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&line("found: \"Watson IVR\"")), "{out}");
    studio.verify().await;
    studio.reset().await;

    let not_found = format!("The requested resource /Flows/{FW} was not found");
    Mock::given(method("GET"))
        .respond_with(twilio_error(404, 20404, &not_found))
        .mount(&studio)
        .await;
    let (code, out) = connect(&[], &env(&webhook)).await;
    assert_eq!(code, 1, "{out}");
    let text = format!("NOT FOUND: Twilio answered 404 (error 20404: {not_found})");
    assert!(out.contains(&line(&text)), "{out}");
    assert!(out.ends_with("error: STUDIO_WEBHOOK_URL: not a Studio flow of this account: a call sent back to Studio ends there\n"), "{out}");
    studio.reset().await;

    // Only a Trigger webhook URL of US1 names a flow Studio's API there has.
    let ie1 = webhook.replace("webhooks.twilio.com", "webhooks.dublin.ie1.twilio.com");
    for url in [ie1.as_str(), "https://ivr-1234.twil.io/studio-return"] {
        let (code, out) = connect(&[], &env(url)).await;
        assert_eq!(code, 0, "{out}");
        let text = "not checked: not a Trigger webhook URL of Twilio's US1 region (https://webhooks.twilio.com/…/Flows/FW…)";
        assert!(out.contains(&line(text)), "{out}");
    }
    let (code, out) = connect(&[], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&line("not checked: unset")), "{out}");
    assert_nothing_asked(&studio).await;
}

/// `check-config --connect` resolves `SIP_URI_HOST`: Twilio dials only a
/// host with a public address (its warning 13254), and a call whose SIP leg
/// cannot start ends at `/receive-call`'s `<Dial>`. An address needs no DNS,
/// and `localhost` is answered from the hosts file, so nothing leaves the
/// machine.
#[tokio::test]
async fn check_config_connect_resolves_the_sip_host_twilio_dials() {
    let line = |text: &str| connection("SIP_URI_HOST", text);
    let error = "error: SIP_URI_HOST: Twilio dials only a host that resolves to a public address (its warning 13254): a call /receive-call sends to the assistant ends there\n";

    let (code, out) = connect(&[], &[("SIP_URI_HOST", "52.1.2.3")]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&line("resolves to 52.1.2.3")), "{out}");

    let (code, out) = connect(&[], &[("SIP_URI_HOST", "10.1.2.3:5061")]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&line("NOT PUBLIC: resolves to 10.1.2.3 only")),
        "{out}"
    );
    assert!(out.ends_with(error), "{out}");

    let (code, out) = connect(&[], &[("SIP_URI_HOST", "localhost")]).await;
    assert_eq!(code, 1, "{out}");
    // The line's start: the resolver may add `::1`.
    let resolved = line("NOT PUBLIC: resolves to 127.0.0.1");
    assert!(out.contains(resolved.trim_end()), "{out}");
    assert!(out.ends_with(error), "{out}");

    let cases: [(&[(&str, &str)], _, _); 2] = [
        (&[], 0, "unset"),
        (
            &[("SIP_URI_HOST", "sips:assistant.example.com")],
            1,
            "a value it needs is malformed",
        ),
    ];
    for (env, expected, why) in cases {
        let (code, out) = connect(&[], env).await;
        assert_eq!(code, expected, "{out}");
        assert!(out.contains(&line(&format!("not checked: {why}"))), "{out}");
    }
    let (code, out) = connect(&["--dev"], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&line("not checked: --dev")), "{out}");
}
