//! What flexbridge needs of Twilio: reading the request parameters Twilio
//! sends, checking that Twilio sent them, and the REST client that calls it.

pub mod auth;
pub mod client;
mod request;
pub mod signature;

pub use auth::{AuthError, SignedBody, WebhookAuth};
pub use request::{
    CallSidProblem, FormParams, RequestError, TwilioRequest, record_call_sid, with_body,
};
pub use signature::SignatureKey;
