//! JSON log lines written straight into the output buffer.
//!
//! The lines have the shape tracing-subscriber's JSON format gives them
//! (`timestamp`, `level`, `fields`, `target`, `span`, `spans`), but no value
//! goes through a `serde_json::Value` or map on the way: a span's fields are
//! kept as JSON text from the moment they are recorded and copied into each
//! line as they are.
//!
//! [`JsonLayer`] does what tracing-subscriber's fmt layer did with
//! `FmtSpan::CLOSE` (a line when a span closes), without what a request
//! does not need from it: the synthetic close event and its dispatch, a
//! `String` grown from empty for every span, a text search on every
//! `record` for a field recorded twice, and two clock reads on every enter
//! and exit to split the span's time into busy and idle (a close line says
//! how long the span lasted: `elapsed_ms`).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Writes every event, and every span when it closes, as one JSON line to
/// `W`'s writers.
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    /// A layer writing to `make_writer`.
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// What a span keeps for its lines.
struct SpanFields {
    /// The fields as the inside of a JSON object: `"name":value,…`. A field
    /// recorded again replaces its earlier value, so every key appears once
    /// and a line copies the text as it is.
    text: String,
    /// Which fields (bit `i` for field index `i`) `text` holds: a repeat is
    /// seen without searching the text.
    recorded: u64,
    /// When the span was created: its close line says how long it lasted.
    opened: Instant,
}

impl SpanFields {
    /// Append the fields of `values`. A field recorded before keeps only
    /// its new value; a field that cannot be written leaves the text as it
    /// was.
    fn record(&mut self, values: &impl RecordFields) {
        let before = self.text.len();
        let mut visitor = JsonVisitor::new(&mut self.text);
        visitor.first = before == 0;
        visitor.recorded = self.recorded;
        values.record(&mut visitor);
        let (result, recorded, repeated) = (visitor.result, visitor.recorded, visitor.repeated);
        if result.is_err() {
            self.text.truncate(before);
            return;
        }
        self.recorded = recorded;
        // Rare: a field recorded a second time. The new members are at the
        // end; an earlier member with the same key is dropped.
        if repeated {
            self.text = without_repeated_keys(&self.text);
        }
    }
}

/// A span's fields text rarely outgrows this (a request span's is ~250
/// bytes); starting here saves growing it several times per span.
const SPAN_TEXT_CAPACITY: usize = 320;

thread_local! {
    /// A line being formatted, reused so a line costs no allocation.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<W> JsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// Format one line into this thread's buffer with `body` and write it.
    fn write_line(&self, meta: &Metadata<'_>, body: impl FnOnce(&mut String) -> fmt::Result) {
        LINE.with(|cell| {
            // Only re-entered when a writer logs; that line gets its own buffer.
            let mut spare = String::new();
            let mut borrowed = cell.try_borrow_mut();
            let line = match &mut borrowed {
                Ok(line) => &mut **line,
                Err(_) => &mut spare,
            };
            line.clear();
            if body(line).is_ok() {
                let mut writer = self.make_writer.make_writer_for(meta);
                if let Err(e) = io::Write::write_all(&mut writer, line.as_bytes()) {
                    eprintln!("flexbridge: cannot write a log line: {e}");
                }
            }
        });
    }
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields {
            text: String::with_capacity(SPAN_TEXT_CAPACITY),
            recorded: 0,
            opened: Instant::now(),
        };
        fields.record(attrs);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
            fields.record(values);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let meta = span.metadata();
        let elapsed = span
            .extensions()
            .get::<SpanFields>()
            .map_or(Duration::ZERO, |f| f.opened.elapsed());
        self.write_line(meta, |line| {
            line_start(line, meta.level())?;
            line.write_str("\"message\":\"close\",\"elapsed_ms\":")?;
            write_millis(line, elapsed)?;
            line_end(line, meta.target(), Some(&span))
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        // The span an event belongs to: its explicit parent, else the
        // current one.
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        self.write_line(meta, |line| {
            line_start(line, meta.level())?;
            let mut visitor = JsonVisitor::new(line);
            event.record(&mut visitor);
            visitor.result?;
            line_end(line, meta.target(), span.as_ref())
        });
    }
}

/// `{"timestamp":"…","level":"…","fields":{`.
fn line_start(line: &mut String, level: &Level) -> fmt::Result {
    line.push_str("{\"timestamp\":\"");
    write_timestamp(line, SystemTime::now())?;
    line.push_str("\",\"level\":\"");
    line.push_str(level.as_str());
    line.push_str("\",\"fields\":{");
    Ok(())
}

/// `},"target":"…","span":{…},"spans":[…]}` and the newline; no span keys
/// outside any span.
fn line_end<S>(line: &mut String, target: &str, span: Option<&SpanRef<'_, S>>) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    line.push_str("},\"target\":\"");
    escape_into(line, target);
    line.push('"');
    if let Some(span) = span {
        line.push_str(",\"span\":");
        write_span(line, span)?;
        line.push_str(",\"spans\":[");
        if let Some(parent) = span.parent() {
            let mut first = true;
            for ancestor in parent.scope().from_root() {
                if !first {
                    line.push(',');
                }
                first = false;
                write_span(line, &ancestor)?;
            }
        }
        line.push(']');
    }
    line.push_str("}\n");
    Ok(())
}

/// A duration in milliseconds with three decimals (whole microseconds):
/// a JSON number, written with integers.
fn write_millis(out: &mut String, duration: Duration) -> fmt::Result {
    // `as_micros` is a u128, and formatting one costs several times a u64.
    let Some(millis) = duration
        .as_secs()
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(u64::from(duration.subsec_millis())))
    else {
        let micros = duration.as_micros();
        return write!(out, "{}.{:03}", micros / 1000, micros % 1000);
    };
    out.push_str(itoa::Buffer::new().format(millis));
    out.push('.');
    push_digits(out, duration.subsec_micros() % 1000, 3);
    Ok(())
}

/// A finite `value` as `Display` writes it (the shortest digits that read
/// back as `value`, never an exponent); latencies mostly without core::fmt.
fn push_f64(out: &mut String, value: f64) -> fmt::Result {
    if push_micros(out, value) {
        Ok(())
    } else {
        write!(out, "{value}")
    }
}

/// Write `value` if it is a whole number of millionths below 10^8, as
/// `Display` writes it, and say whether it did.
///
/// Most latencies in milliseconds are (a `Duration` counts nanoseconds), and
/// then the digits are those of that number of millionths: a decimal of at
/// most 14 significant digits that reads back as `value` is the only one of
/// that length or shorter that does (two such decimals are further apart than
/// the values that read back as one f64).
fn push_micros(out: &mut String, value: f64) -> bool {
    const SCALE: f64 = 1e6;
    if !(value.is_sign_positive() && value < 1e8) {
        return false;
    }
    // Rounded to the nearest integer; checked below, so a product rounded
    // the wrong way only costs the fast path.
    let scaled = (value * SCALE + 0.5) as u64;
    // `scaled` is below 10^14 < 2^53: converted exactly.
    if scaled as f64 / SCALE != value {
        return false;
    }
    // Both operands of the division are exact and the division rounds
    // correctly, so `scaled / 10^6` reads back as `value`.
    let (whole, mut millionths) = (scaled / 1_000_000, scaled % 1_000_000);
    out.push_str(itoa::Buffer::new().format(whole));
    if millionths != 0 {
        let mut places = 6;
        while millionths % 10 == 0 {
            millionths /= 10;
            places -= 1;
        }
        out.push('.');
        // Below 10^6: fits in a u32.
        push_digits(out, u32::try_from(millionths).unwrap_or(0), places);
    }
    true
}

/// `value` in decimal, zero-padded to `width` digits (`value` has no more).
fn push_digits(out: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let width = width.min(digits.len());
    let mut rest = value;
    for digit in digits[..width].iter_mut().rev() {
        // `rest % 10` is a single decimal digit: the cast cannot truncate.
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    for &digit in &digits[..width] {
        out.push(char::from(digit));
    }
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

/// The members of a span's fields text (as [`JsonVisitor`] writes it): `(key, member)` pairs,
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
struct JsonVisitor<'a> {
    out: &'a mut String,
    first: bool,
    result: fmt::Result,
    /// Bit `i` set: field `i` has been written (now or before).
    recorded: u64,
    /// A field was written that had been written before, or one whose
    /// index has no bit (then it may have been).
    repeated: bool,
}

impl<'a> JsonVisitor<'a> {
    fn new(out: &'a mut String) -> Self {
        Self {
            out,
            first: true,
            result: Ok(()),
            recorded: 0,
            repeated: false,
        }
    }

    /// Write the separator and the key, and remember the name.
    fn key(&mut self, field: &Field) {
        let name = field.name();
        let out = &mut *self.out;
        // Room for the separator, quotes and colon too: one capacity check.
        out.reserve(name.len() + 4);
        if !self.first {
            out.push(',');
        }
        self.first = false;
        out.push('"');
        escape_into(out, name);
        out.push_str("\":");
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        match u32::try_from(field.index())
            .ok()
            .and_then(|i| 1_u64.checked_shl(i))
        {
            Some(bit) => {
                self.repeated |= self.recorded & bit != 0;
                self.recorded |= bit;
            }
            None => self.repeated = true,
        }
        if self.result.is_ok() {
            self.key(field);
            self.result = value(self.out);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| {
            out.reserve(value.len() + 2);
            out.push('"');
            escape_into(out, value);
            out.push('"');
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.push('"');
            write!(Escaping(out), "{value:?}")?;
            out.push('"');
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| {
            out.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| {
            out.push_str(itoa::Buffer::new().format(value));
            Ok(())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| {
            out.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        self.member(field, |out| {
            if value.is_finite() {
                push_f64(out, value)
            } else {
                out.push_str("null");
                Ok(())
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
#[inline]
fn escape_into(out: &mut String, text: &str) {
    if is_plain(text.as_bytes()) {
        out.push_str(text);
    } else {
        escape_each(out, text);
    }
}

/// [`escape_into`] for text that needs it: rare, so kept out of line.
#[cold]
#[inline(never)]
fn escape_each(out: &mut String, text: &str) {
    let mut plain = 0;
    for (at, &byte) in text.as_bytes().iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(byte)] {
            continue;
        }
        out.push_str(&text[plain..at]);
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(control >> 4)]));
                out.push(char::from(HEX[usize::from(control & 0xf)]));
            }
        }
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
}

/// The high bit of a byte of `word` set for each byte that [`NEEDS_ESCAPE`]
/// (and maybe for bytes after one): zero when none does.
const fn escape_flags(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Only a byte below 0x20, or zero after the XOR, wraps when subtracted
    // from (and borrows from the byte after it); `& !word` leaves out bytes
    // from 0x80 on, which never need escaping.
    let controls = word.wrapping_sub(ONES * 0x20);
    let quotes = (word ^ (ONES * b'"' as u64)).wrapping_sub(ONES);
    let backslashes = (word ^ (ONES * b'\\' as u64)).wrapping_sub(ONES);
    (controls | quotes | backslashes) & !word & HIGHS
}

/// Whether no byte of `bytes` [`NEEDS_ESCAPE`].
///
/// Every key and field value is checked, and almost none needs escaping:
/// eight bytes at a time, without a branch per word, the last eight
/// overlapping the ones before when the length is not a multiple of eight.
#[inline]
fn is_plain(bytes: &[u8]) -> bool {
    let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
    let Some(last) = bytes.len().checked_sub(8) else {
        return !bytes.iter().any(|&b| NEEDS_ESCAPE[usize::from(b)]);
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut flags = 0;
    for chunk in &mut chunks {
        flags |= escape_flags(word(chunk));
    }
    if !chunks.remainder().is_empty() {
        flags |= escape_flags(word(&bytes[last..]));
    }
    flags == 0
}

/// A `fmt::Write` that escapes what passes through it, for `Debug` values.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text);
        Ok(())
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
fn write_timestamp(out: &mut String, now: SystemTime) -> fmt::Result {
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
        out.push_str(text);
        push_digits(out, since_epoch.subsec_micros(), 6);
        out.push('Z');
        Ok(())
    })
}

/// `{fields…,"name":"span name"}`.
fn write_span<S>(line: &mut String, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    line.push('{');
    if let Some(fields) = span.extensions().get::<SpanFields>() {
        if !fields.text.is_empty() {
            line.push_str(&fields.text);
            line.push(',');
        }
    }
    line.push_str("\"name\":\"");
    escape_into(line, span.name());
    line.push_str("\"}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Captured;

    use proptest::strategy::Strategy as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Run `body` under the JSON layer and parse every line written.
    fn lines_of(body: impl FnOnce()) -> Vec<serde_json::Value> {
        text_of(body)
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// Run `body` under the JSON layer and return what it wrote.
    fn text_of(body: impl FnOnce()) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber =
            tracing_subscriber::registry().with(JsonLayer::new(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, body);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
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
        assert!(lines[1]["fields"]["elapsed_ms"].as_f64().unwrap() >= 0.0);
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
    fn a_close_line_names_the_span_its_ancestors_and_its_timings() {
        let text = text_of(|| {
            let outer = tracing::info_span!("outer", a = 1_u64);
            let _outer = outer.enter();
            let inner = tracing::info_span!("inner", b = "x", c = tracing::field::Empty);
            inner.record("c", true);
            inner.record("b", "y");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "inner, then outer closed: {text}");
        let line = lines[0];
        let after_timestamp = &line[line.find("\",\"level").unwrap()..];
        let (head, rest) = after_timestamp.split_at(after_timestamp.find("elapsed_ms").unwrap());
        assert_eq!(head, r#"","level":"INFO","fields":{"message":"close",""#);
        let tail = &rest[rest.find("},").unwrap()..];
        assert_eq!(
            tail,
            concat!(
                r#"},"target":"flexbridge::telemetry::json::tests","#,
                r#""span":{"c":true,"b":"y","name":"inner"},"#,
                r#""spans":[{"a":1,"name":"outer"}]}"#
            )
        );
    }

    #[test]
    fn a_field_written_before_is_flagged_as_a_repeat() {
        let lines = lines_of(|| {
            let span = tracing::info_span!("s", a = 1_u64, b = tracing::field::Empty);
            span.record("b", 2_u64);
            span.record("a", 3_u64);
            span.record("b", 4_u64);
        });
        assert_eq!(
            lines[0]["span"],
            serde_json::json!({"a": 3, "b": 4, "name": "s"})
        );
    }

    #[test]
    fn durations_are_milliseconds_with_three_decimals() {
        for (duration, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(999), "0.000"),
            (Duration::from_micros(1), "0.001"),
            (Duration::from_nanos(1_234_567), "1.234"),
            (Duration::from_millis(50), "50.000"),
            (Duration::from_secs(12), "12000.000"),
        ] {
            let mut out = String::new();
            write_millis(&mut out, duration).unwrap();
            assert_eq!(out, text, "{duration:?}");
        }
    }

    #[test]
    fn latencies_in_whole_millionths_take_the_short_way() {
        for (value, text) in [
            (0.042_583, "0.042583"),
            (12.469_065, "12.469065"),
            (0.5, "0.5"),
            (3.0, "3"),
            (0.0, "0"),
            (99_999_999.999_999, "99999999.999999"),
        ] {
            let mut out = String::new();
            assert!(push_micros(&mut out, value), "{value:?}");
            assert_eq!(out, text);
            assert_eq!(out, format!("{value}"));
        }
        for value in [0.046_449_000_000_000_004, 1e-7, -1.5, 1e8, f64::MAX] {
            assert!(!push_micros(&mut String::new(), value), "{value:?}");
        }
    }

    #[test]
    fn a_byte_to_escape_is_found_at_any_offset() {
        for byte in 0..=255_u8 {
            for len in [1, 7, 8, 9, 15, 16, 17, 30] {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    assert_eq!(
                        is_plain(&bytes),
                        !NEEDS_ESCAPE[usize::from(byte)],
                        "byte {byte:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(is_plain(b""));
    }

    proptest::proptest! {
        /// The word-at-a-time check agrees with a byte-by-byte one, on
        /// bytes dense with ones near those it looks for.
        #[test]
        fn plain_text_is_what_a_byte_by_byte_check_finds(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    0x00_u8..0x24,
                    proptest::prop_oneof![0x5a_u8..0x5e, 0x7f_u8..0x82, 0xa0_u8..0xa4, 0xdb_u8..0xde],
                    proptest::prelude::any::<u8>(),
                ],
                0..40,
            ),
        ) {
            let expected = !bytes.iter().any(|&b| NEEDS_ESCAPE[usize::from(b)]);
            proptest::prop_assert_eq!(is_plain(&bytes), expected);
        }

        /// Any text escapes as a character-by-character escaper writes it:
        /// the short forms for `"`, `\\`, newline, return and tab, `\\u00XX`
        /// for the other controls.
        #[test]
        fn escaping_matches_a_character_by_character_escaper(
            chars in proptest::collection::vec(
                proptest::prop_oneof![
                    (0_u8..0x20).prop_map(char::from),
                    proptest::prop_oneof![proptest::strategy::Just('"'), proptest::strategy::Just('\\')],
                    proptest::char::range('a', 'z'),
                    proptest::prelude::any::<char>(),
                ],
                0..40,
            ),
        ) {
            let text: String = chars.into_iter().collect();
            let mut expected = String::new();
            for c in text.chars() {
                match c {
                    '"' => expected.push_str("\\\""),
                    '\\' => expected.push_str("\\\\"),
                    '\n' => expected.push_str("\\n"),
                    '\r' => expected.push_str("\\r"),
                    '\t' => expected.push_str("\\t"),
                    c if c < ' ' => expected.push_str(&format!("\\u{:04x}", u32::from(c))),
                    c => expected.push(c),
                }
            }
            let mut out = String::new();
            escape_into(&mut out, &text);
            proptest::prop_assert_eq!(out, expected);
        }

        /// Any duration is written as the integer formatting of its
        /// microseconds wrote it.
        #[test]
        fn durations_are_written_as_formatting_their_microseconds_writes_them(
            secs in proptest::prop_oneof![0_u64..100_000, proptest::prelude::any::<u64>()],
            nanos in 0_u32..1_000_000_000,
        ) {
            let duration = Duration::new(secs, nanos);
            let micros = duration.as_micros();
            let mut out = String::new();
            write_millis(&mut out, duration).unwrap();
            proptest::prop_assert_eq!(out, format!("{}.{:03}", micros / 1000, micros % 1000));
        }

        /// Any timestamp's fraction is its microseconds, zero-padded to six digits.
        #[test]
        fn timestamps_end_with_the_microseconds_zero_padded(
            secs in 0_u64..4_102_444_800,
            nanos in 0_u32..1_000_000_000,
        ) {
            let now = UNIX_EPOCH + Duration::new(secs, nanos);
            let mut out = String::new();
            write_timestamp(&mut out, now).unwrap();
            proptest::prop_assert_eq!(&out[20..], format!("{:06}Z", nanos / 1000));
        }

        /// Any finite float is written as `Display` writes it: latencies as
        /// they are computed, any bit pattern, and binary fractions short
        /// enough in decimal to tie between two shortest forms.
        #[test]
        fn floats_are_written_as_display_writes_them(
            value in proptest::prop_oneof![
                (0_u64..1_000_000_000_000)
                    .prop_map(|nanos| Duration::from_nanos(nanos).as_secs_f64() * 1000.0),
                proptest::num::f64::ANY,
                (proptest::prelude::any::<i64>(), 0_u32..53, -20_i32..60).prop_map(
                    |(integer, shift, scale)| (integer >> shift) as f64 * 2_f64.powi(-scale)
                ),
            ],
        ) {
            proptest::prop_assume!(value.is_finite());
            let mut out = String::new();
            push_f64(&mut out, value).unwrap();
            proptest::prop_assert_eq!(out, format!("{value}"));
        }

        /// Integers and booleans are written as `Display` writes them.
        #[test]
        fn integers_and_booleans_are_written_as_display_writes_them(
            signed in proptest::prelude::any::<i64>(),
            unsigned in proptest::prelude::any::<u64>(),
            flag in proptest::prelude::any::<bool>(),
        ) {
            let text = text_of(|| tracing::info!(signed, unsigned, flag));
            let expected = format!(r#""fields":{{"signed":{signed},"unsigned":{unsigned},"flag":{flag}}}"#);
            proptest::prop_assert!(text.contains(&expected), "{} in {}", expected, text);
        }

        /// Any text escapes to a JSON string that reads back as that text.
        #[test]
        fn escaping_round_trips(text in ".*") {
            let mut out = String::from("\"");
            escape_into(&mut out, &text);
            out.push('"');
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(back, text);
        }
    }
}
