//! Errors and the one place each becomes an HTTP answer: request-level
//! errors (body, authentication) as plain text, tool errors as the JSON an
//! assistant reads, vendor-route errors as the JSON a Studio flow reads.
//! Voice routes never answer an error: [`crate::voice::reply`]
//! turns their failures into TwiML.

use std::panic::AssertUnwindSafe;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use futures_util::FutureExt as _;
use serde_json::json;

use crate::domain::SidError;
use crate::handover::StoreError;
use crate::twilio::AuthError;
use crate::twilio::client::ClientError;
use crate::upstream::UpstreamError;
use crate::vendors::VendorError;

/// The outcome of a route's `work`, where a panic (a bug) is the failure
/// `panicked` makes: the caller gets the route's answer for a failure instead
/// of a connection closed without one.
pub async fn caught<T, E>(
    work: impl Future<Output = Result<T, E>>,
    panicked: impl FnOnce() -> E,
) -> Result<T, E> {
    // Nothing the work touched is used again once it has panicked.
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("the route panicked (a bug); answering as for a failure");
            Err(panicked())
        })
}

/// What a route's failure says when its own code panicked, whichever
/// route it was.
pub const PANICKED: &str = "flexbridge failed on this request (a bug; the panic is logged)";

/// The largest request body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a request was refused before any route logic ran.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("request body is larger than 64 KiB")]
    BodyTooLarge,
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
            Self::BodyUnreadable(_) => StatusCode::BAD_REQUEST,
            Self::Auth(AuthError::MissingSignature) => StatusCode::BAD_REQUEST,
            Self::Auth(AuthError::InvalidSignature | AuthError::InvalidToolKey) => {
                StatusCode::FORBIDDEN
            }
            Self::Auth(AuthError::NotConfigured) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Auth(reason) = self {
            tracing::warn!(reason = reason.code(), "request refused: {reason}");
        }
        plain_text(self)
    }
}

/// A path no route serves.
#[derive(Debug, thiserror::Error)]
#[error("flexbridge has no route at this path{}", match trailing_slash_of {
    Some(route) => format!("; its paths have no trailing slash: {route}"),
    None => String::new(),
})]
pub struct NoRoute {
    /// The route whose path this is with a `/` appended, if any (the path
    /// itself is not echoed).
    pub trailing_slash_of: Option<&'static str>,
}

impl ResponseError for NoRoute {
    fn status_code(&self) -> StatusCode {
        StatusCode::NOT_FOUND
    }

    fn error_response(&self) -> HttpResponse {
        plain_text(self)
    }
}

/// An error's message as a plain-text answer with its status.
fn plain_text(error: &impl ResponseError) -> HttpResponse {
    HttpResponse::build(error.status_code())
        .content_type(ContentType::plaintext())
        .body(format!("{error}\n"))
}

/// Why a `/tools/*` request failed. Every message is a sentence an AI
/// assistant can read to the customer or act on.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// Body or authentication.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A missing or malformed header, body or override.
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A setting the handover needs is unset.
    #[error("{0} is not set")]
    NotConfigured(&'static str),
    /// The Twilio call failed.
    #[error(transparent)]
    Twilio(#[from] ClientError),
    /// The handover store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A concurrent handover of the same session did not finish in time.
    #[error("a handover of this conversation is still in progress")]
    InProgress,
    /// A method other than `POST`.
    #[error("only POST is answered here")]
    MethodNotAllowed,
    /// The handover's own code panicked: a bug, logged where it happened.
    #[error("{}", PANICKED)]
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
            Self::NotConfigured(_) | Self::Twilio(ClientError::NotConfigured(_)) => {
                "not_configured"
            }
            Self::Twilio(ClientError::Upstream(UpstreamError::Timeout { .. })) => {
                "upstream_timeout"
            }
            Self::Twilio(ClientError::Refused { .. }) => "twilio_error",
            Self::Twilio(
                ClientError::Upstream(UpstreamError::Unreachable { .. })
                | ClientError::Decode { .. },
            ) => "upstream_unavailable",
            Self::Twilio(ClientError::Encode(_)) | Self::Panicked => "internal_error",
            Self::Store(_) => "store_unavailable",
            Self::InProgress => "handover_in_progress",
            Self::MethodNotAllowed => "method_not_allowed",
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
            Self::NotConfigured(variable) | Self::Twilio(ClientError::NotConfigured(variable)) => {
                format!("Handing over to an agent is not set up yet: {variable} is not set.")
            }
            Self::Twilio(ClientError::Upstream(UpstreamError::Timeout { .. })) => {
                "Our team's system did not answer in time. Please try again in a moment.".into()
            }
            Self::Twilio(e @ ClientError::Refused { .. }) => {
                format!("I couldn't hand this conversation to our team: {e}.")
            }
            Self::Twilio(e) => {
                format!("I couldn't reach our team just now ({e}). Please try again in a moment.")
            }
            Self::Store(_) | Self::InProgress => {
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
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotConfigured(_)
            | Self::Twilio(ClientError::NotConfigured(_) | ClientError::Encode(_))
            | Self::Panicked => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Twilio(ClientError::Upstream(UpstreamError::Timeout { .. })) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::Twilio(_) => StatusCode::BAD_GATEWAY,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InProgress => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        tracing::warn!(error.code = self.code(), error.message = %self, "tool request failed");
        let mut body =
            json!({ "status": "error", "error": self.code(), "message": self.message() });
        if let Self::Twilio(ClientError::Refused { status, error, .. }) = self {
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
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                response.insert_header((actix_web::http::header::ALLOW, "POST"));
            }
            _ => {}
        }
        response.json(body)
    }
}

/// Why a JSON answer about a call (`/call-complete` for Studio,
/// `/polyai/handoff-state`) could not be given. Signature and body errors
/// are refused before, as on every Twilio-facing route ([`RequestError`]).
#[derive(Debug, thiserror::Error)]
pub enum CallLookupError {
    /// No call SID among the parameters the route reads.
    #[error("the request has no call SID: send {0}")]
    MissingCallSid(&'static str),
    /// The call SID is not `CA` and 32 hex digits.
    #[error(transparent)]
    InvalidCallSid(#[from] SidError),
    /// ASAPP has no call transfer for the call.
    #[error(
        "ASAPP has no call transfer for this call (the caller hung up before GenerativeAgent finished)"
    )]
    TransferNotFound,
    /// PolyAI has no handoff state for the call.
    #[error("PolyAI has no handoff state for this call")]
    HandoffStateNotFound,
    /// The vendor call failed.
    #[error(transparent)]
    Vendor(#[from] VendorError),
    /// The lookup's own code panicked: a bug, logged where it happened.
    #[error("{}", PANICKED)]
    Panicked,
}

impl CallLookupError {
    /// Stable code, the JSON `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCallSid(_) => "missing_call_sid",
            Self::InvalidCallSid(_) => "invalid_call_sid",
            Self::TransferNotFound => "asapp_transfer_not_found",
            Self::HandoffStateNotFound => "polyai_handoff_state_not_found",
            Self::Vendor(e) => e.code(),
            Self::Panicked => "internal_error",
        }
    }

    /// The sentence for the flow's author (and the log).
    pub fn message(&self) -> String {
        match self {
            Self::Vendor(e @ VendorError::NotConfigured { vendor, .. }) => {
                format!("{vendor} is not set up: {e}.")
            }
            other => format!("{other}."),
        }
    }
}

impl ResponseError for CallLookupError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingCallSid(_) | Self::InvalidCallSid(_) => StatusCode::BAD_REQUEST,
            Self::TransferNotFound | Self::HandoffStateNotFound => StatusCode::NOT_FOUND,
            Self::Vendor(VendorError::NotConfigured { .. }) | Self::Panicked => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Vendor(e) if e.is_timeout() => StatusCode::GATEWAY_TIMEOUT,
            Self::Vendor(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::NOT_FOUND {
            tracing::info!(error.code = self.code(), "{self}");
        } else {
            tracing::warn!(error.code = self.code(), error.message = %self, "call lookup failed");
        }
        HttpResponse::build(status)
            .json(json!({ "status": "error", "error": self.code(), "message": self.message() }))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody as _;

    use super::*;

    /// The answer to a route whose work panicked, as status and JSON body.
    async fn answer_to_a_panic<E: ResponseError>(
        panicked: fn() -> E,
    ) -> (StatusCode, serde_json::Value) {
        let work = async {
            if MAX_BODY_BYTES > 0 {
                panic!("a bug in a route");
            }
            Ok(())
        };
        let Err(error) = caught(work, panicked).await else {
            panic!("the work panicked, so it failed");
        };
        let response = error.error_response();
        let status = response.status();
        let body = response.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_tool_or_a_call_lookup_that_panics_answers_500_internal_error_in_json() {
        assert_eq!(
            answer_to_a_panic(|| ToolError::Panicked).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"status": "error", "error": "internal_error", "message": "Something went wrong on our side while handing over. Please try again in a moment."})
            )
        );
        assert_eq!(
            answer_to_a_panic(|| CallLookupError::Panicked).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"status": "error", "error": "internal_error", "message": "flexbridge failed on this request (a bug; the panic is logged)."})
            )
        );
    }
}
