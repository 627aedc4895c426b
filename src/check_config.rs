//! `flexbridge check-config`: what the service would run with.

use std::fmt::Write as _;
use std::net::IpAddr;

use secrecy::SecretString;

use crate::config::{ConfigProblem, Settings};
use crate::domain::HandoverStoreSetting;
use crate::routes::ROUTES;
use crate::twilio::client::{ClientError, TwilioClient};
use crate::upstream::Upstream;

/// Width of the report's first column: the longest variable name,
/// `CONVERSATION_RELAY_WELCOME_GREETING`, so every value lines up.
const NAME_WIDTH: usize = 35;

/// A variable's line in the report.
enum Shown {
    Value(String),
    Secret(bool),
    Unset(&'static str),
}

/// A value that is always set.
fn value(text: impl ToString) -> Shown {
    Shown::Value(text.to_string())
}

/// An optional value; `unset` says what happens without it.
fn opt<T: AsRef<str>>(value: &Option<T>, unset: &'static str) -> Shown {
    value
        .as_ref()
        .map_or(Shown::Unset(unset), |v| Shown::Value(v.as_ref().to_owned()))
}

fn secret(value: &Option<SecretString>) -> Shown {
    Shown::Secret(value.is_some())
}

/// The variables and how each is shown.
fn variables(s: &Settings) -> Vec<(&'static str, Shown)> {
    let (t, voice, tools, relay) = (&s.twilio, &s.voice, &s.tools, &s.relay);
    let from_proxy = "rebuilt per request from X-Forwarded-Proto / X-Forwarded-Host / Host";
    vec![
        ("HOST", value(&s.host)),
        ("PORT", value(s.port)),
        ("PUBLIC_BASE_URL", opt(&s.public_base_url, from_proxy)),
        ("KEEP_ALIVE_SECONDS", value(s.keep_alive.as_secs())),
        ("TWILIO_ACCOUNT_SID", opt(&t.account_sid, "unset")),
        ("TWILIO_AUTH_TOKEN", secret(&t.auth_token)),
        (
            "TWILIO_SECONDARY_AUTH_TOKEN",
            secret(&t.secondary_auth_token),
        ),
        (
            "TWILIO_WEBHOOK_SHARED_KEY_SECRET",
            secret(&t.webhook_shared_key_secret),
        ),
        (
            "TWILIO_SECONDARY_SHARED_KEY_SECRET",
            secret(&t.secondary_shared_key_secret),
        ),
        ("TWILIO_API_KEY", opt(&t.api_key, "unset")),
        ("TWILIO_API_SECRET", secret(&t.api_secret)),
        ("TWILIO_VALIDATE_SIGNATURES", value(t.validate_signatures)),
        ("TWILIO_API_BASE_URL", value(t.api_base_url.as_ref())),
        ("FLEX_API_BASE_URL", value(t.flex_api_base_url.as_ref())),
        (
            "CONVERSATIONS_API_BASE_URL",
            value(t.conversations_api_base_url.as_ref()),
        ),
        (
            "TASKROUTER_API_BASE_URL",
            value(t.taskrouter_api_base_url.as_ref()),
        ),
        ("STUDIO_API_BASE_URL", value(t.studio_api_base_url.as_ref())),
        ("SIP_URI_HOST", opt(&voice.sip_uri_host, "unset")),
        ("SIP_SECURE", value(voice.sip_secure)),
        (
            "STUDIO_WEBHOOK_URL",
            opt(&voice.studio_webhook_url, "unset"),
        ),
        ("FLEX_WORKSPACE_SID", opt(&s.flex.workspace_sid, "unset")),
        ("FLEX_WORKFLOW_SID", opt(&s.flex.workflow_sid, "unset")),
        ("TOOL_API_KEY", secret(&tools.api_key)),
        (
            "HANDOVER_DEDUP_SECONDS",
            value(tools.handover_dedup.as_secs()),
        ),
        (
            "HANDOVER_STORE",
            match &tools.handover_store {
                HandoverStoreSetting::Memory => {
                    Shown::Unset("memory: in-process, dedup per instance")
                }
                HandoverStoreSetting::Redis(url) => value(url.masked()),
            },
        ),
        ("STUDIO_FLOW_SID", opt(&tools.studio_flow_sid, "unset")),
        ("UPSTREAM_TIMEOUT_MS", value(s.upstream_timeout.as_millis())),
        (
            "UPSTREAM_MAX_CONNECTIONS",
            value(s.upstream_max_connections),
        ),
        ("ASAPP_API_HOST", opt(&s.asapp.api_host, "unset")),
        ("ASAPP_API_ID", opt(&s.asapp.api_id, "unset")),
        ("ASAPP_API_SECRET", secret(&s.asapp.api_secret)),
        ("POLYAI_API_BASE_URL", value(s.polyai.api_base_url.as_ref())),
        ("POLYAI_API_KEY", secret(&s.polyai.api_key)),
        ("POLYAI_CONNECTOR_ID", opt(&s.polyai.connector_id, "unset")),
        (
            "POLYAI_CONNECT_MESSAGE",
            opt(&s.polyai.connect_message, "unset: nothing is said"),
        ),
        ("CONVERSATION_RELAY_URL", opt(&relay.url, "unset")),
        (
            "CONVERSATION_RELAY_WELCOME_GREETING",
            opt(&relay.welcome_greeting, "unset: the agent speaks first"),
        ),
        (
            "CONVERSATION_RELAY_LANGUAGE",
            opt(&relay.language, "unset: Twilio's default, en-US"),
        ),
        (
            "CONVERSATION_CONFIGURATION_ID",
            opt(
                &relay.conversation_configuration,
                "unset: no Conversation Orchestrator",
            ),
        ),
        (
            "DIALOGFLOW_CX_CONNECTOR_NAME",
            opt(&s.dialogflow_connector, "unset"),
        ),
        ("FALLBACK_MESSAGE", value(&voice.fallback_message)),
        ("METRICS_TOKEN", secret(&s.metrics_token)),
        (
            "LOG_FORMAT",
            s.log_format
                .map_or(Shown::Unset("pretty on a terminal, else json"), |f| {
                    value(format!("{f:?}").to_lowercase())
                }),
        ),
    ]
}

/// What the signature policy is, and whether that is a problem.
///
/// # Errors
/// The policy, when requests go unchecked or signed routes fail closed.
pub fn signature_status(s: &Settings) -> Result<String, &'static str> {
    let t = &s.twilio;
    if !t.validate_signatures {
        return Err(if s.dev {
            "OFF (--dev)"
        } else {
            "OFF (TWILIO_VALIDATE_SIGNATURES=false): anyone who finds the URL can call it"
        });
    }
    const ROTATING: &str = " (rotating: remove the one Twilio no longer signs with, see flexbridge_signatures_accepted_total{token})";
    let tokens = match (t.auth_token.is_some(), t.secondary_auth_token.is_some()) {
        (true, false) => Some("checked with TWILIO_AUTH_TOKEN".to_owned()),
        (true, true) => Some(format!(
            "checked with TWILIO_AUTH_TOKEN or TWILIO_SECONDARY_AUTH_TOKEN{ROTATING}"
        )),
        (false, true) => Some("checked with TWILIO_SECONDARY_AUTH_TOKEN only".to_owned()),
        (false, false) => None,
    };
    // The names, and the rotation's note.
    let shared = match (
        t.webhook_shared_key_secret.is_some(),
        t.secondary_shared_key_secret.is_some(),
    ) {
        (true, false) => Some(("TWILIO_WEBHOOK_SHARED_KEY_SECRET", "")),
        (true, true) => Some((
            "TWILIO_WEBHOOK_SHARED_KEY_SECRET or TWILIO_SECONDARY_SHARED_KEY_SECRET",
            ROTATING,
        )),
        (false, true) => Some(("TWILIO_SECONDARY_SHARED_KEY_SECRET", "")),
        (false, false) => None,
    };
    match (tokens, shared) {
        (Some(tokens), None) => Ok(tokens),
        (Some(tokens), Some((names, note))) => {
            Ok(format!("{tokens}; SharedKey signatures with {names}{note}"))
        }
        (None, Some((names, note))) => Ok(format!(
            "checked with {names} only{note}: a request signed with the auth token answers 500 until TWILIO_AUTH_TOKEN is set"
        )),
        (None, None) => {
            Err("FAIL CLOSED: every signed route answers 500 until TWILIO_AUTH_TOKEN is set")
        }
    }
}

/// The whole report, and whether every set value was well formed.
pub fn report(settings: &Settings, problems: &[ConfigProblem]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flexbridge configuration{}",
        if settings.dev { " (--dev)" } else { "" }
    );
    for (variable, shown) in variables(settings) {
        let text = match problems.iter().find(|p| p.variable == variable) {
            Some(problem) => format!("INVALID: {}", problem.message),
            None => match shown {
                Shown::Value(v) => v,
                Shown::Secret(true) => "set (hidden)".to_owned(),
                Shown::Secret(false) => "(unset)".to_owned(),
                Shown::Unset(why) => format!("({why})"),
            },
        };
        let _ = writeln!(out, "  {variable:<NAME_WIDTH$} {text}");
    }
    let signatures = signature_status(settings).unwrap_or_else(str::to_owned);
    let _ = writeln!(out, "signatures");
    let _ = writeln!(out, "  {:<NAME_WIDTH$} {signatures}", "X-Twilio-Signature");
    let _ = writeln!(out, "routes");
    for route in ROUTES {
        let Some(ready) = route.ready else { continue };
        let text = match ready(settings) {
            Ok(what) => format!("ready: {what}"),
            Err(todo) if route.answers.falls_back() => format!("fallback only: {todo}"),
            Err(todo) => format!("not ready: {todo}"),
        };
        let _ = writeln!(out, "  {:<NAME_WIDTH$} {text}", route.path);
    }
    if problems.is_empty() {
        let _ = writeln!(out, "ok: every set value is well formed");
    } else {
        let _ = writeln!(out, "error: {} malformed value(s)", problems.len());
    }
    out
}

/// How long `check-config --connect` waits for each thing it reaches.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The `--connect` part of the report: reach the handover store, ask
/// Twilio whether the workflow and the Studio flow flexbridge sends calls to
/// exist, and resolve the SIP host it dials. `Err` carries the report when
/// any of them failed.
///
/// # Errors
/// When the store cannot be reached, Twilio does not confirm a resource or
/// the SIP host has no public address (the text says why, secrets masked).
pub async fn reach(settings: &Settings, problems: &[ConfigProblem]) -> Result<String, String> {
    let lines = [
        ("HANDOVER_STORE", reach_store(settings, problems).await),
        (
            "FLEX_WORKFLOW_SID",
            reach_workflow(settings, problems).await,
        ),
        ("STUDIO_WEBHOOK_URL", reach_flow(settings, problems).await),
        ("SIP_URI_HOST", reach_sip_host(settings, problems).await),
    ];
    let mut out = String::from("connections\n");
    for (name, (text, _)) in &lines {
        let _ = writeln!(out, "  {name:<NAME_WIDTH$} {text}");
    }
    let mut failed = false;
    for (name, (_, error)) in &lines {
        if let Some(error) = error {
            let _ = writeln!(out, "error: {name}: {error}");
            failed = true;
        }
    }
    if failed { Err(out) } else { Ok(out) }
}

/// A `--connect` line, and what its error line says when it failed.
type Reached = (String, Option<&'static str>);

async fn reach_store(settings: &Settings, problems: &[ConfigProblem]) -> Reached {
    if problems.iter().any(|p| p.variable == "HANDOVER_STORE") {
        return ("not reached: the value is malformed".to_owned(), None);
    }
    let HandoverStoreSetting::Redis(url) = &settings.tools.handover_store else {
        return ("in-process store: nothing to reach".to_owned(), None);
    };
    match crate::handover::ping(url, CONNECT_TIMEOUT).await {
        Ok(elapsed) => {
            let ms = elapsed.as_secs_f64() * 1000.0;
            let text = format!("reachable: {} answered PING in {ms:.1} ms", url.masked());
            (text, None)
        }
        Err(e) => (
            format!("UNREACHABLE: {}: {}", url.masked(), e.0),
            Some("cannot be reached (flexbridge would run, remembering handovers per instance)"),
        ),
    }
}

/// Only TaskRouter can tell that a well-formed SID is not a workflow of the
/// workspace, and a call enqueued into it never reaches an agent.
async fn reach_workflow(settings: &Settings, problems: &[ConfigProblem]) -> Reached {
    let (base, flex) = (&settings.twilio.taskrouter_api_base_url, &settings.flex);
    let url = match (&flex.workspace_sid, &flex.workflow_sid) {
        (Some(ws), Some(ww)) => Ok(base.join(&format!("/v1/Workspaces/{ws}/Workflows/{ww}"))),
        (None, Some(_)) => Err("set FLEX_WORKSPACE_SID to check it"),
        (_, None) => Err("unset"),
    };
    let needed = &[
        "FLEX_WORKSPACE_SID",
        "FLEX_WORKFLOW_SID",
        "TASKROUTER_API_BASE_URL",
    ];
    let gone = "not a workflow of FLEX_WORKSPACE_SID: a call enqueued into it ends without reaching an agent";
    look_up(settings, problems, needed, url, gone).await
}

/// A Studio webhook URL of no flow of this account ends every call sent
/// back to Studio: the watsonx transfers and every voice fallback.
async fn reach_flow(settings: &Settings, problems: &[ConfigProblem]) -> Reached {
    let base = &settings.twilio.studio_api_base_url;
    let url = match &settings.voice.studio_webhook_url {
        Some(webhook) => webhook
            .flow_sid()
            .map(|flow| base.join(&format!("/v2/Flows/{flow}")))
            .ok_or("not a Trigger webhook URL of Twilio's US1 region (https://webhooks.twilio.com/…/Flows/FW…)"),
        None => Err("unset"),
    };
    let needed = &["STUDIO_WEBHOOK_URL", "STUDIO_API_BASE_URL"];
    let gone = "not a Studio flow of this account: a call sent back to Studio ends there";
    look_up(settings, problems, needed, url, gone).await
}

/// Twilio dials a SIP host only when it resolves to a public address (its
/// warning 13254), and `/receive-call`'s `<Dial>` has no `action`: a call
/// whose SIP leg cannot start ends there.
async fn reach_sip_host(settings: &Settings, problems: &[ConfigProblem]) -> Reached {
    let host = settings.voice.sip_uri_host.as_ref().ok_or("unset");
    let name = match checkable(settings, problems, &["SIP_URI_HOST"], host) {
        Ok(host) => host.name(),
        Err(skipped) => return skipped,
    };
    // The port only completes the socket address lookup_host wants.
    let resolved =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((name, 5060))).await {
            Ok(Ok(addresses)) => Ok(addresses.map(|a| a.ip()).collect()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        };
    sip_host_line(resolved)
}

/// The `SIP_URI_HOST` line for what DNS answered.
fn sip_host_line(resolved: Result<Vec<IpAddr>, String>) -> Reached {
    const UNDIALLED: Option<&str> = Some(
        "Twilio dials only a host that resolves to a public address (its warning 13254): a call /receive-call sends to the assistant ends there",
    );
    let mut addresses = match resolved {
        Ok(addresses) if !addresses.is_empty() => addresses,
        Ok(_) => return ("NOT RESOLVED: no address".to_owned(), UNDIALLED),
        Err(e) => return (format!("NOT RESOLVED: {e}"), UNDIALLED),
    };
    addresses.sort_unstable();
    addresses.dedup();
    let listed = addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if addresses.iter().copied().any(is_public) {
        (format!("resolves to {listed}"), None)
    } else {
        (format!("NOT PUBLIC: resolves to {listed} only"), UNDIALLED)
    }
}

/// Whether Twilio could reach `ip` from the internet: not loopback, private,
/// link-local, shared (carrier-grade NAT), documentation, unspecified or
/// broadcast, nor an IPv6 loopback, unique-local or link-local address.
fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_documentation()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || (a == 100 && b & 0xc0 == 64))
        }
        IpAddr::V6(ip) => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_unique_local()
                || ip.is_unicast_link_local())
        }
    }
}

/// The line of a check that is not run.
fn skip(why: &str) -> Reached {
    (format!("not checked: {why}"), None)
}

/// `value` when a `--connect` check can use it: not under `--dev` (demo
/// values), and with every `needed` variable well formed (the report above
/// already fails on one that is not); else the line saying why not.
fn checkable<T>(
    settings: &Settings,
    problems: &[ConfigProblem],
    needed: &[&str],
    value: Result<T, &str>,
) -> Result<T, Reached> {
    if problems.iter().any(|p| needed.contains(&p.variable)) {
        return Err(skip("a value it needs is malformed"));
    }
    match value {
        Ok(_) if settings.dev => Err(skip("--dev")),
        Ok(value) => Ok(value),
        Err(why) => Err(skip(why)),
    }
}

/// Ask Twilio for the resource at `url` (built from the `needed`
/// variables) with the REST credentials: found, Twilio's 404 (`gone` says
/// what that means for callers), or why it was not checked.
async fn look_up(
    settings: &Settings,
    problems: &[ConfigProblem],
    needed: &[&str],
    url: Result<String, &str>,
    gone: &'static str,
) -> Reached {
    const UNCONFIRMED: Option<&str> = Some("Twilio did not confirm it");
    let url = match checkable(settings, problems, needed, url) {
        Ok(url) => url,
        Err(skipped) => return skipped,
    };
    let client = match Upstream::new(CONNECT_TIMEOUT, 1) {
        Ok(upstream) => TwilioClient::new(settings, upstream),
        Err(e) => return (format!("NOT CHECKED: {e}"), UNCONFIRMED),
    };
    match client.friendly_name(&url).await {
        Ok(name) => (format!("found: \"{name}\""), None),
        Err(ClientError::NotConfigured(variable)) => skip(&format!("set {variable} to check it")),
        Err(e @ ClientError::Refused { status: 404, .. }) => {
            (format!("NOT FOUND: {e}"), Some(gone))
        }
        Err(e) => (format!("NOT CHECKED: {e}"), UNCONFIRMED),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A variable the settings read but the report leaves out would be a
    /// setting the user cannot check.
    #[test]
    fn the_report_shows_every_variable_the_settings_read() {
        let read = Mutex::new(Vec::new());
        let lookup = |name: &str| {
            read.lock().unwrap().push(name.to_owned());
            None
        };
        let (settings, _) = Settings::load(&lookup, false);
        let shown: Vec<&str> = variables(&settings).iter().map(|(name, _)| *name).collect();

        let read = read.into_inner().unwrap();
        assert!(read.len() >= 30, "{read:?}");
        for name in &read {
            assert!(shown.contains(&name.as_str()), "{name} is not shown");
        }
    }

    /// The signature line names the secrets that are set, pair by pair:
    /// one alone, or both with the rotation's note.
    #[test]
    fn the_signature_line_names_each_pair_of_secrets_that_is_set() {
        const ROTATING: &str = " (rotating: remove the one Twilio no longer signs with, see flexbridge_signatures_accepted_total{token})";
        let cases = [
            (["TWILIO_SECONDARY_AUTH_TOKEN"].as_slice(), "checked with TWILIO_SECONDARY_AUTH_TOKEN only".to_owned()),
            (
                &["TWILIO_SECONDARY_AUTH_TOKEN", "TWILIO_SECONDARY_SHARED_KEY_SECRET"],
                "checked with TWILIO_SECONDARY_AUTH_TOKEN only; SharedKey signatures with TWILIO_SECONDARY_SHARED_KEY_SECRET".to_owned(),
            ),
            (
                &["TWILIO_AUTH_TOKEN", "TWILIO_WEBHOOK_SHARED_KEY_SECRET", "TWILIO_SECONDARY_SHARED_KEY_SECRET"],
                format!("checked with TWILIO_AUTH_TOKEN; SharedKey signatures with TWILIO_WEBHOOK_SHARED_KEY_SECRET or TWILIO_SECONDARY_SHARED_KEY_SECRET{ROTATING}"),
            ),
            (
                &["TWILIO_AUTH_TOKEN", "TWILIO_SECONDARY_AUTH_TOKEN", "TWILIO_WEBHOOK_SHARED_KEY_SECRET"],
                format!("checked with TWILIO_AUTH_TOKEN or TWILIO_SECONDARY_AUTH_TOKEN{ROTATING}; SharedKey signatures with TWILIO_WEBHOOK_SHARED_KEY_SECRET"),
            ),
            (
                &["TWILIO_SECONDARY_SHARED_KEY_SECRET"],
                "checked with TWILIO_SECONDARY_SHARED_KEY_SECRET only: a request signed with the auth token answers 500 until TWILIO_AUTH_TOKEN is set".to_owned(),
            ),
        ];
        for (set, expected) in cases {
            let lookup = |name: &str| set.contains(&name).then(|| "a-secret".to_owned());
            let (settings, _) = Settings::load(&lookup, false);

            assert_eq!(signature_status(&settings), Ok(expected), "{set:?}");
        }
    }

    /// Twilio's warning 13254: a SIP host must resolve, and to an address
    /// Twilio can reach from the internet.
    #[test]
    fn the_sip_host_line_fails_unless_an_address_is_public() {
        let ips = |list: &[&str]| Ok(list.iter().map(|ip| ip.parse().unwrap()).collect());
        let cases = [
            (
                ips(&["52.1.2.3", "10.0.0.7", "52.1.2.3"]),
                "resolves to 10.0.0.7, 52.1.2.3",
                true,
            ),
            (ips(&["2600:1f18::7"]), "resolves to 2600:1f18::7", true),
            (ips(&["100.128.0.1"]), "resolves to 100.128.0.1", true),
            (
                ips(&["127.0.0.1", "::1"]),
                "NOT PUBLIC: resolves to 127.0.0.1, ::1 only",
                false,
            ),
            (
                ips(&["100.64.0.1", "169.254.1.1", "192.168.1.9", "0.0.0.0"]),
                "NOT PUBLIC: resolves to 0.0.0.0, 100.64.0.1, 169.254.1.1, 192.168.1.9 only",
                false,
            ),
            (
                ips(&["203.0.113.5", "255.255.255.255"]),
                "NOT PUBLIC: resolves to 203.0.113.5, 255.255.255.255 only",
                false,
            ),
            (
                ips(&["fd00::1", "fe80::1", "::ffff:172.16.0.1", "::"]),
                "NOT PUBLIC: resolves to ::, ::ffff:172.16.0.1, fd00::1, fe80::1 only",
                false,
            ),
            (ips(&[]), "NOT RESOLVED: no address", false),
            (
                Err("failed to lookup address information: Name or service not known".to_owned()),
                "NOT RESOLVED: failed to lookup address information: Name or service not known",
                false,
            ),
        ];
        for (resolved, line, public) in cases {
            let (text, error) = sip_host_line(resolved);

            assert_eq!(text, line);
            assert_eq!(error.is_none(), public, "{line}");
        }
    }

    /// Every value starts in the same column, whichever name is longest.
    #[test]
    fn every_value_in_the_report_starts_in_one_column() {
        for dev in [false, true] {
            let (settings, problems) = Settings::load(&|_| None, dev);
            let report = report(&settings, &problems);
            let lines: Vec<&str> = report.lines().filter(|l| l.starts_with("  ")).collect();

            assert!(lines.len() > 40, "{report}");
            for line in lines {
                let (name, value) = line.split_at(2 + NAME_WIDTH);
                assert!(!name.trim().contains(' '), "{line}");
                assert!(
                    value.starts_with(' ') && !value[1..].starts_with(' '),
                    "{line}"
                );
            }
        }
    }
}
