//! The JSON answers about a call that a Studio flow reads
//! (`/call-complete?format=json`, `/polyai/handoff-state`), and why they
//! could not be given. Signature and body errors are refused before, as on
//! every Twilio-facing route.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::SidError;
use crate::twilio::CallSidProblem;
use crate::vendors::VendorError;

/// Why a JSON answer about a call could not be given.
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
    /// The lookup's own code panicked: a bug, logged where it was caught.
    #[error("flexbridge failed on this request (a bug; the panic is logged)")]
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

impl CallSidProblem {
    /// As a JSON-route error; `accepted` names the parameters to send.
    pub fn for_lookup(self, accepted: &'static str) -> CallLookupError {
        match self {
            Self::Missing => CallLookupError::MissingCallSid(accepted),
            Self::Invalid(e) => CallLookupError::InvalidCallSid(e),
        }
    }
}
