//! N handovers at the same instant, each for a different conversation: open
//! N connections, wait until all are open, then send every request at once
//! and read every answer. Prints how many answered 200, the others by
//! status or error, and latency percentiles.
//!
//! `handover-burst PORT PATH N SIGNATURE BODY_FILE` sends `POST PATH` with
//! the JSON body of BODY_FILE, `X-Twilio-Signature: SIGNATURE` (PATH carries
//! the matching `bodySHA256`), and a distinct `X-Session-Id` per request.
//! With a sixth argument `session-in-body`, the session and identity also go
//! in the JSON body (for a runtime that does not pass headers to functions).
//! Output, one line: `sent N ok N failed N statuses {…} p50 X ms p99 X ms
//! max X ms wall X ms`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Longest any one request may take before it counts as failed.
const GIVE_UP: Duration = Duration::from_secs(30);

async fn one(port: u16, request: Vec<u8>, start: Arc<Barrier>) -> (Result<u16, String>, Duration) {
    let connected = TcpStream::connect(("127.0.0.1", port)).await;
    start.wait().await;
    let started = Instant::now();
    let mut stream = match connected {
        Ok(stream) => stream,
        Err(e) => return (Err(format!("connect: {e}")), started.elapsed()),
    };
    let exchange = async {
        stream.write_all(&request).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let result = match tokio::time::timeout(GIVE_UP, exchange).await {
        Err(_) => Err("timeout".to_owned()),
        Ok(Err(e)) => Err(format!("io: {}", e.kind())),
        Ok(Ok(answer)) => std::str::from_utf8(&answer[..answer.len().min(12)])
            .ok()
            .and_then(|head| head.strip_prefix("HTTP/1.1 "))
            .and_then(|status| status.trim().parse().ok())
            .ok_or_else(|| "not HTTP".to_owned()),
    };
    (result, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 && !(args.len() == 7 && args[6] == "session-in-body") {
        eprintln!("usage: handover-burst PORT PATH N SIGNATURE BODY_FILE [session-in-body]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT is a number");
    let path = &args[2];
    let n: usize = args[3].parse().expect("N is a number");
    let signature = &args[4];
    let fixed_body = std::fs::read(&args[5]).expect("BODY_FILE is readable");
    let session_in_body = args.len() == 7;
    let start = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let session =
                format!("webhook:conversations__IS0123456789abcdef0123456789abcdef/CH{i:032x}");
            let identity = "phone:+14155550100";
            let body = if session_in_body {
                format!(r#"{{"SessionId":"{session}","Identity":"{identity}"}}"#).into_bytes()
            } else {
                fixed_body.clone()
            };
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nX-Twilio-Signature: {signature}\r\n\
                 X-Session-Id: {session}\r\nX-Identity: {identity}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            tokio::spawn(one(port, request, start.clone()))
        })
        .collect();
    let wall = Instant::now();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(n);
    for task in tasks {
        let (result, elapsed) = task.await.expect("a request task finishes");
        let key = match result {
            Ok(status) => status.to_string(),
            Err(e) => e,
        };
        *statuses.entry(key).or_default() += 1;
        latencies.push(elapsed);
    }
    let wall = wall.elapsed();
    latencies.sort();
    let ok = statuses.get("200").copied().unwrap_or(0);
    println!(
        "sent {n} ok {ok} failed {} statuses {statuses:?} p50 {:.1} ms p99 {:.1} ms max {:.1} ms wall {:.0} ms",
        n - ok,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        wall.as_secs_f64() * 1e3,
    );
}
