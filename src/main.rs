//! The `flexbridge` binary: parse the command line, then serve or run a tool.

use std::process::ExitCode;

use clap::Parser;
use flexbridge::check_config;
use flexbridge::cli::{Cli, Command};
use flexbridge::config::Settings;
use flexbridge::startup::Application;
use flexbridge::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.dev),
        Command::CheckConfig => {
            let (settings, problems) = Settings::load(&|name| std::env::var(name).ok(), cli.dev);
            print!("{}", check_config::report(&settings, &problems));
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn serve(dev: bool) -> ExitCode {
    let settings = match Settings::from_env(dev) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("flexbridge: refusing to start, malformed configuration: {e}");
            eprintln!("run `flexbridge check-config` for the full report");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    announce(&settings);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        tracing::info!(port = app.port(), "flexbridge listening");
        app.run_until_stopped().await
    });
    match result {
        Ok(()) => {
            tracing::info!("flexbridge stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error.message = %e, "flexbridge failed");
            eprintln!("flexbridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Say at start-up what is missing, so a misconfiguration shows in the first log lines.
fn announce(settings: &Settings) {
    if settings.dev {
        tracing::warn!(
            "--dev: demo settings, signature checks OFF; never expose this instance to the internet"
        );
    }
    for (route, readiness) in check_config::route_readiness(settings) {
        match readiness {
            Ok(what) => tracing::info!(route, "{what}"),
            Err(todo) => tracing::warn!(route, "not configured, answers with the fallback: {todo}"),
        }
    }
}
