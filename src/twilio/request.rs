//! The `TwilioRequest` extractor: a webhook's parameters, read once with the
//! body limit applied.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;

use crate::domain::percent_decode;
use crate::errors::{MAX_BODY_BYTES, RequestError};
use crate::twilio::{SignedBody, WebhookAuth};

/// A Twilio webhook request whose signature has been checked (as the
/// [`WebhookAuth`] policy says): the form parameters of a `POST` (or none for
/// a `GET`) and the query parameters, each in the order sent, repeated names
/// kept (Twilio's signature covers every one of them).
#[derive(Debug, Clone, Default)]
pub struct TwilioRequest {
    form: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl TwilioRequest {
    /// Build from already-decoded parameters (tests and tools).
    pub fn new(form: Vec<(String, String)>, query: Vec<(String, String)>) -> Self {
        Self { form, query }
    }

    /// The first value of `name`: from the form body, else from the query.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(&self.query)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The form parameters, in order.
    pub fn form(&self) -> &[(String, String)] {
        &self.form
    }

    /// The query parameters, in order.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }
}

/// Read the whole body, refusing more than [`MAX_BODY_BYTES`] as early as the
/// `Content-Length` header allows.
///
/// # Errors
/// [`RequestError::BodyTooLarge`] or [`RequestError::BodyUnreadable`].
pub async fn read_body(req: &HttpRequest, payload: &mut Payload) -> Result<Bytes, RequestError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(RequestError::BodyTooLarge);
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(1024).min(MAX_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(RequestError::BodyUnreadable)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(RequestError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Decode `application/x-www-form-urlencoded` text (a body or a query
/// string) into ordered pairs, repeated names kept: the decoding every
/// webhook and tool request goes through before its signature is checked.
///
/// Never fails: malformed escapes stay literal, `+` is a space, and invalid
/// UTF-8 becomes U+FFFD, which is what Twilio's own parsers do with such
/// input too. The result is exactly `url::form_urlencoded::parse`'s (the
/// `form_decode` fuzz target checks it).
pub fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    // An absent query string is the common case: no allocation for it.
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut pairs = Vec::with_capacity(count_ampersands(bytes) + 1);
    // Validating the whole input once lets every piece of valid text (cut at
    // ASCII `&` and `=`, so still valid) be copied without a check of its own.
    match std::str::from_utf8(bytes) {
        Ok(text) => for_each_piece(bytes, |piece| {
            let component = |range: Range<usize>, escaped: bool| match text.get(range.clone()) {
                Some(plain) if !escaped => plain.to_owned(),
                _ => unescape(&bytes[range]),
            };
            pairs.push((
                component(piece.name, piece.name_escaped),
                component(piece.value, piece.value_escaped),
            ));
        }),
        Err(_) => for_each_piece(bytes, |piece| {
            let component = |range: Range<usize>, escaped: bool| {
                if escaped {
                    unescape(&bytes[range])
                } else {
                    String::from_utf8_lossy(&bytes[range]).into_owned()
                }
            };
            pairs.push((
                component(piece.name, piece.name_escaped),
                component(piece.value, piece.value_escaped),
            ));
        }),
    }
    pairs
}

/// How many `&` there are: at most one pair more than that.
fn count_ampersands(bytes: &[u8]) -> usize {
    // Byte-sized counters over short chunks cannot overflow and let the
    // compiler compare sixteen bytes at a time.
    bytes
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'&')))
        })
        .map(usize::from)
        .sum()
}

/// One non-empty `&`-separated piece: where its name and value are, and
/// whether each holds a `+` or `%` that decoding changes.
struct Piece {
    name: Range<usize>,
    value: Range<usize>,
    name_escaped: bool,
    value_escaped: bool,
}

// The bytes the scanner stops at; every other byte is copied as it is.
const AMPERSAND: u8 = 1;
const EQUALS: u8 = 2;
const ESCAPE: u8 = 3;
/// The class of each byte value: one of the above, or 0.
const CLASS: [u8; 256] = {
    let mut class = [0; 256];
    class[b'&' as usize] = AMPERSAND;
    class[b'=' as usize] = EQUALS;
    class[b'+' as usize] = ESCAPE;
    class[b'%' as usize] = ESCAPE;
    class
};

/// Call `each` for every non-empty piece, in order: one pass over the
/// input finds the separators and the escapes together.
fn for_each_piece(bytes: &[u8], mut each: impl FnMut(Piece)) {
    let mut start = 0;
    let mut equals: Option<usize> = None;
    let (mut name_escaped, mut value_escaped) = (false, false);
    let mut finish =
        |start: usize, end: usize, equals: Option<usize>, name_escaped, value_escaped| {
            if start < end {
                each(Piece {
                    name: start..equals.unwrap_or(end),
                    value: equals.map_or(end, |e| e + 1)..end,
                    name_escaped,
                    value_escaped,
                });
            }
        };
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match CLASS[usize::from(b)] {
            AMPERSAND => {
                finish(start, i, equals, name_escaped, value_escaped);
                start = i + 1;
                equals = None;
                (name_escaped, value_escaped) = (false, false);
            }
            EQUALS if equals.is_none() => equals = Some(i),
            ESCAPE if equals.is_none() => name_escaped = true,
            ESCAPE => {
                // Nothing else in this value matters: skip to its end.
                value_escaped = true;
                i = next_ampersand(bytes, i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    finish(start, bytes.len(), equals, name_escaped, value_escaped);
}

/// The index of the first `&` at or after `from`, or the length: eight
/// bytes at a time, as long escaped values (a SIP `Refer-To`) are most of
/// some bodies.
fn next_ampersand(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const AMPERSANDS: u64 = u64::from_ne_bytes([b'&'; 8]);
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        // High bit set in each byte that was `&` (and possibly in bytes
        // after one, which the lowest set bit rules out).
        let x = u64::from_le_bytes(chunk) ^ AMPERSANDS;
        let found = x.wrapping_sub(ONES) & !x & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|&b| b == b'&')
        .map_or(bytes.len(), |p| i + p)
}

/// A form name or value: `+` is a space, escapes are decoded once, then
/// UTF-8 with U+FFFD for what is not.
fn unescape(bytes: &[u8]) -> String {
    String::from_utf8(percent_decode(bytes, true))
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

impl FromRequest for TwilioRequest {
    type Error = RequestError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        with_body(req, payload, |req, body| {
            let query = decode_form(req.query_string().as_bytes());
            let form = if req.method() == Method::GET {
                Vec::new()
            } else {
                decode_form(&body)
            };
            WebhookAuth::registered(req)?.verify_twilio(
                req,
                SignedBody::Form {
                    params: &form,
                    raw: &body,
                },
            )?;
            Ok(Self { form, query })
        })
    }
}

/// An extractor's future: read the body within the limit, then `build` the
/// value from the request and the body.
pub fn with_body<T, E, F>(
    req: &HttpRequest,
    payload: &mut Payload,
    build: F,
) -> Pin<Box<dyn Future<Output = Result<T, E>>>>
where
    T: 'static,
    E: From<RequestError> + 'static,
    F: FnOnce(&HttpRequest, Bytes) -> Result<T, E> + 'static,
{
    let req = req.clone();
    let mut payload = payload.take();
    Box::pin(async move {
        let body = read_body(&req, &mut payload).await?;
        build(&req, body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(bytes).into_owned().collect()
    }

    #[test]
    fn decodes_like_the_url_crate_on_edge_cases() {
        for input in [
            &b""[..],
            b"a=1&a=2&b",
            b"%ZZ=%&+=+",
            b"x=%F0%9F%98%80&%C3%28=bad",
            b"&&=&",
            b"Called=%2B18005551234&CallerCity=SAN+FRANCISCO",
            b"k=\xff\xfe&\xc3=%C3",
            b"a==b=c&=",
            b"%",
            b"a=%",
            b"a=%4",
            b"a=%4g&b=%g4",
            b"a=%%41",
            b"a=%+41&b=%4+1",
            b"+++=++",
            b"=",
            b"=v&n=",
            b"%41%42=%61%62",
            b"a=%e2%82%ac&b=%E2%82%AC",
            b"a=%e2%82&b=%ff",
            b"a=%C3%A9\xc3\xa9",
            b"\xff",
            b"\xff=%41+b",
            b"ok=1&bad=\xe2\x82&ok2=%C3%A9",
            b"\xe2\x82\xac=\xe2\x82\xac&%e2%82%ac",
            b"%26%3D=%2B%25&%2525=%%",
        ] {
            assert_eq!(decode_form(input), reference(input), "{input:?}");
        }
    }

    proptest::proptest! {
        /// The word-at-a-time search finds the first `&` wherever it is.
        #[test]
        fn next_ampersand_finds_the_first(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"&%+=\x26\xa6\x25\x27\x00\xff".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..40,
            ),
            from in 0usize..41,
        ) {
            let from = from.min(bytes.len());
            let expected = bytes[from..]
                .iter()
                .position(|&b| b == b'&')
                .map_or(bytes.len(), |p| from + p);
            proptest::prop_assert_eq!(next_ampersand(&bytes, from), expected);
        }

        /// Long escaped values, whose end is found a word at a time.
        #[test]
        fn decodes_long_escaped_values_like_the_url_crate(
            pieces in proptest::collection::vec("[a-zA-Z0-9%+=&]{0,3}(%[0-9A-Fa-f]{2}|[a-z+&=]){0,24}", 0..6),
        ) {
            let bytes = pieces.concat();
            proptest::prop_assert_eq!(decode_form(bytes.as_bytes()), reference(bytes.as_bytes()));
        }
    }

    proptest::proptest! {
        /// Any bytes decode exactly as `url::form_urlencoded::parse` decodes them.
        #[test]
        fn decodes_any_bytes_like_the_url_crate(bytes in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(b"&=+%".to_vec()),
                proptest::sample::select(b"0123456789abcdefABCDEFZz".to_vec()),
                proptest::num::u8::ANY,
            ],
            0..64,
        )) {
            proptest::prop_assert_eq!(decode_form(&bytes), reference(&bytes));
        }
    }
}
