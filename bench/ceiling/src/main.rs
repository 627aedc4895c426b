//! A bare actix-web 4 service: every POST reads its whole body and answers
//! a fixed 212-byte TwiML document; `GET /healthz` answers `ok`. It does
//! what every webhook server must do and nothing else, so its figures are
//! the ceiling for any actix service on the same machine.
//!
//! Run: `cargo run --release -- PORT` (bench/run does this).
//!
//! `PORT verify AUTH_TOKEN ORIGIN`: every POST is first checked for Twilio's
//! signature (for `ORIGIN` + the request's path and query), done the
//! textbook way and answered 403 when it does not match. The one piece of
//! work the specification requires of every webhook, alone: what it costs
//! any correct server here.

use std::borrow::Cow;

use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

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

/// What checking a request's `X-Twilio-Signature` needs.
struct Verify {
    /// The HMAC keyed with the auth token, cloned for each request.
    key: Hmac<Sha1>,
    /// The public origin Twilio signs for.
    origin: String,
}

/// [`webhook`] after Twilio's signature check: HMAC-SHA1 over the URL and
/// every form parameter sorted by name (then value), each name followed by
/// its value, Base64 and compared in constant time.
async fn verified_webhook(
    request: HttpRequest,
    body: Bytes,
    verify: web::Data<Verify>,
) -> HttpResponse {
    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = url::form_urlencoded::parse(&body).collect();
    pairs.sort();
    let mut mac = verify.key.clone();
    mac.update(verify.origin.as_bytes());
    mac.update(
        request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .as_bytes(),
    );
    for (name, value) in &pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let given = request
        .headers()
        .get("x-twilio-signature")
        .map_or(&b""[..], |value| value.as_bytes());
    if bool::from(expected.as_bytes().ct_eq(given)) {
        webhook(body).await
    } else {
        HttpResponse::Forbidden().body("invalid X-Twilio-Signature\n")
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.first().and_then(|p| p.parse().ok()).unwrap_or(8081);
    let verify = match args.get(1..) {
        Some([mode, token, origin]) if mode == "verify" => Some(web::Data::new(Verify {
            key: Hmac::new_from_slice(token.as_bytes()).map_err(std::io::Error::other)?,
            origin: origin.clone(),
        })),
        _ => None,
    };
    HttpServer::new(move || {
        // Without verify the handler is the plain one: no check per request.
        let post = if let Some(verify) = &verify {
            let verify = verify.clone();
            web::post().to(move |request, body| verified_webhook(request, body, verify.clone()))
        } else {
            web::post().to(webhook)
        };
        App::new()
            .route("/healthz", web::get().to(healthz))
            .default_service(post)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
