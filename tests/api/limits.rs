use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{assert_twiml_response, spawn_studio_app};

const LIMIT: usize = 64 * 1024;

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
