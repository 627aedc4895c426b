//! Play Twilio's part of a call end to end against a running flexbridge,
//! and print where the caller ends up.
//!
//! - `watsonx` (the default): the inbound call webhook, the `<Dial
//!   referUrl>` it answers, the assistant's transfer (a SIP REFER, as Twilio
//!   reports it to the referUrl).
//! - `conversation-relay` and `virtual-agent`: the `/connect` webhook, the
//!   `<Connect action>` it answers, and Twilio's request to that action when
//!   the session ends the way `--ending` says (`handoff`, `failed`,
//!   `completed`, `hung-up`), with the parameters Twilio documents.
//!
//! Run `cargo run --release -- --dev` in one terminal, then
//! `cargo run --example simulate_call [-- conversation-relay --ending failed]`
//! in another. Against a deployed instance: `TWILIO_AUTH_TOKEN=… cargo run
//! --example simulate_call -- --base-url https://flexbridge.fly.dev`
//! (requests are then signed).

use clap::{Parser, ValueEnum};
use flexbridge::twilio::SignatureKey;

/// The AI agent whose call is played.
#[derive(Clone, Copy, ValueEnum)]
enum Integration {
    /// IBM watsonx Assistant over SIP.
    Watsonx,
    /// An app on Twilio ConversationRelay.
    ConversationRelay,
    /// A Dialogflow CX agent through `<VirtualAgent>`.
    VirtualAgent,
}

/// How a ConversationRelay or `<VirtualAgent>` session ends.
#[derive(Clone, Copy, ValueEnum)]
enum Ending {
    /// The agent hands the caller to a person.
    Handoff,
    /// The agent's session fails with the caller on the line.
    Failed,
    /// The agent finishes the call itself.
    Completed,
    /// The caller hangs up.
    HungUp,
}

/// Simulate one call through flexbridge.
#[derive(Parser)]
struct Args {
    /// Which AI agent takes the call.
    #[arg(value_enum, default_value = "watsonx")]
    agent: Integration,
    /// How the session ends (ConversationRelay and `<VirtualAgent>`).
    #[arg(long, value_enum, default_value = "handoff")]
    ending: Ending,
    /// Where flexbridge listens.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The URL Twilio would call (sign for), when different (behind a proxy).
    #[arg(long)]
    public_url: Option<String>,
    /// The number the caller dialled.
    #[arg(long, default_value = "+18005551234")]
    called: String,
    /// The session history key the assistant puts in its REFER.
    #[arg(
        long,
        default_value = "dev::latest::893499::dff9c274-adc4-4f63-93de-781166760bf8"
    )]
    session_key: String,
}

const CALL_SID: &str = "CA5e1a0000000000000000000000000001";

/// Twilio's usual voice parameters for this call, plus `extra`.
fn voice_params(called: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", CALL_SID),
        ("CallStatus", "in-progress"),
        ("Called", called),
        ("Caller", "+14155550100"),
        ("Direction", "inbound"),
        ("From", "+14155550100"),
        ("To", called),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    params.sort();
    params
}

/// POST a webhook the way Twilio does (signed when a token is known).
async fn post(
    client: &reqwest::Client,
    args: &Args,
    path: &str,
    params: &[(String, String)],
) -> Result<String, String> {
    let mut request = client.post(format!("{}{path}", args.base_url)).form(params);
    if let Ok(token) = std::env::var("TWILIO_AUTH_TOKEN") {
        let public = args.public_url.as_deref().unwrap_or(&args.base_url);
        request = request.header(
            "X-Twilio-Signature",
            SignatureKey::new(token.trim()).sign(&format!("{public}{path}"), params),
        );
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("POST {path} answered {status}: {body}"))
    }
}

async fn watsonx(client: &reqwest::Client, args: &Args) -> Result<String, String> {
    println!(
        "1. Twilio: incoming call to {} → POST /receive-call",
        args.called
    );
    let twiml = post(
        client,
        args,
        "/receive-call",
        &voice_params(&args.called, &[]),
    )
    .await?;
    let doc = roxmltree::Document::parse(&twiml)
        .map_err(|e| format!("/receive-call answered broken XML: {e}"))?;
    let dial = doc
        .descendants()
        .find(|n| n.has_tag_name("Dial"))
        .ok_or_else(|| format!("/receive-call did not dial the assistant: {twiml}"))?;
    let sip = dial
        .descendants()
        .find(|n| n.has_tag_name("Sip"))
        .and_then(|n| n.text())
        .unwrap_or_default();
    let refer_url = dial.attribute("referUrl").unwrap_or("/refer-handler");
    println!("   flexbridge: dial {sip}, transfers go to {refer_url}");

    println!("2. watsonx: the caller asks for an agent; the assistant sends a SIP REFER");
    let encoded_key: String = url::form_urlencoded::byte_serialize(args.session_key.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let refer_to = format!(
        "<sip:{}@twilio.com?User-to-User={encoded_key}%3Bencoding%3Dascii&X-Watson-Assistant-Session-History-Key={encoded_key}&X-Customer-Tier=gold>",
        args.called
    );
    println!("   Twilio → POST {refer_url} with ReferTransferTarget={refer_to}");
    let path = refer_url
        .strip_prefix(args.public_url.as_deref().unwrap_or(&args.base_url))
        .unwrap_or(refer_url);
    let twiml = post(
        client,
        args,
        path,
        &voice_params(&args.called, &[("ReferTransferTarget", &refer_to)]),
    )
    .await?;
    outcome(refer_url, &twiml)
}

/// Where the TwiML `path` answered leaves the caller: `studio URL`,
/// `flex WORKFLOW ATTRIBUTES` or `hangup …`.
fn outcome(path: &str, twiml: &str) -> Result<String, String> {
    let doc = roxmltree::Document::parse(twiml)
        .map_err(|e| format!("{path} answered broken XML: {e}"))?;
    let verb = doc
        .root_element()
        .first_element_child()
        .ok_or("an empty <Response>")?;

    let outcome = match verb.tag_name().name() {
        "Redirect" => format!("studio {}", verb.text().unwrap_or_default()),
        "Enqueue" => {
            let task = verb
                .first_element_child()
                .and_then(|t| t.text())
                .unwrap_or_default();
            format!(
                "flex {} {task}",
                verb.attribute("workflowSid").unwrap_or_default()
            )
        }
        "Say" => format!("hangup after \"{}\"", verb.text().unwrap_or_default()),
        "Hangup" => "hangup".to_owned(),
        other => format!("unexpected <{other}>: {twiml}"),
    };
    Ok(outcome)
}

/// A ConversationRelay or `<VirtualAgent>` call: connect, then the session
/// ends as `args.ending` says.
async fn ai_session(client: &reqwest::Client, args: &Args) -> Result<String, String> {
    let (connect, noun) = match args.agent {
        Integration::ConversationRelay => ("/conversation-relay/connect", "ConversationRelay"),
        _ => ("/virtual-agent/connect", "VirtualAgent"),
    };
    println!(
        "1. Twilio: incoming call to {} → POST {connect}",
        args.called
    );
    let params = voice_params(&args.called, &[("customerId", "c-42")]);
    let twiml = post(client, args, connect, &params).await?;
    let doc = roxmltree::Document::parse(&twiml)
        .map_err(|e| format!("{connect} answered broken XML: {e}"))?;
    let connected = doc
        .descendants()
        .find(|n| n.has_tag_name("Connect"))
        .ok_or_else(|| format!("{connect} did not connect the call: {twiml}"))?;
    let agent = connected
        .children()
        .find(|n| n.has_tag_name(noun))
        .ok_or_else(|| format!("{connect} did not connect a <{noun}>: {twiml}"))?;
    let action = connected.attribute("action").unwrap_or(connect);
    let target = agent
        .attribute("url")
        .or_else(|| agent.attribute("connectorName"))
        .unwrap_or_default();
    println!("   flexbridge: <{noun}> {target}, then Twilio asks {action}");

    let status = if matches!(args.ending, Ending::HungUp) {
        "completed"
    } else {
        "in-progress"
    };
    let mut session = vec![("CallStatus", status)];
    let handoff = r#"{"reason":"billing","summary":"Disputes a charge","account":"A-1001"}"#;
    let provider = r#"{"ConversationId":"projects/p/locations/global/agents/a/sessions/s-1","EndUserId":"u-1","AgentHandoffParameters":{"reason":"billing","summary":"Disputes a charge"}}"#;
    match args.agent {
        Integration::ConversationRelay => {
            session.extend([
                ("SessionId", "VX5e1a0000000000000000000000000001"),
                ("SessionDuration", "42"),
            ]);
            session.extend(match args.ending {
                Ending::Handoff => vec![("SessionStatus", "ended"), ("HandoffData", handoff)],
                Ending::Failed => vec![
                    ("SessionStatus", "failed"),
                    ("ErrorCode", "64107"),
                    ("ErrorMessage", "The WebSocket closed"),
                ],
                Ending::Completed | Ending::HungUp => vec![("SessionStatus", "completed")],
            });
        }
        _ => {
            session.push(("VirtualAgentProvider", "DialogflowCX"));
            session.extend(match args.ending {
                Ending::Handoff => vec![
                    ("VirtualAgentStatus", "live-agent-handoff"),
                    ("VirtualAgentProviderData", provider),
                ],
                Ending::Failed => vec![
                    ("VirtualAgentStatus", "failed"),
                    ("VirtualAgentErrorCode", "32601"),
                    ("VirtualAgentError", "Provider error"),
                ],
                Ending::Completed => vec![("VirtualAgentStatus", "completed")],
                Ending::HungUp => vec![("VirtualAgentStatus", "hangup")],
            });
        }
    }
    let described: Vec<String> = session.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("2. The session ends: {}", described.join(" "));
    let path = action
        .strip_prefix(args.public_url.as_deref().unwrap_or(&args.base_url))
        .unwrap_or(action);
    // Twilio sends the call's parameters again, with the session's.
    let mut params = voice_params(&args.called, &[]);
    params.retain(|(k, _)| k != "CallStatus");
    params.extend(
        session
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    params.sort();
    let twiml = post(client, args, path, &params).await?;
    outcome(action, &twiml)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let played = match args.agent {
        Integration::Watsonx => watsonx(&client, &args).await,
        Integration::ConversationRelay | Integration::VirtualAgent => {
            ai_session(&client, &args).await
        }
    };
    match played {
        Ok(outcome) => {
            println!(
                "3. The caller ends up: {}",
                outcome
                    .split_once(' ')
                    .map_or(outcome.as_str(), |(kind, _)| kind)
            );
            println!("outcome: {outcome}");
        }
        Err(e) => {
            eprintln!("simulate_call: {e}");
            std::process::exit(1);
        }
    }
}
