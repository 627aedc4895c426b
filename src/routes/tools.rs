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
        self.parts().0
    }

    /// The code, the status and the sentence for the assistant, decided in
    /// one place so they cannot disagree.
    fn parts(&self) -> (&'static str, StatusCode, String) {
        let cannot =
            |e: &dyn std::fmt::Display| format!("I can't hand this conversation over: {e}.");
        let retry = "Please try again in a moment.";
        match self {
            Self::Request(RequestError::Auth(AuthError::MissingSignature)) => (
                "missing_signature",
                StatusCode::UNAUTHORIZED,
                "This request is not allowed: send the tool key (Authorization: Bearer, \
                 X-Api-Key or ?key=) or a Twilio signature."
                    .into(),
            ),
            Self::Request(e @ RequestError::Auth(reason)) => (
                reason.code(),
                e.status_code(),
                format!("This request is not allowed: {reason}."),
            ),
            Self::Request(e) => (
                match e {
                    RequestError::BodyTooLarge => "body_too_large",
                    RequestError::BodyTimeout => "body_timeout",
                    _ => "invalid_body",
                },
                e.status_code(),
                format!("This request cannot be read: {e}."),
            ),
            Self::BadRequest { code, message } => (code, StatusCode::BAD_REQUEST, cannot(message)),
            Self::Handover(e @ HandoverError::InvalidOverride { .. }) => {
                ("invalid_override", StatusCode::BAD_REQUEST, cannot(e))
            }
            Self::Handover(e @ HandoverError::VoiceToStudio) => {
                ("unsupported_session", StatusCode::BAD_REQUEST, cannot(e))
            }
            Self::Handover(
                HandoverError::NotConfigured(variable)
                | HandoverError::Twilio(ClientError::NotConfigured(variable)),
            ) => (
                "not_configured",
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Handing over to an agent is not set up yet: {variable} is not set."),
            ),
            Self::Handover(HandoverError::Twilio(ClientError::Upstream(
                UpstreamError::Timeout { .. },
            ))) => (
                "upstream_timeout",
                StatusCode::GATEWAY_TIMEOUT,
                format!("Our team's system did not answer in time. {retry}"),
            ),
            Self::Handover(HandoverError::Twilio(e @ ClientError::Refused { .. })) => (
                "twilio_error",
                StatusCode::BAD_GATEWAY,
                format!("I couldn't hand this conversation to our team: {e}."),
            ),
            Self::Handover(HandoverError::Twilio(e)) => {
                let (code, status) = match e {
                    ClientError::Encode(_) => ("internal_error", StatusCode::INTERNAL_SERVER_ERROR),
                    _ => ("upstream_unavailable", StatusCode::BAD_GATEWAY),
                };
                (
                    code,
                    status,
                    format!("I couldn't reach our team just now ({e}). {retry}"),
                )
            }
            Self::Handover(HandoverError::InProgress) => (
                "handover_in_progress",
                StatusCode::CONFLICT,
                "A handover of this conversation is already under way. Please wait a moment."
                    .into(),
            ),
            Self::MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "This tool is called with POST.".into(),
            ),
            Self::Panicked => (
                "internal_error",
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Something went wrong on our side while handing over. {retry}"),
            ),
        }
    }
}

impl ResponseError for ToolError {
    fn status_code(&self) -> StatusCode {
        self.parts().1
    }

    fn error_response(&self) -> HttpResponse {
        let (code, status, message) = self.parts();
        tracing::warn!(error.code = code, error.message = %self, "tool request failed");
        let mut body = json!({ "status": "error", "error": code, "message": message });
        if let Self::Handover(HandoverError::Twilio(ClientError::Refused {
            status: twilio_status,
            error,
            ..
        })) = self
        {
            body["twilio"] = json!({
                "status": twilio_status,
                "code": error.as_ref().and_then(|e| e.code),
                "message": error.as_ref().and_then(|e| e.message.clone()),
                "more_info": error.as_ref().and_then(|e| e.more_info.clone()),
            });
        }
        let mut response = HttpResponse::build(status);
        match status {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::body::to_bytes;
    use actix_web::error::PayloadError;

    use super::*;

    #[actix_web::test]
    async fn every_tool_error_has_its_status_code_and_sentence() {
        let retry = "Please try again in a moment.";
        let under_way =
            "A handover of this conversation is already under way. Please wait a moment.";
        let twilio = |e: ClientError| ToolError::Handover(HandoverError::Twilio(e));
        let cases = [
            (
                ToolError::Request(RequestError::BodyTooLarge),
                413,
                "body_too_large",
                "This request cannot be read: request body is larger than 64 KiB.".to_owned(),
            ),
            (
                ToolError::Request(RequestError::BodyTimeout),
                408,
                "body_timeout",
                "This request cannot be read: request body did not arrive within 5 s.".to_owned(),
            ),
            (
                ToolError::Request(RequestError::BodyUnreadable(PayloadError::Incomplete(None))),
                400,
                "invalid_body",
                "This request cannot be read: request body could not be read.".to_owned(),
            ),
            (
                ToolError::Request(RequestError::Auth(AuthError::MissingSignature)),
                401,
                "missing_signature",
                "This request is not allowed: send the tool key (Authorization: Bearer, \
                 X-Api-Key or ?key=) or a Twilio signature."
                    .to_owned(),
            ),
            (
                ToolError::Request(RequestError::Auth(AuthError::InvalidToolKey)),
                403,
                "invalid_tool_key",
                "This request is not allowed: invalid tool key.".to_owned(),
            ),
            (
                ToolError::Request(RequestError::Auth(AuthError::NotConfigured)),
                500,
                "not_configured",
                "This request is not allowed: signature validation is not configured: \
                 set TWILIO_AUTH_TOKEN."
                    .to_owned(),
            ),
            (
                bad("missing_identity", "the X-Identity header is missing"),
                400,
                "missing_identity",
                "I can't hand this conversation over: the X-Identity header is missing.".to_owned(),
            ),
            (
                ToolError::Handover(HandoverError::VoiceToStudio),
                400,
                "unsupported_session",
                "I can't hand this conversation over: a Studio handover needs a \
                 conversation; voice sessions use /tools/flex-handover."
                    .to_owned(),
            ),
            (
                ToolError::Handover(HandoverError::NotConfigured("FLEX_WORKFLOW_SID")),
                500,
                "not_configured",
                "Handing over to an agent is not set up yet: FLEX_WORKFLOW_SID is not set."
                    .to_owned(),
            ),
            (
                twilio(ClientError::NotConfigured("TWILIO_API_SECRET")),
                500,
                "not_configured",
                "Handing over to an agent is not set up yet: TWILIO_API_SECRET is not set."
                    .to_owned(),
            ),
            (
                twilio(ClientError::Upstream(UpstreamError::Timeout {
                    upstream: "twilio",
                    deadline: Duration::from_millis(300),
                })),
                504,
                "upstream_timeout",
                format!("Our team's system did not answer in time. {retry}"),
            ),
            (
                twilio(ClientError::Refused {
                    status: 401,
                    error: None,
                    attempts: 1,
                }),
                502,
                "twilio_error",
                "I couldn't hand this conversation to our team: Twilio answered 401.".to_owned(),
            ),
            (
                twilio(ClientError::Decode { status: 200 }),
                502,
                "upstream_unavailable",
                format!(
                    "I couldn't reach our team just now (Twilio answered 200 with a body \
                     that is not the expected JSON). {retry}"
                ),
            ),
            (
                twilio(ClientError::Encode(serde_urlencoded::ser::Error::Custom(
                    "a map key".into(),
                ))),
                500,
                "internal_error",
                format!(
                    "I couldn't reach our team just now (the request form could not be \
                     encoded: a map key). {retry}"
                ),
            ),
            (
                ToolError::Handover(HandoverError::InProgress),
                409,
                "handover_in_progress",
                under_way.to_owned(),
            ),
            (
                ToolError::MethodNotAllowed,
                405,
                "method_not_allowed",
                "This tool is called with POST.".to_owned(),
            ),
            (
                ToolError::Panicked,
                500,
                "internal_error",
                format!("Something went wrong on our side while handing over. {retry}"),
            ),
        ];
        for (error, status, code, message) in cases {
            assert_eq!(error.status_code().as_u16(), status, "{error:?}");
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            let body = to_bytes(response.into_body()).await.unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            // A refusal also carries Twilio's own error (tests/api/flex_handover.rs).
            let shared = json!({
                "status": body["status"], "error": body["error"], "message": body["message"]
            });
            assert_eq!(
                shared,
                json!({ "status": "error", "error": code, "message": message }),
                "{error:?}"
            );
        }
    }
}
