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
use crate::twilio::{FormParams, SignedBody, WebhookAuth};

/// A Twilio webhook request whose signature has been checked (as the
/// [`WebhookAuth`] policy says): the form parameters of a `POST` (or none for
/// a `GET`) and the query parameters, each in the order sent, repeated names
/// kept (Twilio's signature covers every one of them).
#[derive(Debug, Clone, Default)]
pub struct TwilioRequest {
    form: FormParams,
    query: FormParams,
}

impl TwilioRequest {
    /// The first value of `name`: from the form body, else from the query.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.form.get(name).or_else(|| self.query.get(name))
    }

    /// The form parameters, in order.
    pub fn form(&self) -> &FormParams {
        &self.form
    }

    /// The query parameters, in order.
    pub fn query(&self) -> &FormParams {
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
