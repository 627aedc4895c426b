//! A bare actix-web 4 service: every POST reads its whole body and answers
//! a fixed 212-byte TwiML document; `GET /healthz` answers `ok`. It does
//! what every webhook server must do and nothing else, so its figures are
//! the ceiling for any actix service on the same machine.
//!
//! Run: `cargo run --release -- PORT [BUSY_NS]` (bench/run does this).
//! With `BUSY_NS`, every POST also keeps the CPU busy for that many
//! nanoseconds before answering: a ceiling with a known amount of work per
//! request, which shows what a given amount of CPU per request costs in
//! throughput on this machine.

use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};

/// A `/receive-call` answer dialling watsonx's public SIP host: 212 bytes.
const TWIML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial answerOnBridge="true" referUrl="/refer-handler">"#,
    r#"<Sip>sips:+18005551234@public.voip.us-south.assistant.watson.cloud.ibm.com;secure=true</Sip>"#,
    r#"</Dial></Response>"#,
);

const _: () = assert!(TWIML.len() == 212);

async fn webhook(body: Bytes) -> HttpResponse {
    // Touch the body so reading it cannot be optimised away.
    std::hint::black_box(body.len());
    HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(TWIML)
}

/// [`webhook`] after `busy` of CPU time (spinning, not sleeping: the point
/// is to use the CPU as request handling would).
async fn busy_webhook(body: Bytes, busy: Duration) -> HttpResponse {
    let started = Instant::now();
    while started.elapsed() < busy {
        std::hint::spin_loop();
    }
    webhook(body).await
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8081);
    let busy = Duration::from_nanos(args.next().and_then(|n| n.parse().ok()).unwrap_or(0));
    HttpServer::new(move || {
        // Without BUSY_NS the handler is the plain one: no check per request.
        let post = if busy.is_zero() {
            web::post().to(webhook)
        } else {
            web::post().to(move |body: Bytes| busy_webhook(body, busy))
        };
        App::new()
            .route("/healthz", web::get().to(healthz))
            .default_service(post)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
