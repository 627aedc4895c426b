//! A bare actix-web 4 service: every POST reads its whole body and answers
//! a fixed 212-byte TwiML document; `GET /healthz` answers `ok`. It does
//! what every webhook server must do and nothing else, so its figures are
//! the ceiling for any actix service on the same machine.
//!
//! Run: `cargo run --release -- PORT` (bench/run does this).

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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    HttpServer::new(|| {
        App::new()
            .route("/healthz", web::get().to(healthz))
            .default_service(web::post().to(webhook))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
