//! Request-level errors (body, authentication) and the one place they become
//! HTTP answers. Route-specific failures are mapped elsewhere in one place
//! each: voice routes through [`crate::voice::reply`], which never fails.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};

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
}

impl ResponseError for RequestError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .content_type(ContentType::plaintext())
            .body(format!("{self}\n"))
    }
}
