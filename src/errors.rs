//! Request-level errors (body, authentication) and the one place they become
//! HTTP answers. Route-specific failures are mapped elsewhere in one place
//! each: voice routes through [`crate::voice::reply`], which never fails.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};

use crate::twilio::AuthError;

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
        HttpResponse::build(self.status_code())
            .content_type(ContentType::plaintext())
            .body(format!("{self}\n"))
    }
}
