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
    CheckConfig,
}
