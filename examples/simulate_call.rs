//! Play Twilio's part of a watsonx call end to end against a running
//! flexbridge: the inbound call webhook, the `<Dial referUrl>` it answers,
//! the assistant's transfer (a SIP REFER, as Twilio reports it to the
//! referUrl), and where the caller ends up.
//!
//! Run `cargo run --release -- --dev` in one terminal, then
//! `cargo run --example simulate_call` in another. Against a deployed
//! instance: `TWILIO_AUTH_TOKEN=… cargo run --example simulate_call --
//! --base-url https://flexbridge.fly.dev` (requests are then signed).

use clap::Parser;
use flexbridge::twilio::SignatureKey;

/// Simulate one call through flexbridge's watsonx routes.
#[derive(Parser)]
struct Args {
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

async fn run(args: &Args) -> Result<String, String> {
    let client = reqwest::Client::new();

    println!(
        "1. Twilio: incoming call to {} → POST /receive-call",
        args.called
    );
    let twiml = post(
        &client,
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
        &client,
        args,
        path,
        &voice_params(&args.called, &[("ReferTransferTarget", &refer_to)]),
    )
    .await?;
    let doc = roxmltree::Document::parse(&twiml)
        .map_err(|e| format!("{refer_url} answered broken XML: {e}"))?;
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
        other => format!("unexpected <{other}>: {twiml}"),
    };
    Ok(outcome)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(&args).await {
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
