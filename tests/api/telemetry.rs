//! Request ids and the shape of the logs.

use crate::flex_handover::{CH, IS};
use crate::helpers::{CALL_SID, spawn_studio_app};
use crate::process::{log_events, request_spans, start_binary};

#[tokio::test]
async fn a_sane_incoming_request_id_is_echoed_and_others_are_replaced() {
    let app = spawn_studio_app().await;
    let get = |id: Option<String>| {
        let mut request = app.client.get(app.url("/healthz"));
        if let Some(id) = id {
            request = request.header("X-Request-Id", id);
        }
        request.send()
    };

    // 1 to 128 characters are kept.
    for id in ["req-42.abc:7".to_owned(), "7".to_owned(), "x".repeat(128)] {
        let kept = get(Some(id.clone())).await.unwrap();
        assert_eq!(kept.headers()["x-request-id"], id.as_str());
    }
    let too_long = get(Some("x".repeat(129))).await.unwrap();
    let empty = get(Some(String::new())).await.unwrap();
    let odd = get(Some("has spaces and \"quotes\"".into())).await.unwrap();
    let none = get(None).await.unwrap();

    for response in [too_long, empty, odd, none] {
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid_like(&id), "a fresh UUID, got {id:?}");
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4
}

/// Run as a process with JSON logs: one line per request span with its id,
/// route, status, latency and the call SID, under each name Twilio and
/// Studio flows give it (a tool's conversation by its SID).
#[tokio::test]
async fn each_request_is_one_json_span_with_id_route_status_latency_and_call_sid() {
    let process = start_binary(&["--dev"], &[]).await;
    let client = reqwest::Client::new();
    client
        .post(format!("{}/receive-call", process.address))
        .header("X-Request-Id", "req-log-test-1")
        .form(&[("CallSid", CALL_SID), ("Called", "+18005551234")])
        .send()
        .await
        .unwrap();
    // Studio's Make HTTP Request widgets, as the vendors' samples name it.
    let by_widget = [
        ("req-log-test-2", "/polyai/handoff-state", "call_sid"),
        ("req-log-test-3", "/call-complete?format=json", "callSid"),
    ];
    // A tool's conversation is recorded by its SID.
    let tool = client
        .post(format!("{}/tools/flex-handover", process.address))
        .header("X-Request-Id", "req-log-test-4")
        .header("X-Session-Id", format!("conversations__{IS}/{CH}"))
        .header("X-Identity", "phone:+14155550100")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(tool.status(), 200);
    for (id, path, name) in by_widget {
        let response = client
            .post(format!("{}{path}", process.address))
            .header("X-Request-Id", id)
            .form(&[(name, CALL_SID)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }

    let logs = process.stop_and_read_logs();
    let spans = request_spans(&logs);
    let spans_of = |id: &str| -> Vec<_> {
        spans
            .iter()
            .filter(|span| span["request_id"] == id)
            .collect()
    };
    for (id, path, _) in by_widget {
        let found = spans_of(id);
        let span = found
            .first()
            .unwrap_or_else(|| panic!("no span for {path}: {logs}"));
        assert_eq!(span["call_sid"], CALL_SID, "{path}: {span}");
    }
    let tool_span = spans_of("req-log-test-4");
    assert_eq!(
        tool_span.first().map(|span| &span["conversation_sid"]),
        Some(&serde_json::json!(CH)),
        "{logs}"
    );
    let spans = spans_of("req-log-test-1");
    assert_eq!(spans.len(), 1, "exactly one closed request span: {logs}");
    let span = &spans[0];
    assert_eq!(span["http.route"], "/receive-call");
    assert_eq!(span["http.method"], "POST");
    assert_eq!(span["http.status_code"], 200);
    assert_eq!(span["call_sid"], CALL_SID);
    assert!(
        span["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{span}"
    );
}

/// `LOG_FORMAT=pretty` (the default on a terminal): one human-readable line
/// per request with the same fields, without colours under `NO_COLOR`.
#[tokio::test]
async fn pretty_logs_have_a_line_per_request_with_its_fields() {
    let env = [("LOG_FORMAT", "pretty"), ("NO_COLOR", "1")];
    let process = start_binary(&["--dev"], &env).await;
    reqwest::Client::new()
        .post(format!("{}/receive-call", process.address))
        .header("X-Request-Id", "req-pretty-1")
        .form(&[("CallSid", CALL_SID), ("Called", "+18005551234")])
        .send()
        .await
        .unwrap();

    let logs = process.stop_and_read_logs();

    let fields = format!(
        " INFO HTTP request{{http.method=\"POST\" http.route=\"/receive-call\" \
         http.path=\"/receive-call\" request_id=\"req-pretty-1\" call_sid=\"{CALL_SID}\" latency_ms="
    );
    let lines: Vec<_> = logs.lines().filter(|l| l.contains(&fields)).collect();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        lines[0].contains(" http.status_code=200 otel.status_code=\"OK\"}: flexbridge::telemetry: close time.busy="),
        "{logs}"
    );
    assert!(
        logs.contains(" INFO flexbridge: flexbridge stopped\n"),
        "{logs}"
    );
    assert!(
        !logs.contains('\u{1b}') && !logs.contains("{\"timestamp\""),
        "{logs}"
    );
}

/// At start-up each route that cannot do its job is named at WARN, with what
/// it does instead and what to set.
#[tokio::test]
async fn start_up_warns_of_each_route_that_is_not_ready_and_what_it_does_instead() {
    let process = start_binary(&[], &[]).await;
    let logs = process.stop_and_read_logs();

    let warning = |route: &str| {
        log_events(&logs)
            .find(|event| event["level"] == "WARN" && event["fields"]["route"] == route)
            .map(|event| event["fields"]["message"].clone())
    };
    assert_eq!(
        warning("/receive-call"),
        Some("not configured, answers with the fallback: set SIP_URI_HOST".into()),
        "{logs}"
    );
    assert_eq!(
        warning("/tools/studio-handover"),
        Some(
            "not configured, answers 500 not_configured: set STUDIO_FLOW_SID, TWILIO_ACCOUNT_SID, \
             TOOL_API_KEY (or TWILIO_AUTH_TOKEN)"
                .into()
        ),
        "{logs}"
    );
    // A Studio widget's JSON route has no fallback: it fails.
    assert_eq!(
        warning("/polyai/handoff-state"),
        Some("not configured, answers 500 with a JSON error: set POLYAI_API_KEY".into()),
        "{logs}"
    );
}

/// The signature checks' state is logged at start-up at the level it
/// deserves: an error when every signed route fails closed, a warning when
/// the checks are off, information when they are on.
#[tokio::test]
async fn start_up_logs_the_signature_checks_at_their_level() {
    let cases = [
        (
            None,
            "ERROR",
            "request signatures: FAIL CLOSED: every signed route answers 500 until TWILIO_AUTH_TOKEN is set",
        ),
        (
            Some(("TWILIO_VALIDATE_SIGNATURES", "false")),
            "WARN",
            "request signature checks are OFF (TWILIO_VALIDATE_SIGNATURES=false): anyone who finds the URL can call it",
        ),
        (
            Some(("TWILIO_AUTH_TOKEN", "a-test-token-0123")),
            "INFO",
            "request signatures checked with TWILIO_AUTH_TOKEN",
        ),
    ];
    for (env, level, message) in cases {
        let logs = start_binary(&[], env.as_slice()).await.stop_and_read_logs();
        let logged: Vec<_> = log_events(&logs)
            .filter(|event| {
                event["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("request signature"))
            })
            .map(|event| (event["level"].clone(), event["fields"]["message"].clone()))
            .collect();
        assert_eq!(logged, [(level.into(), message.into())], "{env:?}\n{logs}");
    }
}
