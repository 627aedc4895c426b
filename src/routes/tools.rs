//! `POST /tools/flex-handover` and `POST /tools/studio-handover`: the tools a
//! Twilio AI Assistant calls to hand a customer to a person. Their request
//! (authenticated by tool key or Twilio signature, with the assistant's
//! session and identity headers) and their JSON errors, which the assistant
//! reads.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Value, json};
use tracing_actix_web::RootSpan;

use crate::domain::{Identity, SessionId};
use crate::handover::{HandoverError, HandoverRequest, Handovers, Outcome};
use crate::twilio::client::ClientError;
use crate::twilio::{AuthError, FormParams, RequestError, SignedBody, WebhookAuth, with_body};
use crate::upstream::UpstreamError;

/// Why a `/tools/*` request failed. Every message is a sentence an AI
/// assistant can read to the customer or act on.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Body or authentication.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A missing or malformed header or body.
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The handover failed.
    #[error(transparent)]
    Handover(#[from] HandoverError),
    /// A method other than `POST`.
    #[error("only POST is answered here")]
    MethodNotAllowed,
    /// The tool's own code panicked: a bug, logged where it was caught.
    #[error("flexbridge failed on this request (a bug; the panic is logged)")]
    Panicked,
}

impl ToolError {
    /// Stable code, the JSON `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Request(RequestError::BodyTooLarge) => "body_too_large",
            Self::Request(RequestError::BodyUnreadable(_)) => "invalid_body",
            Self::Request(RequestError::Auth(reason)) => reason.code(),
            Self::BadRequest { code, .. } => code,
            Self::Handover(e) => match e {
                HandoverError::InvalidOverride { .. } => "invalid_override",
                HandoverError::VoiceToStudio => "unsupported_session",
                HandoverError::NotConfigured(_)
                | HandoverError::Twilio(ClientError::NotConfigured(_)) => "not_configured",
                HandoverError::Twilio(ClientError::Upstream(UpstreamError::Timeout { .. })) => {
                    "upstream_timeout"
                }
                HandoverError::Twilio(ClientError::Refused { .. }) => "twilio_error",
                HandoverError::Twilio(
                    ClientError::Upstream(UpstreamError::Unreachable { .. })
                    | ClientError::Decode { .. },
                ) => "upstream_unavailable",
                HandoverError::Twilio(ClientError::Encode(_)) => "internal_error",
                HandoverError::Store(_) => "store_unavailable",
                HandoverError::InProgress => "handover_in_progress",
            },
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Panicked => "internal_error",
        }
    }

    /// The sentence for the assistant.
    pub fn message(&self) -> String {
        match self {
            Self::Request(RequestError::Auth(AuthError::MissingSignature)) => {
                "This request is not allowed: send the tool key (Authorization: Bearer, \
                 X-Api-Key or ?key=) or a Twilio signature."
                    .into()
            }
            Self::Request(RequestError::Auth(reason)) => {
                format!("This request is not allowed: {reason}.")
            }
            Self::Request(e) => format!("This request cannot be read: {e}."),
            Self::BadRequest { message, .. } => {
                format!("I can't hand this conversation over: {message}.")
            }
            Self::Handover(
                e @ (HandoverError::InvalidOverride { .. } | HandoverError::VoiceToStudio),
            ) => format!("I can't hand this conversation over: {e}."),
            Self::Handover(
                HandoverError::NotConfigured(variable)
                | HandoverError::Twilio(ClientError::NotConfigured(variable)),
            ) => format!("Handing over to an agent is not set up yet: {variable} is not set."),
            Self::Handover(HandoverError::Twilio(ClientError::Upstream(
                UpstreamError::Timeout { .. },
            ))) => "Our team's system did not answer in time. Please try again in a moment.".into(),
            Self::Handover(HandoverError::Twilio(e @ ClientError::Refused { .. })) => {
                format!("I couldn't hand this conversation to our team: {e}.")
            }
            Self::Handover(HandoverError::Twilio(e)) => {
                format!("I couldn't reach our team just now ({e}). Please try again in a moment.")
            }
            Self::Handover(HandoverError::Store(_) | HandoverError::InProgress) => {
                "A handover of this conversation is already under way. Please wait a moment.".into()
            }
            Self::MethodNotAllowed => "This tool is called with POST.".into(),
            Self::Panicked => {
                "Something went wrong on our side while handing over. Please try again in a moment."
                    .into()
            }
        }
    }
}

impl ResponseError for ToolError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Request(RequestError::Auth(AuthError::MissingSignature)) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Request(e) => e.status_code(),
            Self::BadRequest { .. }
            | Self::Handover(
                HandoverError::InvalidOverride { .. } | HandoverError::VoiceToStudio,
            ) => StatusCode::BAD_REQUEST,
            Self::Handover(
                HandoverError::NotConfigured(_)
                | HandoverError::Twilio(ClientError::NotConfigured(_) | ClientError::Encode(_)),
            )
            | Self::Panicked => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Handover(HandoverError::Twilio(ClientError::Upstream(
                UpstreamError::Timeout { .. },
            ))) => StatusCode::GATEWAY_TIMEOUT,
            Self::Handover(HandoverError::Twilio(_)) => StatusCode::BAD_GATEWAY,
            Self::Handover(HandoverError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Handover(HandoverError::InProgress) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        tracing::warn!(error.code = self.code(), error.message = %self, "tool request failed");
        let mut body =
            json!({ "status": "error", "error": self.code(), "message": self.message() });
        if let Self::Handover(HandoverError::Twilio(ClientError::Refused {
            status, error, ..
        })) = self
        {
            body["twilio"] = json!({
                "status": status,
                "code": error.as_ref().and_then(|e| e.code),
                "message": error.as_ref().and_then(|e| e.message.clone()),
                "more_info": error.as_ref().and_then(|e| e.more_info.clone()),
            });
        }
        let mut response = HttpResponse::build(self.status_code());
        match self.status_code() {
            StatusCode::UNAUTHORIZED => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                response.insert_header((header::ALLOW, "POST"));
            }
            _ => {}
        }
        response.json(body)
    }
}

/// An authenticated AI Assistant tool request.
#[derive(Debug, Clone)]
pub struct ToolRequest(HandoverRequest);

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

/// Owned copies of decoded pairs.
fn owned(params: &FormParams) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The string fields of a JSON tool input (an empty body is `{}`).
fn json_fields(body: &[u8]) -> Result<Vec<(String, String)>, ToolError> {
    if body.trim_ascii().is_empty() {
        return Ok(Vec::new());
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
            let form = is_form(req).then(|| FormParams::decode(&body));
            let signed = match &form {
                Some(params) => SignedBody::Form { params, raw: &body },
                None => SignedBody::Json(&body),
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
            match &session {
                SessionId::Conversation { conversation, .. } => {
                    if let Some(span) = req.extensions().get::<RootSpan>() {
                        span.record("conversation_sid", conversation.as_ref());
                    }
                }
                SessionId::Voice { call } => crate::twilio::record_call_sid(req, call),
            }
            let fields = match &form {
                Some(params) => owned(params),
                None => json_fields(&body)?,
            };
            Ok(Self(HandoverRequest {
                session,
                identity,
                fields,
                query: owned(&FormParams::decode(req.query_string().as_bytes())),
            }))
        })
    }
}

/// Hand the conversation (Flex Interaction) or call (call update) to Flex.
pub async fn flex_handover(
    handovers: web::Data<Handovers>,
    ToolRequest(request): ToolRequest,
) -> Result<HttpResponse, ToolError> {
    let outcome = counted("twilio_flex", handovers.to_flex(&request).await)?;
    let (sid_field, handed_over, already) = match request.session {
        SessionId::Conversation { .. } => (
            "interaction_sid",
            "Thanks for waiting. I've passed our conversation to a member of our team, who will reply here shortly.",
            "A member of our team already has this conversation and will reply here shortly.",
        ),
        SessionId::Voice { .. } => (
            "call_sid",
            "I'm connecting you to a member of our team now. Please hold.",
            "You're already on your way to a member of our team. Please hold.",
        ),
    };
    Ok(answer(outcome, sid_field, handed_over, already))
}

/// Hand the conversation to a Studio flow.
pub async fn studio_handover(
    handovers: web::Data<Handovers>,
    ToolRequest(request): ToolRequest,
) -> Result<HttpResponse, ToolError> {
    let outcome = counted("twilio_studio", handovers.to_studio(&request).await)?;
    Ok(answer(
        outcome,
        "webhook_sid",
        "Thanks for waiting. I've passed our conversation on, and you'll hear from us here shortly.",
        "This conversation has already been passed on; you'll hear from us here shortly.",
    ))
}

/// A tool route asked with another method than `POST`: `405` in the tools'
/// JSON error shape, with `Allow: POST`.
pub async fn method_not_allowed() -> Result<HttpResponse, ToolError> {
    Err(ToolError::MethodNotAllowed)
}

/// Count the handover's outcome.
fn counted(
    vendor: &'static str,
    result: Result<Outcome, HandoverError>,
) -> Result<Outcome, ToolError> {
    let result = result.map_err(ToolError::from);
    let outcome = match &result {
        Ok(Outcome::HandedOver(_)) => "handed_over",
        Ok(Outcome::AlreadyHandedOver(_)) => "already_handed_over",
        Ok(Outcome::DryRun(_)) => "dry_run",
        Err(e) => e.code(),
    };
    crate::metrics::handover(vendor, outcome);
    result
}

fn answer(outcome: Outcome, sid_field: &str, handed_over: &str, already: &str) -> HttpResponse {
    let body = match outcome {
        Outcome::HandedOver(sid) => {
            json!({ "status": "handed_over", "message": handed_over, sid_field: sid })
        }
        Outcome::AlreadyHandedOver(sid) => {
            json!({ "status": "already_handed_over", "message": already, sid_field: sid })
        }
        Outcome::DryRun(request) => json!({
            "status": "dry_run",
            "message": "Dry run (--dev): nothing was sent to Twilio. This is the request flexbridge would send.",
            "request": request,
        }),
    };
    HttpResponse::Ok().json(body)
}
