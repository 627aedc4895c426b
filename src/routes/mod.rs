//! HTTP handlers, one module per route (or per vendor's pair of routes).

mod health;
mod metrics;
mod receive_call;
mod refer_handler;
mod tools;

pub use health::healthz;
pub use metrics::{metrics, record_request};
pub use receive_call::receive_call;
pub use refer_handler::refer_handler;
pub use tools::{flex_handover, studio_handover};

use tracing_actix_web::RootSpan;

use crate::domain::CallSid;
use crate::twilio::TwilioRequest;

/// The request's `CallSid`, recorded on the request span when well formed.
fn call_sid(request: &TwilioRequest, span: &RootSpan) -> Option<CallSid> {
    let sid = CallSid::parse(request.get("CallSid")?).ok()?;
    span.record("call_sid", sid.as_ref());
    Some(sid)
}
