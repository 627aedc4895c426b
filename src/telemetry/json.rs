//! JSON log lines in the shape tracing-subscriber's JSON format gives them
//! (`timestamp`, `level`, `fields`, `target`, `span`, `spans`), one line per
//! event and one when a span closes, written with serde_json.
//!
//! tracing-subscriber's own JSON layer keeps a span's fields as JSON text and
//! parses that text back into a map for every line it writes; here they are
//! kept as values from the moment they are recorded, and a field recorded
//! again simply replaces its value.

use std::io::Write as _;
use std::time::Instant;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{Extensions, LookupSpan, SpanRef};

/// Writes every event, and every span when it closes, as one JSON line.
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    /// A layer writing to `make_writer`.
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// Fields in the order first recorded; each name once, with its last value.
#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn set(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field.name(), format!("{value:?}").into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: serde_json makes them null.
        self.set(field.name(), value.into());
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// What a span keeps for its lines.
struct SpanData {
    fields: Fields,
    /// When the span was created: its close line says how long it lasted.
    opened: Instant,
}

/// A span as a line shows it: its fields and its `name`.
struct SpanJson<'a>(&'a Fields, &'static str);

impl Serialize for SpanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.0.len() + 1))?;
        for (name, value) in &self.0.0 {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry("name", self.1)?;
        map.end()
    }
}

/// One log line.
#[derive(serde::Serialize)]
struct Line<'a, F> {
    timestamp: Timestamp,
    level: &'static str,
    fields: F,
    target: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    span: Option<SpanJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spans: Option<Vec<SpanJson<'a>>>,
}

/// The fields of a span's close line.
#[derive(serde::Serialize)]
struct Close {
    message: &'static str,
    elapsed_ms: f64,
}

/// Now, in RFC 3339 (UTC), formatted into the line without an allocation.
struct Timestamp(time::OffsetDateTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `2026-12-04T20:11:29.123456789Z` is 30 bytes.
        let mut text = [0u8; 40];
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        // The cursor says how much was written: in time 0.3.49 to 0.3.55
        // the count `format_into` returns for RFC 3339 is too small.
        let written = match self
            .0
            .format_into(&mut cursor, &time::format_description::well_known::Rfc3339)
        {
            Ok(_) => usize::try_from(cursor.position()).unwrap_or(0),
            Err(_) => 0,
        };
        serializer.serialize_str(std::str::from_utf8(&text[..written]).unwrap_or_default())
    }
}

/// A span as its line shows it, from its extensions.
fn span_json<'a, S>(span: &SpanRef<'_, S>, extensions: &'a Extensions<'_>) -> Option<SpanJson<'a>>
where
    S: for<'b> LookupSpan<'b>,
{
    let data = extensions.get::<SpanData>()?;
    Some(SpanJson(&data.fields, span.name()))
}

impl<W> JsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Write the line for `fields` in `span` (if any).
    fn write<S>(
        &self,
        meta: &tracing::Metadata<'_>,
        fields: impl Serialize,
        span: Option<SpanRef<'_, S>>,
    ) where
        S: for<'a> LookupSpan<'a>,
    {
        // The extensions are borrowed for as long as the line borrows them;
        // a span without ancestors (a request's) needs no list at all.
        let extensions = span.as_ref().map(SpanRef::extensions);
        let ancestors: Vec<_> = span
            .iter()
            .filter_map(|s| s.parent())
            .flat_map(|parent| parent.scope().from_root())
            .collect();
        let ancestor_extensions: Vec<_> = ancestors.iter().map(SpanRef::extensions).collect();
        let current = span
            .as_ref()
            .zip(extensions.as_ref())
            .and_then(|(s, e)| span_json(s, e));
        let line = Line {
            timestamp: Timestamp(time::OffsetDateTime::now_utc()),
            level: meta.level().as_str(),
            fields,
            target: meta.target(),
            spans: current.is_some().then(|| {
                ancestors
                    .iter()
                    .zip(&ancestor_extensions)
                    .filter_map(|(s, e)| span_json(s, e))
                    .collect()
            }),
            span: current,
        };
        // A request's line is about 450 bytes: one allocation, no growing.
        let mut bytes = Vec::with_capacity(512);
        if serde_json::to_writer(&mut bytes, &line).is_err() {
            return;
        }
        bytes.push(b'\n');
        if let Err(e) = self.make_writer.make_writer_for(meta).write_all(&bytes) {
            eprintln!("flexbridge: cannot write a log line: {e}");
        }
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields(Vec::with_capacity(attrs.metadata().fields().len()));
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanData {
            fields,
            opened: Instant::now(),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
            values.record(&mut data.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let opened = span.extensions().get::<SpanData>().map(|d| d.opened);
        let fields = Close {
            message: "close",
            elapsed_ms: opened.map_or(0.0, |at| super::millis(at.elapsed())),
        };
        self.write(span.metadata(), fields, Some(span));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(Vec::with_capacity(event.metadata().fields().len()));
        event.record(&mut fields);
        // The span an event belongs to: its explicit parent, else the current one.
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        self.write(event.metadata(), &fields, span);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::super::{Captured, millis};
    use super::*;

    /// Run `body` under the JSON layer and parse every line written.
    fn lines_of(body: impl FnOnce()) -> Vec<Value> {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, body);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// Whole microseconds, so no float noise reaches the line.
    #[test]
    fn milliseconds_are_written_to_the_microsecond() {
        for (duration, text) in [
            (Duration::from_nanos(55_863), "0.055"),
            (Duration::from_nanos(999), "0.0"),
            (Duration::from_micros(1_234_567), "1234.567"),
            (Duration::from_millis(20), "20.0"),
        ] {
            assert_eq!(serde_json::to_string(&millis(duration)).unwrap(), text);
        }
    }

    #[test]
    fn fields_recorded_later_are_in_every_line_once_with_the_last_value() {
        let lines = lines_of(|| {
            let span = tracing::info_span!(
                "HTTP request",
                route = "/receive-call",
                status = tracing::field::Empty,
                call_sid = tracing::field::Empty,
            );
            span.record("status", 200);
            span.record("status", 404);
            span.record("call_sid", "CA1");
            let _entered = span.enter();
            tracing::info!(answered = true, attempts = 2_usize, "done \"quoted\"");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let expected_span = serde_json::json!({
            "route": "/receive-call", "status": 404, "call_sid": "CA1", "name": "HTTP request"
        });
        let event = &lines[0];
        assert_eq!(event["level"], "INFO");
        assert_eq!(
            event["fields"],
            serde_json::json!({"message": "done \"quoted\"", "answered": true, "attempts": 2})
        );
        assert_eq!(event["span"], expected_span);
        assert_eq!(event["spans"], serde_json::json!([]));
        let close = &lines[1];
        assert_eq!(close["fields"]["message"], "close");
        assert!(close["fields"]["elapsed_ms"].as_f64().is_some(), "{close}");
        assert_eq!(close["span"], expected_span);
        assert!(
            close["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() >= 20),
            "{close}"
        );
    }

    #[test]
    fn a_close_line_names_the_span_and_its_ancestors_and_outside_spans_there_are_none() {
        let lines = lines_of(|| {
            tracing::warn!(f = 1.5, nan = f64::NAN, "outside");
            let outer = tracing::info_span!("outer", a = 1);
            let _outer = outer.enter();
            let middle = tracing::info_span!("middle");
            let _middle = middle.enter();
            let inner = tracing::info_span!("upstream", upstream = "twilio");
            drop(inner);
        });
        assert_eq!(lines[0]["fields"]["f"], 1.5);
        assert_eq!(lines[0]["fields"]["nan"], Value::Null);
        assert!(lines[0].get("span").is_none() && lines[0].get("spans").is_none());
        let close = &lines[1];
        assert_eq!(close["span"]["name"], "upstream");
        assert_eq!(close["span"]["upstream"], "twilio");
        assert_eq!(
            close["spans"],
            serde_json::json!([{"a": 1, "name": "outer"}, {"name": "middle"}])
        );
    }
}
