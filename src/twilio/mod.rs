//! What flexbridge needs of Twilio's webhook protocol: reading the request
//! parameters Twilio sends.

mod request;

pub use request::{TwilioRequest, read_body};
