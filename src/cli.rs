//! The command line.

use clap::{Parser, Subcommand};

/// One binary for the webhooks that connect AI agents to Twilio Flex.
#[derive(Debug, Parser)]
#[command(name = "flexbridge", version, about)]
pub struct Cli {
    /// Demo settings for trying every route with curl: signature checks off,
    /// placeholder SIP host, Studio URL and Flex SIDs for unset variables.
    #[arg(long, global = true)]
    pub dev: bool,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Print every setting (secrets masked) and which routes are ready;
    /// exit 1 if any set value is malformed.
    CheckConfig(CheckConfigArgs),
    /// Print the X-Twilio-Signature Twilio would send (using
    /// TWILIO_AUTH_TOKEN, or the SharedKey secret with --shared-key) and a
    /// curl command that makes the request.
    Sign(SignArgs),
}

/// Arguments of `flexbridge check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// Also reach the services the settings name (the HANDOVER_STORE Redis,
    /// with a PING); exit 1 if one cannot be reached.
    #[arg(long)]
    pub connect: bool,
}

/// Arguments of `flexbridge sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The full public URL, query included, e.g. https://flexbridge.fly.dev/receive-call
    #[arg(long)]
    pub url: String,
    /// A JSON body to send (signed through a bodySHA256 query parameter).
    #[arg(long, value_name = "FILE")]
    pub body: Option<std::path::PathBuf>,
    /// Sign as Twilio signs a URL a Webhook Rule matches: HMAC-SHA256 with
    /// TWILIO_WEBHOOK_SHARED_KEY_SECRET, and the settings header that says so.
    #[arg(long)]
    pub shared_key: bool,
    /// Form parameters, e.g. Called=+18005551234 CallSid=CA…
    #[arg(value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}
