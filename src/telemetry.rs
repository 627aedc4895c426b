//! Logging: one span per request (request id, route, status, latency, call
//! SID), written as JSON lines or human-readable text.

use std::fmt;
use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FmtSpan, FormatFields, JsonVisitor, Writer};

use crate::config::LogFormat;

/// Install the global subscriber; `RUST_LOG` overrides the `info` default.
pub fn init(format: Option<LogFormat>) {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // The close event carries the request's latency (time.busy + time.idle).
        .with_span_events(FmtSpan::CLOSE);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .fmt_fields(AppendingJsonFields)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// This request's id: the caller's `X-Request-Id` when it is sane, else a new UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Whether an incoming id is safe to log and echo (no injection into logs
/// or headers, bounded length).
fn acceptable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        })
}

/// Give every request an id (honouring a sane incoming `X-Request-Id`) and
/// echo it in the response, so a caller can quote it when reporting a problem.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| acceptable_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), ToOwned::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(response)
}

/// JSON span fields that grow by appending when a field is recorded after
/// the span was created (`call_sid`, the status code…).
///
/// tracing-subscriber's own `JsonFields` parses the span's JSON into a map
/// and writes it out again on every `Span::record`: three times per request
/// here, about a fifth of all the instructions a `/receive-call` costs. A
/// field recorded twice appears twice in the stored text; the event
/// formatter reads it back through a JSON map, so the last value wins, as
/// it would have.
struct AppendingJsonFields;

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = JsonVisitor::new(&mut writer);
        fields.record(&mut visitor);
        visitor.finish()
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut more = String::new();
        let mut visitor = JsonVisitor::new(&mut more);
        fields.record(&mut visitor);
        visitor.finish()?;
        // Both are JSON objects: `{…}` and `{…}` become `{…,…}`.
        match (current.fields.len(), more.len()) {
            (0..=2, _) => current.fields = more,
            (_, 0..=2) => {}
            _ => {
                current.fields.pop();
                current.fields.push(',');
                current.fields.push_str(&more[1..]);
            }
        }
        Ok(())
    }
}

/// Builds the request span. Unlike the default, it records the path without
/// the query string: a tool key may travel as `?key=…` and must not be logged.
pub struct FlexbridgeRootSpan;

impl RootSpanBuilder for FlexbridgeRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "default".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.path = %request.path(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            request_id = %request_id,
            latency_ms = tracing::field::Empty,
            call_sid = tracing::field::Empty,
            conversation_sid = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fields_recorded_later_are_in_every_json_line_and_the_last_value_wins() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .fmt_fields(AppendingJsonFields)
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "HTTP request",
                route = "/receive-call",
                call_sid = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            span.record("call_sid", "CA1");
            span.record("status", 200);
            span.record("status", 204);
            span.in_scope(|| tracing::info!("inside"));
        });

        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 2, "the event and the span's close: {text}");
        for line in &lines {
            assert_eq!(line["span"]["route"], "/receive-call", "{line}");
            assert_eq!(line["span"]["call_sid"], "CA1", "{line}");
            assert_eq!(line["span"]["status"], 204, "{line}");
        }
    }
}
