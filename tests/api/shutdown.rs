//! SIGTERM and SIGINT drain in-flight requests, then the process exits 0.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::flex_handover::{CH, IS, KD, TOOL_KEY};
use crate::helpers::healthz_on;
use crate::process::{log_events, start_binary};

async fn drains_in_flight_requests_on(signal: &str) {
    // A handover that takes 800 ms upstream is in flight when the signal lands.
    let twilio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/Interactions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sid": KD}))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let mut process = start_binary(
        &[],
        &[
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef"),
            ("FLEX_API_BASE_URL", &uri),
            ("FLEX_WORKSPACE_SID", "WS0123456789abcdef0123456789abcdef"),
            ("FLEX_WORKFLOW_SID", "WW0123456789abcdef0123456789abcdef"),
            ("TOOL_API_KEY", TOOL_KEY),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(
        client
            .post(format!("{}/tools/flex-handover", process.address))
            .bearer_auth(TOOL_KEY)
            .header("X-Session-Id", format!("conversations__{IS}/{CH}"))
            .header("X-Identity", "phone:+14155550100")
            .body("{}")
            .send(),
    );
    // Signal only once the request has reached the stand-in, however long
    // a busy machine takes to get it there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while twilio
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the handover never reached Twilio"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    process.signal(signal);

    let response = match in_flight.await.unwrap() {
        Ok(r) => r,
        Err(e) => {
            std::thread::sleep(Duration::from_secs(2));
            panic!("{e:?}\nLOGS:\n{}", process.stop_and_read_logs());
        }
    };
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let (exit, logs) = tokio::task::spawn_blocking(move || {
        let exit = process.wait_for_exit(Duration::from_secs(10));
        (exit, process.stop_and_read_logs())
    })
    .await
    .unwrap();

    assert_eq!(status, 200, "{signal}: {body}");
    assert_eq!(body["interaction_sid"], KD);
    assert_eq!(
        exit,
        Some(0),
        "{signal}: the process exits 0 after draining"
    );
    let stopping = log_events(&logs)
        .find(|event| event["fields"]["message"] == "stopping: finishing requests in flight")
        .map(|event| {
            (
                event["fields"]["signal"].clone(),
                event["fields"]["in_flight"].clone(),
            )
        });
    assert_eq!(
        stopping,
        Some((format!("SIG{signal}").into(), 1.into())),
        "{logs}"
    );
}

/// With nothing in flight the process stops at once, rather than waiting
/// out the drain's limit (25 s), and exits 0.
#[tokio::test]
async fn an_idle_process_stops_at_once_and_exits_0() {
    let mut process = start_binary(&[], &[]).await;
    process.signal("TERM");
    let exit = tokio::task::spawn_blocking(move || process.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();

    assert_eq!(exit, Some(0));
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    drains_in_flight_requests_on("TERM").await;
}

#[tokio::test]
async fn sigint_lets_in_flight_requests_finish_then_exits_0() {
    drains_in_flight_requests_on("INT").await;
}

/// A connection left idle after its request (a proxy's pool) would stay
/// open for the keep-alive (620 s); actix-web closes it when the server
/// stops (since 4.14.1), so it does not hold the exit.
#[tokio::test]
async fn an_idle_connection_does_not_hold_the_exit() {
    let mut process = start_binary(&[], &[]).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", process.port))
        .await
        .unwrap();
    let answer = healthz_on(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

    process.signal("TERM");
    let exit = tokio::task::spawn_blocking(move || process.wait_for_exit(Duration::from_secs(10)))
        .await
        .unwrap();

    assert_eq!(exit, Some(0));
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(
        rest.is_empty(),
        "the connection was closed after its answer"
    );
}

/// A client that stops sending part way through a body (a proxy or network
/// that died mid-request) would hold its connection for ever: actix-web
/// bounds only the head, to 5 s. In a shutdown it held the drain for its
/// whole 25 s and then actix-web's own graceful stop for 25 s more, past
/// what Fly.io and Kubernetes wait before they kill the process. Such a
/// request is refused with 408 after 5 s and its connection closed, on the
/// voice routes (plain text) and the tool routes (JSON) alike, so the
/// process exits 0 well within the drain.
#[tokio::test]
async fn a_body_that_stops_arriving_is_refused_with_408_and_does_not_hold_the_exit() {
    let mut process = start_binary(&[], &[]).await;
    let mut streams = Vec::new();
    for path in ["/receive-call", "/tools/flex-handover"] {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", process.port))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n\r\nCallSid=CA"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        streams.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    process.signal("TERM");
    let (exit, logs) = tokio::task::spawn_blocking(move || {
        // Less than the drain, so only requests that ended early pass.
        let exit = process.wait_for_exit(Duration::from_secs(20));
        (exit, process.stop_and_read_logs())
    })
    .await
    .unwrap();
    let mut answers = Vec::new();
    for mut stream in streams {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answers.push(String::from_utf8(answer).unwrap());
    }

    assert_eq!(exit, Some(0), "{logs}");
    assert!(!logs.contains("shutdown timeout reached"), "{logs}");
    for answer in &answers {
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    }
    assert!(
        answers[0].ends_with("\r\n\r\nrequest body did not arrive within 5 s\n"),
        "{}",
        answers[0]
    );
    let json = answers[1]
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(json).unwrap(),
        json!({
            "status": "error",
            "error": "body_timeout",
            "message": "This request cannot be read: request body did not arrive within 5 s."
        })
    );
}

/// The platforms wait out the drain before they kill the process: Fly.io's
/// `kill_timeout`, and Kubernetes' grace period after the `preStop` pause.
/// A longer drain than they allow would cut off requests in flight, callers
/// among them.
#[test]
fn the_deployments_wait_longer_than_the_drain() {
    let drain = flexbridge::startup::SHUTDOWN_TIMEOUT_SECS;
    let fly_kill: u64 = include_str!("../../fly.toml")
        .lines()
        .find_map(|line| line.strip_prefix("kill_timeout = \""))
        .and_then(|rest| rest.strip_suffix("s\""))
        .and_then(|seconds| seconds.parse().ok())
        .expect("fly.toml sets kill_timeout in seconds");
    assert!(
        fly_kill > drain,
        "kill_timeout {fly_kill} s, drain {drain} s"
    );

    let deployment: serde_norway::Value =
        serde_norway::from_str(include_str!("../../deploy/kubernetes/base/deployment.yaml"))
            .expect("the deployment is YAML");
    let pod = &deployment["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(pause + drain < grace, "{pause} s + {drain} s in {grace} s");
}
