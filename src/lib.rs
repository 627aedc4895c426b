//! flexbridge: the webhooks that connect AI voice and chat agents to Twilio
//! Flex, in one service.
//!
//! # Layout
//!
//! - [`config`]: settings from the environment, parsed once into typed values.
//! - [`domain`]: the values routes work with (SIDs, E.164 numbers, SIP
//!   Refer-To and User-to-User, URLs), each parsed, never re-validated.
//! - [`twiml`]: TwiML documents written through quick-xml.
//! - [`twilio`]: Twilio's webhook protocol (request parameters, signatures).
//! - [`voice`]: voice answers and the fallback that keeps callers in care.
//! - [`handoff`]: the `handoff` task attribute every vendor's Flex task
//!   carries, within TaskRouter's size limit.
//! - [`handover`]: handovers of AI Assistant sessions to Flex or Studio, and
//!   the store that makes them happen once (in-process, or shared by every
//!   instance through Redis, failing open when it is down).
//! - [`upstream`]: outbound HTTP (pooling, deadline, safe retries);
//!   [`twilio::client`] the typed Twilio REST client on it, [`vendors`] the
//!   ASAPP and PolyAI clients.
//! - [`routes`]: the route table (panics caught there, once), one handler
//!   module per route, and the HTTP errors of the tool and lookup routes;
//!   [`startup`] builds the server and the one layer around every request
//!   (route label, in flight, request id); [`shutdown`] drains requests on
//!   SIGTERM/SIGINT.
//! - [`telemetry`]: logs and the per-request span; [`metrics`]: Prometheus metrics.
//! - [`cli`], [`check_config`], [`sign`]: the command line.
//!
//! Errors are typed per concern with thiserror, each mapped to its HTTP
//! answer in one place. Voice routes never surface an error to Twilio:
//! [`voice::VoiceAnswer`] turns every failure into TwiML.

#![warn(missing_docs)]

pub mod check_config;
pub mod cli;
pub mod config;
pub mod domain;
pub mod handoff;
pub mod handover;
pub mod metrics;
pub mod routes;
pub mod shutdown;
pub mod sign;
pub mod startup;
pub mod telemetry;
pub mod twilio;
pub mod twiml;
pub mod upstream;
pub mod vendors;
pub mod voice;
