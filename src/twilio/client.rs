//! A small typed client for the Twilio REST calls flexbridge makes: create a
//! Flex Interaction, update a live call with TwiML, add a conversation-scoped
//! Studio webhook, and (for `check-config --connect`) look up a workflow or
//! a Studio flow. Checked against Twilio's Flex v1 OpenAPI description
//! (`POST /v1/Interactions`: form fields `Channel` and `Routing`, JSON
//! strings; 200 with `sid: KD…`).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Settings, TwilioSettings};
use crate::domain::{
    AccountSid, ApiBaseUrl, CallSid, ConversationServiceSid, ConversationSid, FlowSid,
};
use crate::upstream::{Answer, Upstream, UpstreamError};

/// The upstream name Twilio calls are logged and counted under.
pub const UPSTREAM: &str = "twilio";

/// Twilio's error document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct TwilioApiError {
    /// Twilio error code, e.g. 20003.
    pub code: Option<i64>,
    /// Human-readable message.
    pub message: Option<String>,
    /// Link to the error's documentation.
    pub more_info: Option<String>,
    /// HTTP status Twilio reports.
    pub status: Option<u16>,
}

/// Why a Twilio call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A setting the call needs is unset.
    #[error("{0} is not set")]
    NotConfigured(&'static str),
    /// Transport failure or deadline.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Twilio answered with an error status.
    #[error("Twilio answered {status}{}", describe(.error))]
    Refused {
        /// HTTP status.
        status: u16,
        /// The decoded error document, when the body was one.
        error: Option<TwilioApiError>,
        /// Requests tried.
        attempts: u32,
    },
    /// A form that cannot be encoded (a bug, never input).
    #[error("the request form could not be encoded: {0}")]
    Encode(#[from] serde_urlencoded::ser::Error),
    /// A success status whose body is not what the API documents.
    #[error("Twilio answered {status} with a body that is not the expected JSON")]
    Decode {
        /// HTTP status.
        status: u16,
    },
}

fn describe(error: &Option<TwilioApiError>) -> String {
    match error {
        Some(TwilioApiError {
            code: Some(code),
            message: Some(message),
            ..
        }) => format!(" (error {code}: {message})"),
        Some(TwilioApiError {
            message: Some(message),
            ..
        }) => format!(" ({message})"),
        _ => String::new(),
    }
}

/// A request the dry run shows instead of sending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DryRunRequest {
    /// Always `POST`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// The exact `application/x-www-form-urlencoded` body.
    pub body: String,
    /// The same fields, decoded.
    pub form: serde_json::Map<String, Value>,
}

/// What a call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Twilio created or updated a resource with this SID.
    Done(String),
    /// `--dev`: nothing was sent.
    DryRun(DryRunRequest),
}

/// HTTP basic credentials: an API key (preferred) or the account SID and token.
#[derive(Clone)]
struct Credentials {
    user: String,
    secret: SecretString,
}

/// The REST credentials the settings give, or the first variable missing.
fn credentials(t: &TwilioSettings) -> Result<Credentials, &'static str> {
    match (&t.api_key, &t.api_secret, &t.account_sid, &t.auth_token) {
        (Some(key), Some(secret), _, _) => Ok(Credentials {
            user: key.to_string(),
            secret: secret.clone(),
        }),
        (Some(_), None, _, _) => Err("TWILIO_API_SECRET"),
        (None, _, Some(account), Some(token)) => Ok(Credentials {
            user: account.to_string(),
            secret: token.clone(),
        }),
        (None, _, None, _) => Err("TWILIO_ACCOUNT_SID"),
        (None, _, Some(_), None) => Err("TWILIO_AUTH_TOKEN"),
    }
}

/// The variable REST calls still need (`TWILIO_API_SECRET` for a key without
/// its secret, else the account SID or auth token), if any.
pub fn missing_credentials(t: &TwilioSettings) -> Option<&'static str> {
    credentials(t).err()
}

/// The Twilio REST client.
#[derive(Clone)]
pub struct TwilioClient {
    upstream: Upstream,
    api_base: ApiBaseUrl,
    flex_base: ApiBaseUrl,
    conversations_base: ApiBaseUrl,
    account_sid: Option<AccountSid>,
    credentials: Result<Credentials, &'static str>,
    dry_run: bool,
}

#[derive(Deserialize)]
struct WithSid {
    sid: String,
}

#[derive(Deserialize)]
struct Named {
    friendly_name: String,
}

/// `POST /v1/Interactions` form.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InteractionForm {
    channel: String,
    routing: String,
}

/// Calls update form.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CallUpdateForm<'a> {
    twiml: &'a str,
}

/// Conversation-scoped webhook form.
#[derive(Serialize)]
struct WebhookForm<'a> {
    #[serde(rename = "Target")]
    target: &'a str,
    #[serde(rename = "Configuration.FlowSid")]
    flow_sid: &'a str,
}

impl TwilioClient {
    /// A client for the configured account; `--dev` makes it a dry run.
    pub fn new(settings: &Settings, upstream: Upstream) -> Self {
        let t = &settings.twilio;
        let credentials = credentials(t);
        Self {
            upstream,
            api_base: t.api_base_url.clone(),
            flex_base: t.flex_api_base_url.clone(),
            conversations_base: t.conversations_api_base_url.clone(),
            account_sid: t.account_sid.clone(),
            credentials,
            dry_run: settings.dev,
        }
    }

    /// `POST /v1/Interactions` on the Flex API.
    ///
    /// # Errors
    /// [`ClientError`] when credentials are missing or Twilio fails.
    pub async fn create_interaction(
        &self,
        channel: &Value,
        routing: &Value,
    ) -> Result<Sent, ClientError> {
        let url = self.flex_base.join("/v1/Interactions");
        let form = InteractionForm {
            channel: channel.to_string(),
            routing: routing.to_string(),
        };
        self.post(url, &form).await
    }

    /// `POST /2010-04-01/Accounts/{AC}/Calls/{CA}.json` with `Twiml`.
    ///
    /// # Errors
    /// [`ClientError`] when the account SID or credentials are missing or Twilio fails.
    pub async fn update_call(&self, call: &CallSid, twiml: &str) -> Result<Sent, ClientError> {
        let account = self
            .account_sid
            .as_ref()
            .ok_or(ClientError::NotConfigured("TWILIO_ACCOUNT_SID"))?;
        let url = self
            .api_base
            .join(&format!("/2010-04-01/Accounts/{account}/Calls/{call}.json"));
        self.post(url, &CallUpdateForm { twiml }).await
    }

    /// `POST /v1/Services/{IS}/Conversations/{CH}/Webhooks` on the
    /// Conversations API: a conversation-scoped webhook that hands the
    /// conversation to a Studio flow.
    ///
    /// # Errors
    /// [`ClientError`] when credentials are missing or Twilio fails.
    pub async fn add_studio_webhook(
        &self,
        service: &ConversationServiceSid,
        conversation: &ConversationSid,
        flow: &FlowSid,
    ) -> Result<Sent, ClientError> {
        let url = self.conversations_base.join(&format!(
            "/v1/Services/{service}/Conversations/{conversation}/Webhooks"
        ));
        self.post(
            url,
            &WebhookForm {
                target: "studio",
                flow_sid: flow.as_ref(),
            },
        )
        .await
    }

    /// `GET` the Twilio resource at `url` (a TaskRouter workflow, a Studio
    /// flow) and answer its `friendly_name`.
    ///
    /// # Errors
    /// [`ClientError`] when credentials are missing or Twilio fails (404:
    /// no such resource in this account).
    pub async fn friendly_name(&self, url: &str) -> Result<String, ClientError> {
        let request = || self.upstream.http().get(url);
        decode(&self.send(request).await?).map(|r: Named| r.friendly_name)
    }

    async fn post(&self, url: String, form: &impl Serialize) -> Result<Sent, ClientError> {
        let body = serde_urlencoded::to_string(form)?;
        if self.dry_run {
            let form = url::form_urlencoded::parse(body.as_bytes())
                .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
                .collect();
            return Ok(Sent::DryRun(DryRunRequest {
                method: "POST",
                url,
                body,
                form,
            }));
        }
        let request = || {
            self.upstream
                .http()
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
        };
        decode(&self.send(request).await?).map(|r: WithSid| Sent::Done(r.sid))
    }

    /// Send what `request` builds with the credentials, asking for JSON.
    async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, ClientError> {
        let credentials = self
            .credentials
            .as_ref()
            .map_err(|variable| ClientError::NotConfigured(variable))?;
        let answer = self.upstream.send(UPSTREAM, || {
            request()
                .basic_auth(&credentials.user, Some(credentials.secret.expose_secret()))
                .header(reqwest::header::ACCEPT, "application/json")
        });
        Ok(answer.await?)
    }
}

/// The document of a success answer, or the typed refusal.
fn decode<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, ClientError> {
    let status = answer.status.as_u16();
    if !answer.status.is_success() {
        return Err(ClientError::Refused {
            status,
            error: serde_json::from_slice(&answer.body).ok(),
            attempts: answer.attempts,
        });
    }
    serde_json::from_slice(&answer.body).map_err(|_| ClientError::Decode { status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_twilio_error_is_described_by_its_code_and_message_or_its_message_alone() {
        let error = |code, message: Option<&str>| {
            Some(TwilioApiError {
                code,
                message: message.map(str::to_owned),
                more_info: None,
                status: None,
            })
        };
        let cases = [
            (
                error(Some(21211), Some("Invalid 'Channel'")),
                " (error 21211: Invalid 'Channel')",
            ),
            (
                error(None, Some("Invalid 'Channel'")),
                " (Invalid 'Channel')",
            ),
            (error(Some(21211), None), ""),
            (None, ""),
        ];
        for (error, described) in cases {
            assert_eq!(describe(&error), described, "{error:?}");
        }
    }
}
