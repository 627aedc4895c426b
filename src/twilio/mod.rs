//! What flexbridge needs of Twilio's webhook protocol: reading the request
//! parameters Twilio sends and checking that Twilio sent them.

pub mod auth;
pub mod client;
mod request;
pub mod signature;

pub use auth::{AuthError, SignedBody, WebhookAuth};
pub use request::{
    CallSidProblem, FormParams, RequestError, TwilioRequest, record_call_sid, with_body,
};
pub use signature::SignatureKey;
