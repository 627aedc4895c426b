//! The `TwilioRequest` extractor: a webhook's parameters, read once with the
//! body limit applied.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;

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
/// `form_decode` fuzz target checks it); pieces without `%` or `+`, most of
/// a Twilio webhook, are copied without the general decoder's passes.
pub fn decode_form(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(eq) => (&piece[..eq], &piece[eq + 1..]),
                None => (piece, &b""[..]),
            };
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// One name or value: `+` becomes a space, then percent-decoding, then
/// UTF-8 with U+FFFD for what is not.
fn decode_component(bytes: &[u8]) -> String {
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(decoded)
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
        ] {
            assert_eq!(decode_form(input), reference(input), "{input:?}");
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
