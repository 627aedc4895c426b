//! The `ToolRequest` extractor for `/tools/*`: authenticated (tool key or
//! Twilio signature), with the assistant's session and identity headers and
//! the tool input parsed.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde_json::Value;
use tracing_actix_web::RootSpan;

use crate::domain::{Identity, SessionId, Sid, SidKind};
use crate::errors::{RequestError, ToolError};
use crate::twilio::{FormParams, SignedBody, WebhookAuth, with_body};

/// Fields that select targets rather than describe the customer.
const OVERRIDES: [&str; 3] = ["FlexWorkspaceSid", "FlexWorkflowSid", "FlowSid"];

/// An authenticated AI Assistant tool request.
#[derive(Debug, Clone)]
pub struct ToolRequest {
    /// `X-Session-Id`.
    pub session: SessionId,
    /// `X-Identity`.
    pub identity: Identity,
    /// String fields of the tool input (JSON object or form), in order.
    fields: FormParams,
    /// Query parameters.
    query: FormParams,
}

impl ToolRequest {
    /// An override SID from the tool input or the query (input first).
    ///
    /// # Errors
    /// [`ToolError::BadRequest`] when present but not a SID of kind `K`.
    pub fn override_sid<K: SidKind>(&self, name: &str) -> Result<Option<Sid<K>>, ToolError> {
        let value = self.fields.get(name).or_else(|| self.query.get(name));
        value
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                Sid::parse(v.trim()).map_err(|e| ToolError::BadRequest {
                    code: "invalid_override",
                    message: format!("{name}: {e}"),
                })
            })
            .transpose()
    }

    /// Tool-input string fields for the task attributes (overrides excluded).
    pub fn attribute_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .filter(|(name, _)| !OVERRIDES.contains(name))
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn bad(code: &'static str, message: impl Into<String>) -> ToolError {
    ToolError::BadRequest {
        code,
        message: message.into(),
    }
}

/// The string fields of a JSON tool input (an empty body is `{}`).
fn json_fields(body: &[u8]) -> Result<FormParams, ToolError> {
    if body.trim_ascii().is_empty() {
        return Ok(FormParams::default());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::String(text) => Some((name, text)),
                _ => None,
            })
            .collect()),
        _ => Err(bad("invalid_body", "the tool input must be a JSON object")),
    }
}

impl FromRequest for ToolRequest {
    type Error = ToolError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        with_body(req, payload, |req, body| {
            let form = is_form(req);
            let form_params = if form {
                FormParams::decode(&body)
            } else {
                FormParams::default()
            };
            let signed = if form {
                SignedBody::Form {
                    params: &form_params,
                    raw: &body,
                }
            } else {
                SignedBody::Json(&body)
            };
            WebhookAuth::registered(req)
                .and_then(|auth| auth.verify_tool(req, signed))
                .map_err(RequestError::Auth)?;

            let session = header(req, "X-Session-Id")
                .ok_or_else(|| bad("missing_session_id", "the X-Session-Id header is missing"))?;
            let session =
                SessionId::parse(session).map_err(|e| bad("invalid_session_id", e.to_string()))?;
            let identity = header(req, "X-Identity")
                .ok_or_else(|| bad("missing_identity", "the X-Identity header is missing"))?;
            let identity =
                Identity::parse(identity).map_err(|e| bad("invalid_identity", e.to_string()))?;
            if let Some(span) = req.extensions().get::<RootSpan>() {
                match &session {
                    SessionId::Conversation { conversation, .. } => {
                        span.record("conversation_sid", conversation.as_ref())
                    }
                    SessionId::Voice { call } => span.record("call_sid", call.as_ref()),
                };
            }
            let fields = if form {
                form_params
            } else {
                json_fields(&body)?
            };
            let query = FormParams::decode(req.query_string().as_bytes());
            Ok(Self {
                session,
                identity,
                fields,
                query,
            })
        })
    }
}
