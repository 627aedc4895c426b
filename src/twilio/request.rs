//! The `TwilioRequest` extractor: a webhook's parameters, read once with the
//! body limit applied and the signature checked, and why a request can be
//! refused before any route logic runs.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::ContentType;
use actix_web::http::{Method, StatusCode, header};
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt as _;
use tracing_actix_web::RootSpan;

use crate::domain::{CallSid, SidError};
use crate::twilio::{AuthError, SignedBody, WebhookAuth};

/// The largest request body accepted, in bytes (64 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a body may take to arrive: actix-web bounds only the head (to
/// 5 s), and a body that stops part way would hold its connection for ever
/// and a shutdown past the time the platforms give it.
const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request was refused before any route logic ran.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than 64 KiB (`MAX_BODY_BYTES`).
    #[error("request body is larger than 64 KiB")]
    BodyTooLarge,
    /// The body did not arrive within 5 s (`BODY_TIMEOUT`).
    #[error("request body did not arrive within 5 s")]
    BodyTimeout,
    /// The client stopped sending mid-body, or sent a broken chunked body.
    #[error("request body could not be read")]
    BodyUnreadable(#[source] actix_web::error::PayloadError),
    /// The request is not signed by Twilio (or checks cannot run).
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl ResponseError for RequestError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyUnreadable(_) | Self::Auth(AuthError::MissingSignature) => {
                StatusCode::BAD_REQUEST
            }
            Self::Auth(AuthError::InvalidSignature | AuthError::InvalidToolKey) => {
                StatusCode::FORBIDDEN
            }
            Self::Auth(AuthError::NotConfigured | AuthError::SharedKeyNotConfigured) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Auth(reason) = self {
            tracing::warn!(reason = reason.code(), "request refused: {reason}");
        }
        HttpResponse::build(self.status_code())
            .content_type(ContentType::plaintext())
            .body(format!("{self}\n"))
    }
}

/// `application/x-www-form-urlencoded` parameters (a body or a query
/// string) in the order sent, repeated names kept: Twilio's signature covers
/// every one of them.
///
/// Decoded by hand in one pass into one buffer, the pairs as offsets into
/// it: two allocations per request where `url::form_urlencoded` makes two
/// per parameter and decodes through iterators. That decoder
/// remains the reference: this one yields exactly its pairs (tests and the
/// `signature` fuzz target compare them), and is used for any input that
/// does not decode to UTF-8.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FormParams {
    text: String,
    /// For each pair: where its name starts, where its value starts (the
    /// name's end) and where the value ends, in `text`.
    pairs: Vec<[usize; 3]>,
}

impl FormParams {
    /// Decode a body or query string. Never fails: malformed escapes stay
    /// literal, `+` is a space and invalid UTF-8 becomes U+FFFD, as Twilio's
    /// own parsers do.
    pub fn decode(bytes: &[u8]) -> Self {
        let mut text = Vec::with_capacity(bytes.len());
        // Twilio's voice webhooks carry about twenty parameters.
        let mut pairs = Vec::with_capacity(24);
        // Where the current piece starts in `bytes`, where its name starts
        // in `text`, and where its value starts once its `=` is seen.
        let (mut piece, mut name, mut value) = (0, 0, None);
        let mut at = 0;
        loop {
            let run = bytes[at..]
                .iter()
                .position(|b| matches!(b, b'&' | b'=' | b'+' | b'%'))
                .unwrap_or(bytes.len() - at);
            text.extend_from_slice(&bytes[at..at + run]);
            at += run;
            let Some(&special) = bytes.get(at) else { break };
            at += 1;
            match special {
                b'&' => {
                    // Empty pieces (`&&`) are no pair at all.
                    if at - 1 > piece {
                        pairs.push([name, value.unwrap_or(text.len()), text.len()]);
                    }
                    (piece, name, value) = (at, text.len(), None);
                }
                b'=' if value.is_none() => value = Some(text.len()),
                b'+' => text.push(b' '),
                b'%' => match (hex_digit(bytes.get(at)), hex_digit(bytes.get(at + 1))) {
                    (Some(high), Some(low)) => {
                        text.push(high << 4 | low);
                        at += 2;
                    }
                    _ => text.push(b'%'),
                },
                other => text.push(other),
            }
        }
        if bytes.len() > piece {
            pairs.push([name, value.unwrap_or(text.len()), text.len()]);
        }
        match String::from_utf8(text) {
            // Each name and value must be valid on its own, as the url
            // crate decodes each separately.
            Ok(text) if pairs.iter().flatten().all(|&at| text.is_char_boundary(at)) => {
                Self { text, pairs }
            }
            _ => url::form_urlencoded::parse(bytes).into_owned().collect(),
        }
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.pairs
            .iter()
            .map(|&[name, value, end]| (&self.text[name..value], &self.text[value..end]))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// The value of a hex digit.
fn hex_digit(byte: Option<&u8>) -> Option<u8> {
    byte.and_then(|&b| (b as char).to_digit(16))
        .map(|d| d as u8)
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for FormParams {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut params = Self::default();
        for (name, value) in pairs {
            let start = params.text.len();
            params.text.push_str(name.as_ref());
            let value_start = params.text.len();
            params.text.push_str(value.as_ref());
            params.pairs.push([start, value_start, params.text.len()]);
        }
        params
    }
}

impl std::fmt::Debug for FormParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A Twilio webhook request whose signature has been checked (as the
/// [`WebhookAuth`] policy says): the form parameters of a `POST` (or none for
/// a `GET`) and the query parameters, each in the order sent, repeated names
/// kept (Twilio's signature covers every one of them).
///
/// Its call SID (`CallSid`, else `callSid` or `call_sid`), when well formed,
/// is recorded on the request's span and kept in the request's extensions,
/// where a voice route's fallback finds it.
#[derive(Debug, Clone, Default)]
pub struct TwilioRequest {
    form: FormParams,
    query: FormParams,
}

impl TwilioRequest {
    /// A request of these form parameters and no query, for callers with no
    /// HTTP request at hand (the fuzz targets).
    pub fn from_form(form: FormParams) -> Self {
        Self {
            form,
            query: FormParams::default(),
        }
    }

    /// The first value of `name`: from the form body, else from the query.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form.get(name).or_else(|| self.query.get(name))
    }

    /// The form parameters, then the query parameters, in order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.form.iter().chain(self.query.iter())
    }

    /// The query parameters, in order.
    pub fn query(&self) -> &FormParams {
        &self.query
    }

    /// The call SID in the first of `names` the request carries (each looked
    /// up in the form body, then the query). A blank value counts as absent:
    /// a Studio variable that came out empty must not hide the next name.
    ///
    /// # Errors
    /// [`CallSidProblem`] when none is present or the first is not a call SID.
    pub fn call_sid(&self, names: &[&str]) -> Result<CallSid, CallSidProblem> {
        let text = names
            .iter()
            .find_map(|name| self.get(name).filter(|v| !v.trim().is_empty()))
            .ok_or(CallSidProblem::Missing)?;
        CallSid::parse(text).map_err(CallSidProblem::Invalid)
    }
}

/// Why a route that needs a call SID has none to work with.
#[derive(Debug)]
pub enum CallSidProblem {
    /// None of the accepted parameters is present.
    Missing,
    /// The first one present is not a call SID.
    Invalid(SidError),
}

/// Read the whole body, refusing more than [`MAX_BODY_BYTES`] as early as the
/// `Content-Length` header allows. (actix's own limited reader starts every
/// body with a 32 KiB buffer: 8 MiB for 256 requests in flight.)
///
/// # Errors
/// [`RequestError::BodyTooLarge`], [`RequestError::BodyTimeout`] or
/// [`RequestError::BodyUnreadable`].
async fn read_body(req: &HttpRequest, mut payload: Payload) -> Result<Bytes, RequestError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(RequestError::BodyTooLarge);
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(1024));
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(RequestError::BodyUnreadable)?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(RequestError::BodyTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| RequestError::BodyTimeout)??;
    Ok(body.freeze())
}

/// Record a request's call SID on its span and keep it for the fallback.
pub fn record_call_sid(req: &HttpRequest, sid: &CallSid) {
    if let Some(span) = req.extensions().get::<RootSpan>() {
        span.record("call_sid", sid.as_ref());
    }
    req.extensions_mut().insert(sid.clone());
}

impl FromRequest for TwilioRequest {
    type Error = RequestError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        with_body(req, payload, |req, body| {
            let query = FormParams::decode(req.query_string().as_bytes());
            let form = if req.method() == Method::GET {
                FormParams::default()
            } else {
                FormParams::decode(&body)
            };
            WebhookAuth::registered(req)?.verify_twilio(
                req,
                SignedBody::Form {
                    params: &form,
                    raw: &body,
                },
            )?;
            let request = Self { form, query };
            // Twilio's own parameter, else the ones flexbridge's callback
            // URLs and Studio flows use.
            if let Ok(sid) = request.call_sid(&["CallSid", "callSid", "call_sid"]) {
                record_call_sid(req, &sid);
            }
            Ok(request)
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
    let payload = payload.take();
    Box::pin(async move {
        let body = read_body(&req, payload).await?;
        build(&req, body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(bytes).into_owned().collect()
    }

    fn decoded(bytes: &[u8]) -> Vec<(String, String)> {
        FormParams::decode(bytes)
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn parameters_keep_order_and_repeats_and_look_up_the_first() {
        let params = FormParams::decode(b"To=%2B1800&CallSid=CA1&To=%2B1900&Digits=&Caller=a+b");
        assert_eq!(params.iter().count(), 5);
        assert_eq!(params.get("To"), Some("+1800"));
        assert_eq!(params.get("Digits"), Some(""));
        assert_eq!(params.get("Caller"), Some("a b"));
        assert_eq!(params.get("caller"), None);
        let rebuilt: FormParams = params.iter().collect();
        assert_eq!(rebuilt, params);
    }

    #[test]
    fn a_request_from_a_form_reads_it_and_debugs_its_pairs() {
        let request = TwilioRequest::from_form(FormParams::decode(b"CallSid=CA1&To=%2B1"));
        assert_eq!(request.get("To"), Some("+1"));
        assert_eq!(request.params().count(), 2);
        assert_eq!(
            format!("{:?}", request.query()),
            "[]",
            "a request made from a form has no query"
        );
        assert_eq!(
            format!("{:?}", FormParams::decode(b"a=1&b")),
            r#"[("a", "1"), ("b", "")]"#
        );
    }

    #[test]
    fn decodes_like_the_url_crate_on_edge_cases() {
        for input in [
            &b""[..],
            b"a=1&a=2&b",
            b"%ZZ=%&+=+",
            b"x=%F0%9F%98%80&%C3%28=bad",
            b"&&=&",
            b"a==b=c&=",
            b"a=%&b=%4&c=%4g&d=%%41&e=%+41",
            b"%26%3D=%2B%25&%2525=%%",
            b"k=\xff\xfe&\xc3=%C3",
            // Valid UTF-8 as a whole, but a character cut between a name
            // and its value, or between two pairs.
            b"%C3=%A9",
            b"a%C3&%A9b",
        ] {
            assert_eq!(decoded(input), reference(input), "{input:?}");
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
            proptest::prop_assert_eq!(decoded(&bytes), reference(&bytes));
        }
    }
}
