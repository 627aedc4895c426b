//! Settings, read once from the environment at start-up into typed values.
//!
//! Every variable is optional: a route whose settings are missing answers
//! with its fallback and logs which variable it needs. A variable that is
//! *set but malformed* is an error reported with the variable's name, so a
//! typo is caught by `flexbridge check-config` or at start-up, not by a caller.
//! An empty value counts as unset.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::{
    AccountSid, ApiBaseUrl, ApiKeySid, FlowSid, HandoverStoreSetting, PublicBaseUrl, SipHost,
    StudioWebhookUrl, WebSocketUrl, WorkflowSid, WorkspaceSid,
};

/// Everything flexbridge is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`HOST`).
    pub host: String,
    /// Port to listen on (`PORT`); 0 picks a free one (tests).
    pub port: u16,
    /// The origin Twilio calls (`PUBLIC_BASE_URL`); `None` means rebuild it per request.
    pub public_base_url: Option<PublicBaseUrl>,
    /// How long a client's connection may sit idle between requests
    /// before flexbridge closes it (`KEEP_ALIVE_SECONDS`).
    pub keep_alive: Duration,
    /// Twilio account, credentials and API origins.
    pub twilio: TwilioSettings,
    /// The watsonx voice path.
    pub voice: VoiceSettings,
    /// TaskRouter targets for Flex.
    pub flex: FlexSettings,
    /// AI-assistant tool routes.
    pub tools: ToolSettings,
    /// Whole-request deadline of every outbound call (`UPSTREAM_TIMEOUT_MS`).
    pub upstream_timeout: Duration,
    /// Most outbound requests in flight at once (`UPSTREAM_MAX_CONNECTIONS`).
    pub upstream_max_connections: usize,
    /// ASAPP GenerativeAgent.
    pub asapp: AsappSettings,
    /// PolyAI.
    pub polyai: PolyAiSettings,
    /// Twilio ConversationRelay (any LLM voice agent; Agent Connect).
    pub relay: ConversationRelaySettings,
    /// `DIALOGFLOW_CX_CONNECTOR_NAME`: the Dialogflow CX one-click
    /// integration `<VirtualAgent>` connects to.
    pub dialogflow_connector: Option<String>,
    /// Bearer token required on `/metrics` when set (`METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// Log output format (`LOG_FORMAT`); `None` picks by terminal.
    pub log_format: Option<LogFormat>,
    /// Started with `--dev`: demo values and dry-run outbound calls.
    pub dev: bool,
}

/// Twilio account, credentials and API origins.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// `TWILIO_ACCOUNT_SID`.
    pub account_sid: Option<AccountSid>,
    /// `TWILIO_AUTH_TOKEN`: signs webhooks; REST auth without an API key.
    pub auth_token: Option<SecretString>,
    /// `TWILIO_SECONDARY_AUTH_TOKEN`: also accepted on webhooks, while the
    /// auth token is being rotated.
    pub secondary_auth_token: Option<SecretString>,
    /// `TWILIO_WEBHOOK_SHARED_KEY_SECRET`: checks the webhooks Twilio signs
    /// with a SharedKey instead of the auth token (a Webhook Rule's).
    pub webhook_shared_key_secret: Option<SecretString>,
    /// `TWILIO_SECONDARY_SHARED_KEY_SECRET`: also accepted on those
    /// webhooks, while the SharedKey is being rotated.
    pub secondary_shared_key_secret: Option<SecretString>,
    /// `TWILIO_API_KEY`.
    pub api_key: Option<ApiKeySid>,
    /// `TWILIO_API_SECRET`.
    pub api_secret: Option<SecretString>,
    /// `TWILIO_VALIDATE_SIGNATURES`; off only when explicitly disabled or `--dev`.
    pub validate_signatures: bool,
    /// `TWILIO_API_BASE_URL`.
    pub api_base_url: ApiBaseUrl,
    /// `FLEX_API_BASE_URL`.
    pub flex_api_base_url: ApiBaseUrl,
    /// `CONVERSATIONS_API_BASE_URL`.
    pub conversations_api_base_url: ApiBaseUrl,
    /// `TASKROUTER_API_BASE_URL` (`check-config --connect`).
    pub taskrouter_api_base_url: ApiBaseUrl,
    /// `STUDIO_API_BASE_URL` (`check-config --connect`).
    pub studio_api_base_url: ApiBaseUrl,
}

/// The watsonx voice path (`/receive-call`, `/refer-handler`) and the voice fallback.
#[derive(Debug, Clone)]
pub struct VoiceSettings {
    /// `SIP_URI_HOST`.
    pub sip_uri_host: Option<SipHost>,
    /// `SIP_SECURE`: append `;secure=true` (TLS/SRTP trunking) to the SIP URI.
    pub sip_secure: bool,
    /// `STUDIO_WEBHOOK_URL`.
    pub studio_webhook_url: Option<StudioWebhookUrl>,
    /// `FALLBACK_MESSAGE`: spoken when nothing else can be done.
    pub fallback_message: String,
}

/// TaskRouter targets for Flex.
#[derive(Debug, Clone)]
pub struct FlexSettings {
    /// `FLEX_WORKSPACE_SID`.
    pub workspace_sid: Option<WorkspaceSid>,
    /// `FLEX_WORKFLOW_SID`.
    pub workflow_sid: Option<WorkflowSid>,
}

/// AI-assistant tool routes (`/tools/*`).
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// `TOOL_API_KEY`: accepted instead of a Twilio signature.
    pub api_key: Option<SecretString>,
    /// `HANDOVER_DEDUP_SECONDS`.
    pub handover_dedup: Duration,
    /// `STUDIO_FLOW_SID`, for `/tools/studio-handover`.
    pub studio_flow_sid: Option<FlowSid>,
    /// `HANDOVER_STORE`: in-process (default) or a Redis shared by every instance.
    pub handover_store: HandoverStoreSetting,
}

/// ASAPP GenerativeAgent (`/engage`, `/call-complete`).
#[derive(Debug, Clone)]
pub struct AsappSettings {
    /// `ASAPP_API_HOST`.
    pub api_host: Option<ApiBaseUrl>,
    /// `ASAPP_API_ID`.
    pub api_id: Option<String>,
    /// `ASAPP_API_SECRET`.
    pub api_secret: Option<SecretString>,
}

/// PolyAI (`/polyai/*`).
#[derive(Debug, Clone)]
pub struct PolyAiSettings {
    /// `POLYAI_API_BASE_URL`.
    pub api_base_url: ApiBaseUrl,
    /// `POLYAI_API_KEY`.
    pub api_key: Option<SecretString>,
    /// `POLYAI_CONNECTOR_ID`.
    pub connector_id: Option<String>,
    /// `POLYAI_CONNECT_MESSAGE`: said before `/polyai/connect` hands the call
    /// to PolyAI (a recording notice, say); unset says nothing.
    pub connect_message: Option<String>,
}

/// Twilio ConversationRelay (`/conversation-relay/*`).
#[derive(Debug, Clone)]
pub struct ConversationRelaySettings {
    /// `CONVERSATION_RELAY_URL`: the agent's WebSocket app.
    pub url: Option<WebSocketUrl>,
    /// `CONVERSATION_RELAY_WELCOME_GREETING`: what the caller hears first.
    pub welcome_greeting: Option<String>,
    /// `CONVERSATION_RELAY_LANGUAGE`: the session's language, e.g. `en-US`.
    pub language: Option<String>,
    /// `CONVERSATION_CONFIGURATION_ID`: the Conversation Orchestrator
    /// configuration that records the session, as Twilio Agent Connect's
    /// handoff needs.
    pub conversation_configuration: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// The default `FALLBACK_MESSAGE`.
pub const DEFAULT_FALLBACK_MESSAGE: &str =
    "We're sorry, we can't connect your call right now. Please try again later.";

/// Demo values `--dev` uses for variables that are not in the environment at all.
pub const DEV_DEFAULTS: &[(&str, &str)] = &[
    ("SIP_URI_HOST", "assistant.example.invalid"),
    (
        "STUDIO_WEBHOOK_URL",
        "https://webhooks.twilio.com/v1/Accounts/AC00000000000000000000000000000000/Flows/FW00000000000000000000000000000000",
    ),
    ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
    ("FLEX_WORKSPACE_SID", "WS00000000000000000000000000000000"),
    ("FLEX_WORKFLOW_SID", "WW00000000000000000000000000000000"),
    ("STUDIO_FLOW_SID", "FW00000000000000000000000000000000"),
    ("POLYAI_CONNECTOR_ID", "dev-demo-connector"),
    (
        "CONVERSATION_RELAY_URL",
        "wss://agent.example.invalid/conversation-relay",
    ),
    ("DIALOGFLOW_CX_CONNECTOR_NAME", "dev-demo-dialogflow-cx"),
];

/// One malformed variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with its value (never the value of a secret).
    pub message: String,
}

/// Every malformed variable found, so a user fixes them all in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.variable, p.message)?;
        }
        Ok(())
    }
}

/// Reads variables through a lookup function and collects problems.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    /// The trimmed value, `None` when unset or empty.
    fn raw(&self, variable: &str) -> Option<String> {
        (self.lookup)(variable)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse<T, E: fmt::Display>(
        &mut self,
        variable: &'static str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let raw = self.raw(variable)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(e) => {
                self.problems.push(ConfigProblem {
                    variable,
                    message: e.to_string(),
                });
                None
            }
        }
    }

    fn parse_or<T, E: fmt::Display>(
        &mut self,
        variable: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> T {
        self.parse(variable, parse).unwrap_or(default)
    }

    fn text(&self, variable: &'static str) -> Option<String> {
        self.raw(variable)
    }

    fn secret(&self, variable: &'static str) -> Option<SecretString> {
        self.raw(variable).map(SecretString::from)
    }

    /// A secret sent as an HTTP header value, so it must be printable ASCII.
    /// The problem never quotes the value.
    fn header_secret(&mut self, variable: &'static str) -> Option<SecretString> {
        self.parse(variable, |t| {
            header_value(t).map(|t| SecretString::from(t.to_owned()))
        })
    }

    /// An API origin; `default` (Twilio's, a vendor's) when unset.
    fn origin(&mut self, variable: &'static str, default: &'static str) -> ApiBaseUrl {
        self.parse(variable, ApiBaseUrl::parse)
            .unwrap_or_else(|| ApiBaseUrl::from_static(default))
    }

    fn flag(&mut self, variable: &'static str, default: bool) -> bool {
        self.parse_or(variable, default, parse_bool)
    }
}

/// `text` when it can travel as an HTTP header value (printable ASCII).
fn header_value(text: &str) -> Result<&str, &'static str> {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(text)
    } else {
        Err("must be printable ASCII (it is sent as an HTTP header)")
    }
}

/// `HOST`: an IP address (`0.0.0.0`, `::`, `fly-local-6pn`'s address) or a
/// host name, so a typo is reported here rather than as a failed lookup at
/// start-up.
fn parse_listen_host(text: &str) -> Result<String, &'static str> {
    if text.parse::<std::net::IpAddr>().is_ok() || crate::domain::is_dns_name(text) {
        Ok(text.to_owned())
    } else {
        Err("expected an IP address or a host name")
    }
}

/// A BCP 47 language tag as Twilio takes them (`en-US`, `pt-BR`, `multi`):
/// letters, digits and hyphens, so a typo is caught here, not on a call.
fn parse_language(text: &str) -> Result<String, &'static str> {
    let valid = text.len() <= 35
        && text.split('-').all(|part| {
            (1..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a language tag such as en-US")
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

fn parse_ranged(
    text: &str,
    range: std::ops::RangeInclusive<u64>,
    why: &str,
) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {} to {}{why}",
            range.start(),
            range.end()
        )),
    }
}

impl Settings {
    /// Read settings from the process environment.
    ///
    /// # Errors
    /// Lists every variable that is set but malformed.
    pub fn from_env(dev: bool) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok(), dev)
    }

    /// Read settings through `lookup` (the environment, or a map in tests).
    ///
    /// With `dev`, variables absent from `lookup` take their [`DEV_DEFAULTS`]
    /// value (set one to an empty string to keep it unset) and signature
    /// checks are off.
    ///
    /// # Errors
    /// Lists every variable that is set but malformed.
    pub fn from_lookup(
        lookup: &dyn Fn(&str) -> Option<String>,
        dev: bool,
    ) -> Result<Self, ConfigError> {
        let (settings, problems) = Self::load(lookup, dev);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Like [`Settings::from_lookup`], but always returns settings (a
    /// malformed variable counts as unset) together with the problems found.
    pub fn load(lookup: &dyn Fn(&str) -> Option<String>, dev: bool) -> (Self, Vec<ConfigProblem>) {
        let with_dev_defaults = |name: &str| {
            lookup(name).or_else(|| {
                dev.then(|| DEV_DEFAULTS.iter().find(|(n, _)| *n == name))
                    .flatten()
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        let mut r = Reader {
            lookup: &with_dev_defaults,
            problems: Vec::new(),
        };
        let settings = Self {
            host: r.parse_or("HOST", "0.0.0.0".to_owned(), parse_listen_host),
            port: r.parse_or("PORT", 8080, |t| {
                t.parse::<u16>()
                    .map_err(|_| "expected a port number from 0 to 65535")
            }),
            public_base_url: r.parse("PUBLIC_BASE_URL", PublicBaseUrl::parse),
            // Longer than a proxy keeps its idle connections to flexbridge,
            // so the proxy, not flexbridge, closes them: a POST it sends just
            // as flexbridge closes one is lost (a 502, a dropped caller). 620 s
            // outlasts Google Cloud's fixed 600 s and the 60 s of AWS's ALB
            // and nginx.
            keep_alive: Duration::from_secs(r.parse_or("KEEP_ALIVE_SECONDS", 620, |t| {
                parse_ranged(t, 1..=86_400, " seconds")
            })),
            twilio: TwilioSettings {
                // These two sit next to a secret in Twilio's console, so a
                // malformed value may be that secret: it is not quoted back.
                account_sid: r.parse("TWILIO_ACCOUNT_SID", |t| {
                    AccountSid::parse(t).map_err(|_| {
                        "expected AC followed by 32 hex digits (the value is not shown: it may be the auth token)"
                    })
                }),
                auth_token: r.secret("TWILIO_AUTH_TOKEN"),
                secondary_auth_token: r.secret("TWILIO_SECONDARY_AUTH_TOKEN"),
                webhook_shared_key_secret: r.secret("TWILIO_WEBHOOK_SHARED_KEY_SECRET"),
                secondary_shared_key_secret: r.secret("TWILIO_SECONDARY_SHARED_KEY_SECRET"),
                api_key: r.parse("TWILIO_API_KEY", |t| {
                    ApiKeySid::parse(t).map_err(|_| {
                        "expected SK followed by 32 hex digits (the value is not shown: it may be the API secret)"
                    })
                }),
                api_secret: r.secret("TWILIO_API_SECRET"),
                validate_signatures: r.flag("TWILIO_VALIDATE_SIGNATURES", true) && !dev,
                api_base_url: r.origin("TWILIO_API_BASE_URL", "https://api.twilio.com"),
                flex_api_base_url: r.origin("FLEX_API_BASE_URL", "https://flex-api.twilio.com"),
                conversations_api_base_url: r.origin(
                    "CONVERSATIONS_API_BASE_URL",
                    "https://conversations.twilio.com",
                ),
                taskrouter_api_base_url: r.origin(
                    "TASKROUTER_API_BASE_URL",
                    "https://taskrouter.twilio.com",
                ),
                studio_api_base_url: r.origin("STUDIO_API_BASE_URL", "https://studio.twilio.com"),
            },
            voice: VoiceSettings {
                sip_uri_host: r.parse("SIP_URI_HOST", SipHost::parse),
                sip_secure: r.flag("SIP_SECURE", true),
                studio_webhook_url: r.parse("STUDIO_WEBHOOK_URL", StudioWebhookUrl::parse),
                fallback_message: r
                    .text("FALLBACK_MESSAGE")
                    .unwrap_or_else(|| DEFAULT_FALLBACK_MESSAGE.to_owned()),
            },
            flex: FlexSettings {
                workspace_sid: r.parse("FLEX_WORKSPACE_SID", WorkspaceSid::parse),
                workflow_sid: r.parse("FLEX_WORKFLOW_SID", WorkflowSid::parse),
            },
            tools: ToolSettings {
                api_key: r.secret("TOOL_API_KEY"),
                handover_dedup: Duration::from_secs(r.parse_or(
                    "HANDOVER_DEDUP_SECONDS",
                    600,
                    |t| parse_ranged(t, 0..=86_400, " seconds (0 turns dedup off)"),
                )),
                studio_flow_sid: r.parse("STUDIO_FLOW_SID", FlowSid::parse),
                handover_store: r
                    .parse("HANDOVER_STORE", HandoverStoreSetting::parse)
                    .unwrap_or_default(),
            },
            upstream_timeout: Duration::from_millis(r.parse_or("UPSTREAM_TIMEOUT_MS", 8000, |t| {
                parse_ranged(
                    t,
                    100..=14_000,
                    " milliseconds (Twilio gives up on a webhook after 15 s)",
                )
            })),
            upstream_max_connections: r.parse_or("UPSTREAM_MAX_CONNECTIONS", 64, |t| {
                parse_ranged(t, 1..=10_000, "").map(|n| n as usize)
            }),
            asapp: AsappSettings {
                api_host: r.parse("ASAPP_API_HOST", ApiBaseUrl::parse),
                api_id: r.parse("ASAPP_API_ID", |t| header_value(t).map(str::to_owned)),
                api_secret: r.header_secret("ASAPP_API_SECRET"),
            },
            polyai: PolyAiSettings {
                api_base_url: r.origin("POLYAI_API_BASE_URL", "https://api.polyai.app"),
                api_key: r.header_secret("POLYAI_API_KEY"),
                connector_id: r.text("POLYAI_CONNECTOR_ID"),
                connect_message: r.text("POLYAI_CONNECT_MESSAGE"),
            },
            relay: ConversationRelaySettings {
                url: r.parse("CONVERSATION_RELAY_URL", WebSocketUrl::parse),
                welcome_greeting: r.text("CONVERSATION_RELAY_WELCOME_GREETING"),
                language: r.parse("CONVERSATION_RELAY_LANGUAGE", parse_language),
                conversation_configuration: r.text("CONVERSATION_CONFIGURATION_ID"),
            },
            dialogflow_connector: r.text("DIALOGFLOW_CX_CONNECTOR_NAME"),
            metrics_token: r.secret("METRICS_TOKEN"),
            log_format: r.parse("LOG_FORMAT", |t| match t.to_ascii_lowercase().as_str() {
                "json" => Ok(LogFormat::Json),
                "pretty" => Ok(LogFormat::Pretty),
                _ => Err("expected json or pretty"),
            }),
            dev,
        };
        (settings, r.problems)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn host_is_an_ip_address_or_a_host_name() {
        for host in ["0.0.0.0", "::", "fdaa:0:1::3", "localhost", "fly-local-6pn"] {
            assert_eq!(parse_listen_host(host), Ok(host.to_owned()), "{host}");
        }
        for host in ["", "not a host!", "http://localhost", "[::]"] {
            assert!(parse_listen_host(host).is_err(), "{host}");
        }
    }

    /// A secret mounted from a file ends with a newline, which no signature
    /// or header must carry; blank counts as unset.
    #[test]
    fn values_are_trimmed_and_blank_ones_are_unset() {
        let env = |name: &str| match name {
            "TWILIO_AUTH_TOKEN" => Some("token-from-a-file\n".to_owned()),
            "PORT" => Some(" 9090 ".to_owned()),
            "FLEX_WORKFLOW_SID" => Some("\tWW0123456789abcdef0123456789abcdef ".to_owned()),
            "SIP_URI_HOST" => Some("  \n".to_owned()),
            _ => None,
        };

        let settings = Settings::from_lookup(&env, false).unwrap();

        let token = settings
            .twilio
            .auth_token
            .as_ref()
            .map(ExposeSecret::expose_secret);
        assert_eq!(token, Some("token-from-a-file"));
        assert_eq!(settings.port, 9090);
        let workflow = settings.flex.workflow_sid.as_ref().map(AsRef::as_ref);
        assert_eq!(workflow, Some("WW0123456789abcdef0123456789abcdef"));
        assert!(settings.voice.sip_uri_host.is_none());
    }

    /// Each number is taken at both ends of its range, and refused one past
    /// either end.
    #[test]
    fn a_number_is_taken_up_to_its_bounds_and_no_further() {
        for (variable, lowest, highest) in [
            ("KEEP_ALIVE_SECONDS", 1, 86_400),
            ("HANDOVER_DEDUP_SECONDS", 0, 86_400),
            ("UPSTREAM_TIMEOUT_MS", 100, 14_000),
            ("UPSTREAM_MAX_CONNECTIONS", 1, 10_000),
        ] {
            let refused = |n: u64| {
                let env = |name: &str| (name == variable).then(|| n.to_string());
                let (_, problems) = Settings::load(&env, false);
                problems.iter().map(|p| p.variable).collect::<Vec<_>>()
            };
            for taken in [lowest, highest] {
                assert_eq!(refused(taken), Vec::<&str>::new(), "{variable}={taken}");
            }
            let past = [lowest.checked_sub(1), Some(highest + 1)];
            for n in past.into_iter().flatten() {
                assert_eq!(refused(n), [variable], "{variable}={n}");
            }
        }
    }

    #[test]
    fn a_flag_takes_the_usual_spellings_of_yes_and_no_in_any_case() {
        for (text, flag) in [
            ("true", true),
            ("1", true),
            ("Yes", true),
            ("ON", true),
            ("False", false),
            ("0", false),
            ("no", false),
            ("off", false),
        ] {
            assert_eq!(parse_bool(text), Ok(flag), "{text}");
        }
        for text in ["", "y", "enabled", "2", "truee"] {
            assert!(parse_bool(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_language_is_hyphenated_parts_of_one_to_eight_letters_or_digits() {
        // 35 characters, the length RFC 5646 (§4.4.1) has every implementation take.
        let longest = "abcdefgh-abcdefgh-abcdefgh-abcd-abc";
        let one_letter_part = "en-US-x-twilio";
        for tag in [
            "en-US",
            "pt-BR",
            "multi",
            "es-419",
            longest,
            one_letter_part,
        ] {
            assert_eq!(parse_language(tag), Ok(tag.to_owned()), "{tag}");
        }
        let too_long = format!("{longest}d");
        for tag in [
            "",
            "en_US",
            "en--US",
            "-en",
            "ninechars",
            "en-US ",
            &too_long,
        ] {
            assert!(parse_language(tag).is_err(), "{tag}");
        }
    }

    #[test]
    fn vendor_credentials_must_be_header_values_and_problems_never_quote_them() {
        let env = |name: &str| match name {
            "ASAPP_API_SECRET" => Some("line\nbreak-secret".to_owned()),
            "ASAPP_API_ID" => Some("id-é".to_owned()),
            "POLYAI_API_KEY" => Some("fine-key-123".to_owned()),
            _ => None,
        };

        let (settings, problems) = Settings::load(&env, false);

        let variables: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(variables, ["ASAPP_API_ID", "ASAPP_API_SECRET"]);
        assert!(problems.iter().all(|p| !p.message.contains("secret")
            && p.message == "must be printable ASCII (it is sent as an HTTP header)"));
        assert!(settings.asapp.api_secret.is_none());
        assert!(settings.polyai.api_key.is_some());
        assert_eq!(
            ConfigError(problems).to_string(),
            "ASAPP_API_ID: must be printable ASCII (it is sent as an HTTP header); \
             ASAPP_API_SECRET: must be printable ASCII (it is sent as an HTTP header)"
        );
    }
}
