//! A local stand-in for the Flex and Twilio REST APIs that answers every
//! handover after a fixed delay (the time Twilio takes), and counts the
//! connections its clients open: how many were accepted, how many are open
//! now, and the most that were open at once.
//!
//! `flex-stand-in PORT DELAY_MS` serves the APIs on PORT and, on PORT + 1,
//! `GET /stats` (the counters as JSON) and `POST /stats/reset` (zero them
//! between benchmark phases; connections still open stay counted as open).
//! Only connections to PORT are counted. Listens on 127.0.0.1 only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpResponse, HttpServer, web};

static ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static OPEN: AtomicUsize = AtomicUsize::new(0);
static PEAK_OPEN: AtomicUsize = AtomicUsize::new(0);
static REQUESTS: AtomicUsize = AtomicUsize::new(0);

/// Lives as long as its connection: dropping it counts the close.
struct Connection;

impl Drop for Connection {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn created(delay: web::Data<Duration>, path: web::Path<String>) -> HttpResponse {
    REQUESTS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(**delay).await;
    let prefix = if path.starts_with("2010-04-01") {
        "CA"
    } else {
        "KD"
    };
    let sid = format!("{prefix}{:032x}", REQUESTS.load(Ordering::SeqCst));
    HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(r#"{{"sid":"{sid}","status":"accepted"}}"#))
}

async fn stats() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(
            r#"{{"accepted":{},"open":{},"peak_open":{},"requests":{}}}"#,
            ACCEPTED.load(Ordering::SeqCst),
            OPEN.load(Ordering::SeqCst),
            PEAK_OPEN.load(Ordering::SeqCst),
            REQUESTS.load(Ordering::SeqCst),
        ))
}

async fn reset() -> HttpResponse {
    ACCEPTED.store(0, Ordering::SeqCst);
    PEAK_OPEN.store(OPEN.load(Ordering::SeqCst), Ordering::SeqCst);
    REQUESTS.store(0, Ordering::SeqCst);
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(9090);
    let delay_ms: u64 = args.next().and_then(|d| d.parse().ok()).unwrap_or(50);
    let delay = web::Data::new(Duration::from_millis(delay_ms));
    HttpServer::new(move || {
        App::new()
            .app_data(delay.clone())
            .route("/stats", web::get().to(stats))
            .route("/stats/reset", web::post().to(reset))
            .route("/{path:.*}", web::post().to(created))
    })
    .on_connect(move |connection, extensions| {
        let to_api = connection
            .downcast_ref::<TcpStream>()
            .and_then(|stream| stream.local_addr().ok())
            .is_some_and(|addr| addr.port() == port);
        if !to_api {
            return;
        }
        ACCEPTED.fetch_add(1, Ordering::SeqCst);
        let open = OPEN.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK_OPEN.fetch_max(open, Ordering::SeqCst);
        extensions.insert(Connection);
    })
    .backlog(4096)
    .bind(("127.0.0.1", port))?
    .bind(("127.0.0.1", port + 1))?
    .run()
    .await
}
