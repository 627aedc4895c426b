//! HTTP-level tests against the real app on a random local port.

mod ai_sessions;
mod asapp;
mod check_config;
mod dev_mode;
mod faults;
mod flex_handover;
mod health;
mod helpers;
mod limits;
mod metrics;
mod observability;
mod openapi;
mod polyai;
mod process;
mod receive_call;
mod redis_server;
mod refer_handler;
mod refer_property;
mod shared_store;
mod shutdown;
mod sign_command;
mod signature;
mod signature_oracle;
mod telemetry;
mod tool_auth;
mod twiml_oracle;
