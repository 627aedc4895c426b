//! JSON log lines written straight into the output buffer.
//!
//! The lines have the shape tracing-subscriber's JSON format gives them
//! (`timestamp`, `level`, `fields`, `target`, `span`, `spans`), but no value
//! goes through a `serde_json::Value` or map on the way: a span's fields are
//! kept as JSON text from the moment they are recorded and copied into each
//! line as they are. tracing-subscriber's formatter re-parses that text for
//! every line; at one line per request that was the largest single cost of
//! answering a webhook.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Fields as the inside of a JSON object: `"name":value,"name":value`.
///
/// A span stores its fields in this form; a field recorded again later
/// replaces its earlier value, so every key appears once and a line copies
/// the text as it is.
pub struct JsonFields;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = JsonVisitor::new(&mut writer);
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let before = current.fields.len();
        let mut visitor = JsonVisitor::new(&mut current.fields);
        visitor.first = before == 0;
        fields.record(&mut visitor);
        visitor.result?;
        // Rare: a field recorded a second time. The new members are at the
        // end; an earlier member with the same key is dropped.
        if before > 0 && repeats_a_key(&current.fields, before) {
            current.fields = without_repeated_keys(&current.fields);
        }
        Ok(())
    }
}

/// Whether a member from byte `from` on has a key that an earlier member has.
///
/// `"name":` can only occur where a member starts: inside a string value
/// every `"` is escaped. So a plain substring search finds earlier keys.
fn repeats_a_key(fields: &str, from: usize) -> bool {
    let (earlier, added) = fields.split_at(from);
    let earlier = earlier.as_bytes();
    members(added.strip_prefix(',').unwrap_or(added)).any(|(key, _)| {
        memchr::memmem::find_iter(earlier, key.as_bytes())
            .any(|at| earlier.get(at + key.len()) == Some(&b':'))
    })
}

/// The fields text with each key once, at its last value.
fn without_repeated_keys(fields: &str) -> String {
    let all: Vec<(&str, &str)> = members(fields).collect();
    let mut kept = String::with_capacity(fields.len());
    for (i, (key, member)) in all.iter().enumerate() {
        if !all[i + 1..].iter().any(|(later, _)| later == key) {
            if !kept.is_empty() {
                kept.push(',');
            }
            kept.push_str(member);
        }
    }
    kept
}

/// The members of fields text [`JsonFields`] wrote: `(key, member)` pairs,
/// where the key is the quoted name and the member the whole `"key":value`.
fn members(fields: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = fields;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let key_end = string_end(rest, 0);
        let end = value_end(rest, key_end + 1);
        let (member, after) = rest.split_at(end);
        rest = after.strip_prefix(',').unwrap_or(after);
        Some((&member[..key_end], member))
    })
}

/// Where the JSON string starting at `from` (a `"`) ends: after its closing quote.
fn string_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    text.len()
}

/// Where the value starting at `from` ends: after a string's closing quote,
/// or at the next `,` for numbers, booleans and `null`.
fn value_end(fields: &str, from: usize) -> usize {
    match fields.as_bytes().get(from) {
        Some(b'"') => string_end(fields, from),
        _ => fields[from.min(fields.len())..]
            .find(',')
            .map_or(fields.len(), |i| from + i),
    }
}

/// Writes each field as `"name":value`, comma-separated.
struct JsonVisitor<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: fmt::Write> JsonVisitor<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Self {
            out,
            first: true,
            result: Ok(()),
        }
    }

    /// Write the separator and the key, and remember the name.
    fn key(&mut self, field: &Field) -> fmt::Result {
        if !self.first {
            self.out.write_char(',')?;
        }
        self.first = false;
        self.out.write_char('"')?;
        escape_into(self.out, field.name())?;
        self.out.write_str("\":")
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.out));
        }
    }
}

impl<W: fmt::Write> Visit for JsonVisitor<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| {
            out.write_char('"')?;
            escape_into(out, value)?;
            out.write_char('"')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaping(out), "{value:?}")?;
            out.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        self.member(field, |out| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                out.write_str("null")
            }
        });
    }
}

/// Bytes a JSON string cannot carry as they are: controls, `"` and `\\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Write `text` as the inside of a JSON string.
fn escape_into<W: fmt::Write + ?Sized>(out: &mut W, text: &str) -> fmt::Result {
    let bytes = text.as_bytes();
    let mut plain = 0;
    while let Some(offset) = bytes[plain..]
        .iter()
        .position(|&b| NEEDS_ESCAPE[usize::from(b)])
    {
        let at = plain + offset;
        out.write_str(&text[plain..at])?;
        match bytes[at] {
            b'"' => out.write_str("\\\"")?,
            b'\\' => out.write_str("\\\\")?,
            b'\n' => out.write_str("\\n")?,
            b'\r' => out.write_str("\\r")?,
            b'\t' => out.write_str("\\t")?,
            control => write!(out, "\\u{control:04x}")?,
        }
        plain = at + 1;
    }
    out.write_str(&text[plain..])
}

/// A `fmt::Write` that escapes what passes through it, for `Debug` values.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text)
    }
}

/// One JSON object per event, with the event's span and its ancestors.
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, SystemTime::now())?;
        write!(writer, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut visitor = JsonVisitor::new(&mut writer);
        event.record(&mut visitor);
        visitor.result?;
        writer.write_str("},\"target\":\"")?;
        escape_into(&mut writer, meta.target())?;
        writer.write_char('"')?;
        // The span an event belongs to: its explicit parent (a span's close
        // event names the span closing), else the current one.
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":")?;
            write_span(&mut writer, &span)?;
            writer.write_str(",\"spans\":[")?;
            if let Some(parent) = span.parent() {
                let mut first = true;
                for ancestor in parent.scope().from_root() {
                    if !first {
                        writer.write_char(',')?;
                    }
                    first = false;
                    write_span(&mut writer, &ancestor)?;
                }
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

thread_local! {
    /// The second last formatted on this thread, and its text up to the
    /// fraction: `YYYY-MM-DDTHH:MM:SS.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `now` in RFC 3339, UTC, with microseconds (`2026-11-21T12:06:32.567451Z`,
/// as tracing-subscriber writes it). The date and time of day change once a
/// second, so they are formatted once a second per thread.
fn write_timestamp(out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != seconds {
            let utc = time::OffsetDateTime::from(UNIX_EPOCH + Duration::from_secs(seconds));
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                utc.year(),
                u8::from(utc.month()),
                utc.day(),
                utc.hour(),
                utc.minute(),
                utc.second()
            )?;
            *second = seconds;
        }
        out.write_str(text)?;
        write!(out, "{:06}Z", since_epoch.subsec_micros())
    })
}

/// `{fields…,"name":"span name"}`.
fn write_span<S>(
    writer: &mut Writer<'_>,
    span: &tracing_subscriber::registry::SpanRef<'_, S>,
) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    writer.write_char('{')?;
    if let Some(fields) = span.extensions().get::<FormattedFields<JsonFields>>() {
        if !fields.fields.is_empty() {
            writer.write_str(&fields.fields)?;
            writer.write_char(',')?;
        }
    }
    writer.write_str("\"name\":\"")?;
    escape_into(writer, span.name())?;
    writer.write_str("\"}")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::format::FmtSpan;

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

    /// Run `body` under the JSON formatter and parse every line written.
    fn lines_of(body: impl FnOnce()) -> Vec<serde_json::Value> {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_span_events(FmtSpan::CLOSE)
            .fmt_fields(JsonFields)
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    #[test]
    fn fields_recorded_later_are_in_every_line_once_with_the_last_value() {
        let lines = lines_of(|| {
            let span = tracing::info_span!(
                "HTTP request",
                route = "/receive-call",
                call_sid = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            span.record("call_sid", "CA1");
            span.record("status", 200);
            span.record("status", 204);
            span.record("route", "/refer-handler");
            span.in_scope(|| tracing::info!(n = 1, "inside"));
        });
        assert_eq!(lines.len(), 2, "the event and the span's close: {lines:?}");
        for line in &lines {
            let span = line["span"].as_object().unwrap();
            assert_eq!(span.len(), 4, "each key once: {line}");
            assert_eq!(span["route"], "/refer-handler", "{line}");
            assert_eq!(span["call_sid"], "CA1", "{line}");
            assert_eq!(span["status"], 204, "{line}");
            assert_eq!(span["name"], "HTTP request", "{line}");
        }
        assert_eq!(lines[0]["fields"]["message"], "inside");
        assert_eq!(lines[0]["fields"]["n"], 1);
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[1]["fields"]["message"], "close");
        assert!(lines[1]["fields"]["time.busy"].is_string());
    }

    #[test]
    fn every_kind_of_value_is_valid_json_with_the_value_it_was_given() {
        let awkward = "quote \" backslash \\ newline \n tab \t bell \u{7} nul \0 é ☎ 😀 </script>";
        let lines = lines_of(|| {
            let span = tracing::info_span!("outer", text = awkward, count = 3_u64);
            let _entered = span.enter();
            let inner = tracing::info_span!("inner", debug = ?awkward, display = %awkward);
            let _inner = inner.enter();
            tracing::warn!(
                negative = -5_i64,
                flag = true,
                ratio = 0.25_f64,
                nan = f64::NAN,
                awkward,
                "message with \"quotes\" and {}",
                "arguments"
            );
        });
        let event = &lines[0];
        assert_eq!(event["level"], "WARN");
        assert_eq!(event["target"], module_path!());
        let fields = &event["fields"];
        assert_eq!(fields["message"], "message with \"quotes\" and arguments");
        assert_eq!(fields["negative"], -5);
        assert_eq!(fields["flag"], true);
        assert_eq!(fields["ratio"], 0.25);
        assert!(fields["nan"].is_null());
        assert_eq!(fields["awkward"], awkward);
        assert_eq!(event["span"]["name"], "inner");
        assert_eq!(event["span"]["debug"], format!("{awkward:?}"));
        assert_eq!(event["span"]["display"], awkward);
        let ancestors = event["spans"].as_array().unwrap();
        assert_eq!(ancestors.len(), 1, "{event}");
        assert_eq!(ancestors[0]["name"], "outer");
        assert_eq!(ancestors[0]["text"], awkward);
        assert_eq!(ancestors[0]["count"], 3);
    }

    #[test]
    fn an_event_outside_any_span_has_no_span_keys() {
        let lines = lines_of(|| tracing::info!("alone"));
        let line = lines[0].as_object().unwrap();
        assert!(
            !line.contains_key("span") && !line.contains_key("spans"),
            "{lines:?}"
        );
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        for (since_epoch, text) in [
            (Duration::ZERO, "1970-01-01T00:00:00.000000Z"),
            (
                Duration::new(1_700_000_000, 123_456_789),
                "2023-11-14T22:13:20.123456Z",
            ),
            (
                Duration::new(1_700_000_000, 999_999),
                "2023-11-14T22:13:20.000999Z",
            ),
            (
                Duration::new(1_709_164_799, 0),
                "2024-02-28T23:59:59.000000Z",
            ),
            (
                Duration::new(1_709_164_800, 1_000),
                "2024-02-29T00:00:00.000001Z",
            ),
            (
                Duration::new(4_102_444_800, 0),
                "2100-01-01T00:00:00.000000Z",
            ),
        ] {
            let mut out = String::new();
            write_timestamp(&mut out, UNIX_EPOCH + since_epoch).unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn repeated_keys_keep_their_last_value_and_the_others_stay_intact() {
        for (text, left) in [
            (
                r#""a":1,"b":"x,\"b\":y","c":true,"b":2"#,
                r#""a":1,"c":true,"b":2"#,
            ),
            (r#""a":1,"b":"x","a":null"#, r#""b":"x","a":null"#),
            (r#""a":"\\","b":2,"a":"\"""#, r#""b":2,"a":"\"""#),
            (r#""a":1,"a":2,"a":3"#, r#""a":3"#),
            (r#""a":1,"b":"a","c":1.5"#, r#""a":1,"b":"a","c":1.5"#),
            (r#""a":1"#, r#""a":1"#),
        ] {
            assert_eq!(without_repeated_keys(text), left, "from {text}");
        }
    }

    #[test]
    fn a_repeat_is_found_only_for_a_key_and_not_inside_a_value() {
        let fields = r#""a":1,"b":"x,\"c\":y""#;
        for (added, repeats) in [
            (r#","a":2"#, true),
            (r#","b":"z""#, true),
            (r#","c":3"#, false),
            (r#","ab":3,"d":4"#, false),
            (r#","d":4,"b":5"#, true),
        ] {
            let text = format!("{fields}{added}");
            assert_eq!(repeats_a_key(&text, fields.len()), repeats, "{text}");
        }
    }

    proptest::proptest! {
        /// Any text escapes to a JSON string that reads back as that text.
        #[test]
        fn escaping_round_trips(text in ".*") {
            let mut out = String::from("\"");
            escape_into(&mut out, &text).unwrap();
            out.push('"');
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, text);
        }
    }
}
