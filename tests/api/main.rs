//! HTTP-level tests against the real app on a random local port.

mod check_config;
mod dev_mode;
mod faults;
mod flex_handover;
mod health;
mod helpers;
mod limits;
mod metrics;
mod process;
mod receive_call;
mod refer_handler;
mod refer_property;
mod sign_command;
mod signature;
mod signature_oracle;
mod tool_auth;
mod twiml_oracle;
