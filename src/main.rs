//! The `flexbridge` binary: parse the command line, then serve or run a tool.

use std::process::ExitCode;

use clap::Parser;
use flexbridge::check_config;
use flexbridge::cli::{CheckConfigArgs, Cli, Command, SignArgs};
use flexbridge::config::Settings;
use flexbridge::domain::HandoverStoreSetting;
use flexbridge::routes;
use flexbridge::sign::{self, SignRequest};
use flexbridge::startup::Application;
use flexbridge::telemetry;
use flexbridge::twilio::SignatureKey;
use flexbridge::twilio::signature::Algorithm;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.dev),
        Command::CheckConfig(args) => check_config_command(&args, cli.dev),
        Command::Sign(args) => sign_command(args),
    }
}

fn check_config_command(args: &CheckConfigArgs, dev: bool) -> ExitCode {
    let (settings, problems) = Settings::load(&|name| std::env::var(name).ok(), dev);
    let mut ok = problems.is_empty();
    ok &= out(&check_config::report(&settings, &problems));
    if args.connect {
        let reached = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("connections\n  cannot start the async runtime: {e}\n"))
            .and_then(|runtime| runtime.block_on(check_config::reach(&settings, &problems)));
        match reached {
            Ok(text) => ok &= out(&text),
            Err(text) => {
                out(&text);
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn sign_command(args: SignArgs) -> ExitCode {
    let (variable, algorithm, settings) = if args.shared_key {
        (
            "TWILIO_WEBHOOK_SHARED_KEY_SECRET",
            Algorithm::HmacSha256,
            Some(sign::SHARED_KEY_SETTINGS),
        )
    } else {
        ("TWILIO_AUTH_TOKEN", Algorithm::HmacSha1, None)
    };
    let Some(token) = std::env::var(variable)
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        eprintln!("flexbridge sign: set {variable}, the secret Twilio signs with");
        return ExitCode::from(2);
    };
    let params: Result<Vec<_>, _> = args.params.iter().map(|p| sign::parse_param(p)).collect();
    let body = match &args.body {
        None => None,
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => Some((path.display().to_string(), bytes)),
            Err(e) => {
                eprintln!("flexbridge sign: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let request = params.map(|params| SignRequest {
        url: args.url.clone(),
        params,
        body,
        settings,
    });
    let key = SignatureKey::with_algorithm(token.trim(), algorithm);
    match request.and_then(|r| sign::sign(&key, &r)) {
        Ok(signed) => {
            let text = format!("{}\n{}\n", signed.headers.join("\n"), signed.curl);
            if out(&text) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("flexbridge sign: {e}");
            ExitCode::from(2)
        }
    }
}

/// Write a command's output to stdout; `false` when it could not be written.
/// Unlike `print!`, a reader that stops early (`| head -1`) is no panic.
fn out(text: &str) -> bool {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            eprintln!("flexbridge: cannot write the output: {e}");
            false
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
    // Held to the end: dropping it writes out the queued log lines.
    let _logs = telemetry::init(settings.log_format);
    raise_open_files_limit();
    announce(&settings);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        tracing::info!(port = app.port(), "flexbridge listening");
        app.run_until_signalled().await
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

/// Raise the soft limit on open files to the hard limit, as Go's runtime
/// does: containerd 2 and systemd start a service at 1,024, fewer than a
/// burst of 1,000 handovers needs (a connection in for each, and those out
/// to Twilio), and Kubernetes has no setting to raise it.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open files limit"),
        Err(e) => tracing::warn!(error.message = %e, "open files limit could not be raised"),
    }
}

/// Say at start-up what is missing, so a misconfiguration shows in the first log lines.
fn announce(settings: &Settings) {
    if settings.dev {
        tracing::warn!("--dev: demo settings; never expose this instance to the internet");
    }
    match check_config::signature_status(settings) {
        Ok(status) => tracing::info!("request signatures {status}"),
        Err(status) if settings.twilio.validate_signatures => {
            tracing::error!(
                variable = "TWILIO_AUTH_TOKEN",
                "request signatures: {status}"
            );
        }
        Err(status) => tracing::warn!("request signature checks are {status}"),
    }
    match &settings.tools.handover_store {
        HandoverStoreSetting::Memory => tracing::info!(
            "handover store: in-process (dedup per instance; set HANDOVER_STORE to share it)"
        ),
        HandoverStoreSetting::Redis(url) => {
            tracing::info!(store = %url, "handover store: Redis, shared by every instance");
        }
    }
    for route in routes::ROUTES {
        let Some(ready) = route.ready else { continue };
        match ready(settings) {
            Ok(what) => tracing::info!(route = route.path, "{what}"),
            Err(todo) => tracing::warn!(
                route = route.path,
                "not configured, {}: {todo}",
                routes::when_not_ready(route)
            ),
        }
    }
}
