//! HTTP handlers, one module per route (or per vendor's pair of routes).

mod asapp;
mod health;
mod metrics;
mod polyai;
mod receive_call;
mod refer_handler;
mod tools;

pub use asapp::{call_complete, engage};
pub use health::healthz;
pub use metrics::metrics;
pub use polyai::{
    call_complete as polyai_call_complete, connect as polyai_connect,
    handoff_state as polyai_handoff_state,
};
pub use receive_call::receive_call;
pub use refer_handler::refer_handler;
pub use tools::{flex_handover, is_tool, studio_handover, tool_method_not_allowed};

use tracing_actix_web::RootSpan;

use crate::domain::{CallSid, SidError};
use crate::errors::CallLookupError;
use crate::twilio::TwilioRequest;
use crate::voice::VoiceError;

/// The request's `CallSid`, recorded on the request span when well formed.
fn call_sid(request: &TwilioRequest, span: &RootSpan) -> Option<CallSid> {
    let sid = CallSid::parse(request.get("CallSid")?).ok()?;
    span.record("call_sid", sid.as_ref());
    Some(sid)
}

/// Why a route that needs a call SID has none to work with.
enum CallSidProblem {
    /// None of the accepted parameters is present.
    Missing,
    /// The first one present is not a call SID.
    Invalid(SidError),
}

/// The call SID in the first of `names` the request carries (each looked
/// up in the form body, then the query), recorded on the request span.
fn call_sid_in(
    request: &TwilioRequest,
    span: &RootSpan,
    names: &[&str],
) -> Result<CallSid, CallSidProblem> {
    let text = names
        .iter()
        .find_map(|name| request.get(name))
        .ok_or(CallSidProblem::Missing)?;
    let sid = CallSid::parse(text).map_err(CallSidProblem::Invalid)?;
    span.record("call_sid", sid.as_ref());
    Ok(sid)
}

impl From<CallSidProblem> for VoiceError {
    fn from(problem: CallSidProblem) -> Self {
        match problem {
            CallSidProblem::Missing => Self::MissingCallSid,
            CallSidProblem::Invalid(e) => Self::InvalidCallSid(e),
        }
    }
}

impl CallSidProblem {
    /// As a JSON-route error; `accepted` names the parameters to send.
    fn for_lookup(self, accepted: &'static str) -> CallLookupError {
        match self {
            Self::Missing => CallLookupError::MissingCallSid(accepted),
            Self::Invalid(e) => CallLookupError::InvalidCallSid(e),
        }
    }
}
