use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_twiml_response, healthz_on, spawn_app, spawn_studio_app};
use crate::process::{coverage_env, log_events, start_command};

const LIMIT: usize = 64 * 1024;

/// What the server sends until it closes `stream`; `Err` with what came so
/// far if it is still open after `limit`, which only stops a server that
/// waits for more from hanging the test.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> Result<String, String> {
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(limit, stream.read_to_end(&mut answer))
        .await
        .is_ok();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    if closed { Ok(answer) } else { Err(answer) }
}

/// A form body of exactly `len` bytes carrying a valid `Called`.
fn form_of_len(len: usize) -> String {
    let head = "Called=%2B18005551234&Pad=";
    format!("{head}{}", "a".repeat(len - head.len()))
}

#[tokio::test]
async fn a_body_of_exactly_64_kib_is_accepted() {
    let app = spawn_studio_app().await;

    let body = form_of_len(LIMIT).into_bytes();
    let response = app
        .post_raw("/receive-call", "application/x-www-form-urlencoded", body)
        .await;

    let twiml = assert_twiml_response(response).await;
    assert!(twiml.contains("<Dial"), "{twiml}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_413() {
    let app = spawn_studio_app().await;

    for path in ["/receive-call", "/refer-handler"] {
        let response = app
            .client
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_of_len(LIMIT + 1))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status().as_u16(), 413, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            "request body is larger than 64 KiB\n"
        );
    }
}

/// Without Content-Length (chunked), the limit is enforced while reading:
/// four 16 KiB chunks (64 KiB, the limit) are read, five are refused.
#[tokio::test]
async fn a_chunked_body_is_read_up_to_64_kib_and_refused_with_413_past_it() {
    let app = spawn_studio_app().await;
    let head = "POST /receive-call HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
    let chunk = "a".repeat(16 * 1024);
    let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
    for (chunks, refused) in [(4, false), (5, true)] {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer and close before reading them all, so
        // write errors are expected and ignored.
        for _ in 0..chunks {
            if stream.write_all(frame.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;

        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 "), "{chunks}: {answer}");
        assert_eq!(
            answer.starts_with("HTTP/1.1 413"),
            refused,
            "{chunks}: {answer}"
        );
    }
}

/// A request framed so that a proxy in front and flexbridge could disagree
/// on where its body ends, and so on where the next request starts
/// (request smuggling), is refused and its connection closed, so nothing
/// sent after it is served: Content-Length and Transfer-Encoding together,
/// and chunked bodies that RFC 9112 forbids but lenient parsers read (a
/// bare LF ending the last chunk or a trailer line, a CR LF inside a quoted
/// chunk extension; CVE-2026-134342, GHSA-9w4r-xc43-v236 and
/// CVE-2026-140392, fixed in actix-http 3.20.2, 3.21.1 and 3.21.3). The
/// same signed request framed well, a quoted extension included, is
/// answered, and so is the request after it.
#[tokio::test]
async fn a_request_whose_framing_parsers_could_read_two_ways_is_refused_and_ends_the_connection() {
    let app = spawn_studio_app().await;
    let signature = app
        .signature_for("/receive-call", &[("Called", "+18005551234")])
        .unwrap();
    let form = "Called=%2B18005551234";
    let next = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let chunked = "Transfer-Encoding: chunked";
    let end = "0\r\n\r\n";
    for (framing, last, answered) in [
        (chunked, end, true),
        (chunked, "0;note=\"a \\\"quoted\\\" value\"\r\n\r\n", true),
        (
            "Content-Length: 4\r\nTransfer-Encoding: chunked",
            end,
            false,
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 4",
            end,
            false,
        ),
        (chunked, "0\r\n\n", false),
        (chunked, "0\r\nX-Note: a\n\r\n", false),
        (chunked, "0;note=\"\r\n\r\n", false),
    ] {
        let request = format!(
            "POST /receive-call HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Twilio-Signature: {signature}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n\
             {:x}\r\n{form}\r\n{last}{next}",
            app.port,
            form.len()
        );
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();

        let answer = read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .unwrap_or_else(|answer| {
                panic!("{framing} {last:?}: the connection stayed open after {answer:?}")
            });
        // A TwiML body ends without a newline: find status lines anywhere.
        let statuses: Vec<&str> = answer
            .match_indices("HTTP/1.1 ")
            .map(|(at, _)| &answer[at..at + 12])
            .collect();
        if answered {
            assert_eq!(
                statuses,
                ["HTTP/1.1 200", "HTTP/1.1 200"],
                "{last:?}: {answer}"
            );
            assert!(answer.contains("<Dial"), "{answer}");
        } else {
            assert_eq!(statuses, ["HTTP/1.1 400"], "{framing} {last:?}: {answer}");
        }
    }
}

/// A proxy keeps its idle connections to flexbridge open (60 s for AWS's
/// ALB and nginx, 600 s for Google Cloud's) and sends a POST on one when
/// it likes; if flexbridge closed it at that moment the POST would be lost.
/// So an idle connection stays open well past actix's own 5 s, and
/// `KEEP_ALIVE_SECONDS` sets how long.
#[tokio::test]
async fn an_idle_connection_stays_open_for_keep_alive_seconds() {
    let idle_for = |keep_alive: Option<&'static str>| async move {
        let env: Vec<(&str, &str)> = keep_alive
            .map(|seconds| ("KEEP_ALIVE_SECONDS", seconds))
            .into_iter()
            .collect();
        let app = spawn_app(&env).await;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .unwrap();
        let first = healthz_on(&mut stream).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        (first, healthz_on(&mut stream).await)
    };
    let (default, short) = tokio::join!(idle_for(None), idle_for(Some("2")));

    for answer in [&default.0, &default.1, &short.0] {
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(!answer.contains("connection: close"), "{answer}");
    }
    assert_eq!(short.1, "", "closed after 2 s idle");
}

/// The 5 s actix-web gives a request head holds on a kept-alive connection
/// too: a second request whose head stops part way is answered 408 and
/// its connection closed, rather than held for the 620 s keep-alive (as
/// actix-http did before 3.21.2, GHSA-54pm-2wm5-hpmg).
#[tokio::test]
async fn a_head_that_stops_arriving_on_a_kept_alive_connection_is_refused_with_408() {
    let app = spawn_app(&[]).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let first = healthz_on(&mut stream).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(30))
        .await
        .unwrap_or_else(|answer| panic!("the connection stayed open after {answer:?}"));

    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
}

/// containerd 2 and systemd start a service with 1,024 open files at most
/// (the soft limit) though it may raise that to the hard limit itself, and
/// Kubernetes has no setting for it. A burst of 1,000 handovers needs more
/// (a connection in for each, and those out to Twilio), so the binary
/// raises the soft limit to the hard one when it starts, as Go's runtime does.
#[tokio::test]
async fn the_binary_raises_its_open_files_limit_to_the_hard_limit() {
    let mut shell = std::process::Command::new("bash");
    shell.env_clear().envs(coverage_env()).args([
        "-c",
        "ulimit -Sn 128 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_flexbridge"),
    ]);

    let process = start_command(shell, &[], &[]).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", process.pid())).unwrap();
    let logs = process.stop_and_read_logs();

    let open_files: Vec<&str> = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect();
    let (soft, hard) = (open_files[0], open_files[1]);
    assert_ne!(hard, "128", "a hard limit of 128 leaves nothing to raise");
    assert_eq!(soft, hard, "{limits}");
    let logged = log_events(&logs)
        .find(|line| line["fields"]["message"] == "open files limit")
        .unwrap_or_else(|| panic!("no line for the limit in\n{logs}"));
    assert_eq!(logged["fields"]["limit"].to_string(), hard, "{logged}");
}
