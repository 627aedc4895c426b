//! Logging: one span per request (request id, route, status, latency, call
//! SID), written as JSON lines or human-readable text by a background thread.

mod batch;
mod json;

use std::io::{IsTerminal, Stdout};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;
pub use batch::{BatchWriter, FlushGuard};
pub use json::JsonLayer;

/// Install the global subscriber; `RUST_LOG` overrides the `info` default.
///
/// Lines are formatted on the request's thread and written to stdout by a
/// background thread, in batches (see [`BatchWriter`]). Keep the returned
/// guard until exit: dropping it writes out what is buffered.
pub fn init(format: Option<LogFormat>) -> Option<FlushGuard<Stdout>> {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = match BatchWriter::start(std::io::stdout()) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("flexbridge: cannot start the log writer thread: {e}");
            return None;
        }
    };
    let installed = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(JsonLayer::new(writer))
            .try_init()
            .is_ok(),
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            // The close event carries the request's latency (time.busy + time.idle).
            .with_span_events(FmtSpan::CLOSE)
            .try_init()
            .is_ok(),
    };
    // A second init (tests) keeps the first subscriber; that is fine.
    installed.then_some(guard)
}

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Whether an incoming id is safe to log and echo (no injection into logs
/// or headers, bounded length).
fn acceptable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        })
}

/// Echo the request's id in the response, so a caller can quote it when
/// reporting a problem.
pub fn echo_request_id<B>(response: &mut ServiceResponse<B>) {
    let value = response
        .request()
        .extensions()
        .get::<Started>()
        .and_then(|started| HeaderValue::from_str(&started.request_id).ok());
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

/// What the start of a request decided, for its end: the metrics, the
/// span's latency and the response's `X-Request-Id`.
struct Started {
    at: Instant,
    route: &'static str,
    /// The caller's `X-Request-Id` when it is sane, else a new UUID.
    request_id: String,
}

/// The path of the route that serves a request, put in its extensions
/// before its span starts: the label of its logs and metrics (never the raw
/// path, which would make one series per probe).
pub struct RouteLabel(pub &'static str);

/// Builds the request span, and records the end of every request: status
/// and latency on the span, and the request metrics.
///
/// Unlike the default span, it records the path without the query string:
/// a tool key may travel as `?key=…` and must not be logged.
pub struct FlexbridgeRootSpan;

impl RootSpanBuilder for FlexbridgeRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .extensions()
            .get::<RouteLabel>()
            .map_or("unmatched", |label| label.0);
        // A sane incoming id is kept; otherwise the id tracing-actix-web
        // has just generated for this request.
        let id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|id| acceptable_request_id(id))
            .map(ToOwned::to_owned)
            .or_else(|| {
                request
                    .extensions()
                    .get::<tracing_actix_web::RequestId>()
                    .map(ToString::to_string)
            })
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let span = tracing::info_span!(
            "HTTP request",
            http.method = request.method().as_str(),
            http.route = route,
            http.path = request.path(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            request_id = id.as_str(),
            signed_with = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
            call_sid = tracing::field::Empty,
            conversation_sid = tracing::field::Empty,
        );
        // The clock starts after the span opens, so that the latency lies
        // within the span's own time and the two can be compared exactly.
        request.extensions_mut().insert(Started {
            at: Instant::now(),
            route,
            request_id: id,
        });
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // What tracing-actix-web's default builder records, plus the
        // latency and the request's metrics.
        let (latency_ms, status, error) = match outcome {
            Ok(response) => {
                let request = response.request();
                let latency_ms = request.extensions().get::<Started>().map(|started| {
                    let elapsed = started.at.elapsed();
                    crate::metrics::http_request(
                        started.route,
                        request.method(),
                        response.status().as_u16(),
                        elapsed,
                    );
                    millis(elapsed)
                });
                let error = response.response().error().map(|e| e.as_response_error());
                (latency_ms, response.status(), error)
            }
            Err(error) => {
                let error = error.as_response_error();
                crate::metrics::http_request_failed(error.status_code().as_u16());
                (None, error.status_code(), Some(error))
            }
        };
        let status_code = i32::from(status.as_u16());
        match error {
            None => {
                tracing::record_all!(
                    span,
                    latency_ms = latency_ms,
                    http.status_code = status_code,
                    otel.status_code = "OK",
                );
            }
            Some(error) => {
                // Formatted before recording, as the default builder does
                // (tokio-rs/tracing#1565): an error's Display may log.
                let message = error.to_string();
                let details = format!("{error:?}");
                tracing::record_all!(
                    span,
                    latency_ms = latency_ms,
                    exception.message = message.as_str(),
                    exception.details = details.as_str(),
                    http.status_code = status_code,
                    otel.status_code = if status.is_client_error() {
                        "OK"
                    } else {
                        "ERROR"
                    },
                );
            }
        }
    }
}

/// A duration in milliseconds, cut to the microsecond, so a log line says
/// `0.055` where the exact float would say `0.055862999999999996`.
fn millis(duration: Duration) -> f64 {
    // Exact below 2^53 microseconds (285 years).
    duration.as_micros() as f64 / 1000.0
}

/// A writer keeping what is written: tests read the log lines from it.
#[cfg(test)]
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use actix_web::{App, HttpResponse, test, web};
    use tracing_actix_web::TracingLogger;

    use super::*;

    /// A handler answering every request the same way.
    type Handler = fn() -> Result<HttpResponse, Error>;

    /// The request span of a GET to `/` answered by `handler`, as logged.
    async fn span_of(handler: Handler) -> serde_json::Value {
        close_of(handler).await["span"].clone()
    }

    /// The line logged when that span closed.
    async fn close_of(handler: Handler) -> serde_json::Value {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new(move || writer.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(TracingLogger::<FlexbridgeRootSpan>::new())
                .route("/", web::get().to(move || async move { handler() })),
        )
        .await;
        test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|line| line["fields"]["message"] == "close")
            .unwrap_or_else(|| panic!("no close line: {text}"))
    }

    #[actix_web::test]
    async fn a_success_records_status_outcome_and_latency() {
        let span = span_of(|| Ok(HttpResponse::Ok().finish())).await;
        assert_eq!(span["http.status_code"], 200, "{span}");
        assert_eq!(span["otel.status_code"], "OK", "{span}");
        assert!(span["latency_ms"].as_f64().is_some(), "{span}");
        assert!(span.get("exception.message").is_none(), "{span}");
    }

    /// `latency_ms` is the request's time in milliseconds: at least the
    /// handler's 20 ms sleep, and within the time the span itself was open.
    /// Both bounds hold however slow the machine is.
    #[actix_web::test]
    async fn the_latency_is_in_milliseconds() {
        let close = close_of(|| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(HttpResponse::Ok().finish())
        })
        .await;
        let latency = close["span"]["latency_ms"].as_f64().unwrap_or(-1.0);
        let elapsed = close["fields"]["elapsed_ms"].as_f64().unwrap_or(-1.0);
        assert!(latency >= 20.0, "{close}");
        assert!(latency <= elapsed, "{close}");
        for value in [&close["span"]["latency_ms"], &close["fields"]["elapsed_ms"]] {
            let text = value.to_string();
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 3, "{close}");
        }
    }

    #[actix_web::test]
    async fn an_error_records_its_message_and_a_server_error_its_outcome() {
        let cases: [(Handler, u16, &str); 2] = [
            (
                || Err(actix_web::error::ErrorBadGateway("upstream down")),
                502,
                "ERROR",
            ),
            (
                || Err(actix_web::error::ErrorNotFound("upstream down")),
                404,
                "OK",
            ),
        ];
        for (handler, status, outcome) in cases {
            let error = handler().unwrap_err();
            let details = format!("{:?}", error.as_response_error());
            let span = span_of(handler).await;
            assert_eq!(span["http.status_code"], status, "{span}");
            assert_eq!(span["otel.status_code"], outcome, "{span}");
            assert_eq!(span["exception.message"], "upstream down", "{span}");
            assert_eq!(span["exception.details"], details.as_str(), "{span}");
            assert!(span["latency_ms"].as_f64().is_some(), "{span}");
        }
    }

    /// An error no handler turned into a response leaves no request to
    /// label: it is still counted, as route `unmatched` and method `other`.
    #[actix_web::test]
    async fn an_error_that_is_no_response_is_counted_with_its_status() {
        let handle = crate::metrics::install().expect("the recorder");
        let app = test::init_service(
            App::new()
                // Inside the logger (the last `wrap` is the outermost).
                .wrap_fn(|_, _| async {
                    Err::<ServiceResponse, _>(
                        actix_web::error::InternalError::new(
                            "no answer",
                            actix_web::http::StatusCode::INSUFFICIENT_STORAGE,
                        )
                        .into(),
                    )
                })
                .wrap(TracingLogger::<FlexbridgeRootSpan>::new())
                .route("/", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let answer =
            test::try_call_service(&app, test::TestRequest::get().uri("/").to_request()).await;

        assert!(answer.is_err());
        let series =
            "flexbridge_http_requests_total{route=\"unmatched\",method=\"other\",status=\"507\"} 1";
        let metrics = handle.render();
        assert!(metrics.lines().any(|line| line == series), "{metrics}");
    }
}
