//! ASAPP GenerativeAgent: the Twilio media-stream URL a call is connected
//! to, and the call-transfer result read when that stream ends.
//!
//! `GET {ASAPP_API_HOST}/mg-genagent/v1/twilio-media-stream-url` →
//! `{"streamingUrl": "wss://…"}` (valid 5 minutes, for many calls);
//! `GET {ASAPP_API_HOST}/generativeagent/v1/call-transfers/{id}` →
//! `{status, outputContext: {transferType, currentTaskName,
//! referenceVariables, transferVariables}}`, 404 when the caller hung up.
//! Both authenticate with the `asapp-api-id` and `asapp-api-secret` headers;
//! errors come back as `{"error": {"requestId", "code", "message"}}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Vendor, VendorError};
use crate::config::Settings;
use crate::domain::{ApiBaseUrl, CallSid, WebSocketUrl};
use crate::upstream::{Answer, Upstream};

/// How long one streaming URL is reused: ASAPP issues it for 5 minutes, and
/// the last minute is left for calls that start while it is being used.
pub const STREAM_URL_REUSE: Duration = Duration::from_secs(4 * 60);

/// The streaming URL `--dev` answers with instead of asking ASAPP.
pub const DEV_STREAM_URL: &str = "wss://genagent.asapp.example.invalid/twilio-media-stream";

/// ASAPP's `status` values (`ACTIVE`, `ONGOING`, `COMPLETED`, `EXPIRED`)
/// and `transferType` values (`AGENT`, `SYSTEM`).
const KNOWN_VALUES: [&str; 6] = [
    "ACTIVE",
    "ONGOING",
    "COMPLETED",
    "EXPIRED",
    "AGENT",
    "SYSTEM",
];

/// `text` upper case when it is a value ASAPP documents (its own examples
/// mix `COMPLETED` and `completed`), else as sent.
fn known_or_as_sent(text: &str) -> String {
    match KNOWN_VALUES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(text))
    {
        Some(known) => (*known).to_owned(),
        None => text.to_owned(),
    }
}

/// The result of a call transfer, as flexbridge acts on it. It serializes
/// to the five fields of ASAPP's own Studio sample, which a Studio flow
/// reads and which become the `asapp` task attribute of an enqueued call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTransfer {
    /// Where the transfer stands (`COMPLETED`, `EXPIRED`, …), upper case.
    #[serde(rename = "callTransferStatus")]
    pub status: String,
    /// `outputContext.transferType` (`AGENT`, `SYSTEM`, …), when set.
    pub transfer_type: Option<String>,
    /// `outputContext.currentTaskName`: the task GenerativeAgent was in.
    pub current_task_name: Option<String>,
    /// `outputContext.referenceVariables`, as sent: the customer and conversation.
    pub reference_variables: Value,
    /// `outputContext.transferVariables`, as sent: for the next system or agent.
    pub transfer_variables: Value,
}

#[derive(Deserialize)]
struct StreamUrlBody {
    #[serde(rename = "streamingUrl")]
    streaming_url: String,
}

#[derive(Deserialize)]
struct CallTransferBody {
    status: String,
    #[serde(rename = "outputContext", default)]
    output_context: Option<OutputContext>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OutputContext {
    transfer_type: Option<String>,
    current_task_name: Option<String>,
    #[serde(default)]
    reference_variables: Value,
    #[serde(default)]
    transfer_variables: Value,
}

/// ASAPP's error document.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

/// Where and as whom to call ASAPP.
#[derive(Clone)]
struct Api {
    host: ApiBaseUrl,
    id: HeaderValue,
    secret: SecretString,
}

/// The ASAPP GenerativeAgent client; clones share the streaming URL.
#[derive(Clone)]
pub struct AsappClient {
    upstream: Upstream,
    /// The API, or the first variable missing for it.
    api: Result<Api, &'static str>,
    dry_run: bool,
    stream_url: Arc<Reused<WebSocketUrl, VendorError>>,
}

/// A value fetched on demand and reused by every caller for a while. The
/// mutex is held while a fetch runs, so concurrent callers wait for that
/// one fetch instead of starting their own.
struct Reused<T, E> {
    slot: Mutex<Slot<T, E>>,
    /// Fetches ended so far: a caller that sees a failure newer than the
    /// count it read on arrival waited for that very fetch.
    fetched: AtomicU64,
    reuse_for: Duration,
}

struct Slot<T, E> {
    /// The value and when its fetch started (its life at the vendor starts then).
    fresh: Option<(T, Instant)>,
    /// The error of the last failed fetch and that fetch's number.
    failed: Option<(Arc<E>, u64)>,
}

impl<T: Clone, E> Reused<T, E> {
    fn new(reuse_for: Duration) -> Self {
        let slot = Slot {
            fresh: None,
            failed: None,
        };
        Self {
            slot: Mutex::new(slot),
            fetched: AtomicU64::new(0),
            reuse_for,
        }
    }

    /// The value while it is fresh, else what `fetch` gives.
    async fn get(&self, fetch: impl Future<Output = Result<T, E>>) -> Result<T, Arc<E>> {
        let seen = self.fetched.load(Ordering::Acquire);
        let mut slot = self.slot.lock().await;
        if let Some((value, fetched)) = &slot.fresh
            && fetched.elapsed() < self.reuse_for
        {
            return Ok(value.clone());
        }
        // The callers that waited for a fetch that failed share its error,
        // rather than each waiting in turn for a fetch of its own; a caller
        // that comes later fetches again.
        if let Some((error, number)) = &slot.failed
            && *number > seen
        {
            return Err(Arc::clone(error));
        }
        let started = Instant::now();
        let result = fetch.await;
        let number = self.fetched.fetch_add(1, Ordering::AcqRel) + 1;
        match result {
            Ok(value) => {
                slot.fresh = Some((value.clone(), started));
                Ok(value)
            }
            Err(error) => {
                let error = Arc::new(error);
                slot.failed = Some((Arc::clone(&error), number));
                Err(error)
            }
        }
    }
}

impl AsappClient {
    /// A client for the configured API; `--dev` makes it answer demo values
    /// without calling ASAPP.
    pub fn new(settings: &Settings, upstream: Upstream) -> Self {
        let a = &settings.asapp;
        let api = match (&a.api_host, &a.api_id, &a.api_secret) {
            (None, _, _) => Err("ASAPP_API_HOST"),
            (_, None, _) => Err("ASAPP_API_ID"),
            (_, _, None) => Err("ASAPP_API_SECRET"),
            (Some(host), Some(id), Some(secret)) => HeaderValue::from_str(id)
                .map(|id| Api {
                    host: host.clone(),
                    id,
                    secret: secret.clone(),
                })
                .map_err(|_| "ASAPP_API_ID"),
        };
        Self {
            upstream,
            api,
            dry_run: settings.dev,
            stream_url: Arc::new(Reused::new(STREAM_URL_REUSE)),
        }
    }

    /// The streaming URL for a new call: the cached one while it is at most
    /// [`STREAM_URL_REUSE`] old, else a fresh one fetched once for every
    /// concurrent caller.
    ///
    /// # Errors
    /// The [`VendorError`] of the fetch (shared by the callers that waited
    /// for it) when ASAPP is not configured, unreachable, refuses, or answers
    /// something other than a `wss://` URL.
    pub async fn stream_url(&self) -> Result<WebSocketUrl, Arc<VendorError>> {
        self.stream_url.get(self.fetch_stream_url()).await
    }

    /// `GET /generativeagent/v1/call-transfers/{call}`: the transfer whose id
    /// is the call SID (flexbridge sends it as `asapp_callTransferId`).
    /// `None` when ASAPP has no such transfer (404: the caller hung up
    /// before GenerativeAgent finished).
    ///
    /// # Errors
    /// [`VendorError`] when ASAPP is not configured, unreachable, refuses, or
    /// answers something other than a call transfer.
    pub async fn call_transfer(&self, call: &CallSid) -> Result<Option<CallTransfer>, VendorError> {
        if self.dry_run {
            return Ok(Some(dev_transfer()));
        }
        let answer = self
            .get(&format!("/generativeagent/v1/call-transfers/{call}"))
            .await?;
        let status = answer.status.as_u16();
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(refused(&answer));
        }
        let body: CallTransferBody =
            serde_json::from_slice(&answer.body).map_err(|_| VendorError::Decode {
                vendor: Vendor::Asapp,
                status,
            })?;
        let output = body.output_context.unwrap_or_default();
        Ok(Some(CallTransfer {
            status: known_or_as_sent(&body.status),
            transfer_type: output.transfer_type.as_deref().map(known_or_as_sent),
            current_task_name: output.current_task_name,
            reference_variables: output.reference_variables,
            transfer_variables: output.transfer_variables,
        }))
    }

    /// `GET /mg-genagent/v1/twilio-media-stream-url`, uncached.
    async fn fetch_stream_url(&self) -> Result<WebSocketUrl, VendorError> {
        if self.dry_run {
            return Ok(WebSocketUrl::from_static(DEV_STREAM_URL));
        }
        let answer = self.get("/mg-genagent/v1/twilio-media-stream-url").await?;
        let status = answer.status.as_u16();
        if !answer.status.is_success() {
            return Err(refused(&answer));
        }
        serde_json::from_slice::<StreamUrlBody>(&answer.body)
            .ok()
            .and_then(|body| WebSocketUrl::parse(&body.streaming_url).ok())
            .ok_or(VendorError::Decode {
                vendor: Vendor::Asapp,
                status,
            })
    }

    async fn get(&self, path: &str) -> Result<Answer, VendorError> {
        let api = self
            .api
            .as_ref()
            .map_err(|variable| VendorError::NotConfigured {
                vendor: Vendor::Asapp,
                variable,
            })?;
        let mut secret = HeaderValue::from_str(api.secret.expose_secret()).map_err(|_| {
            VendorError::NotConfigured {
                vendor: Vendor::Asapp,
                variable: "ASAPP_API_SECRET",
            }
        })?;
        secret.set_sensitive(true);
        let url = api.host.join(path);
        self.upstream
            .send(Vendor::Asapp.upstream(), || {
                self.upstream
                    .http()
                    .get(&url)
                    .header("asapp-api-id", api.id.clone())
                    .header("asapp-api-secret", secret.clone())
                    .header(ACCEPT, "application/json")
            })
            .await
            .map_err(|source| VendorError::Upstream {
                vendor: Vendor::Asapp,
                source,
            })
    }
}

/// The refusal in `answer`, with ASAPP's error code, message and request id
/// when the body is its error document.
fn refused(answer: &Answer) -> VendorError {
    let detail = serde_json::from_slice::<ErrorBody>(&answer.body)
        .ok()
        .map(|body| {
            let e = body.error;
            let mut parts = Vec::new();
            if let Some(code) = e.code {
                parts.push(format!("error {code}"));
            }
            if let Some(message) = e.message {
                parts.push(message);
            }
            if let Some(request_id) = e.request_id {
                parts.push(format!("request {request_id}"));
            }
            super::shorten(&parts.join(", "))
        })
        .filter(|detail| !detail.is_empty());
    VendorError::Refused {
        vendor: Vendor::Asapp,
        status: answer.status.as_u16(),
        detail,
    }
}

/// The transfer `--dev` acts on: GenerativeAgent asked for a human agent.
fn dev_transfer() -> CallTransfer {
    CallTransfer {
        status: "COMPLETED".to_owned(),
        transfer_type: Some("AGENT".to_owned()),
        current_task_name: Some("dev_demo".to_owned()),
        reference_variables: serde_json::json!({ "customer_name": "Dev Demo" }),
        transfer_variables: serde_json::json!({ "reason": "caller asked for an agent" }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// The SPEC's "up to 4 minutes".
    const WINDOW: Duration = Duration::from_secs(240);

    /// A fetch that counts itself, takes 5 ms (so every caller started
    /// meanwhile waits for it) and returns `result`.
    async fn counted(
        fetches: &AtomicUsize,
        result: Result<&'static str, &'static str>,
    ) -> Result<&'static str, &'static str> {
        fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        result
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_and_reuse_its_value_for_the_window() {
        let reused = Reused::new(STREAM_URL_REUSE);
        let fetches = AtomicUsize::new(0);

        let first = futures_util::future::join_all(
            (0..50).map(|_| reused.get(counted(&fetches, Ok("first")))),
        )
        .await;
        assert!(first.iter().all(|r| r.as_deref() == Ok("first")));
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one fetch for 50 callers"
        );

        // The window counts from the start of the 5 ms fetch.
        tokio::time::advance(WINDOW - Duration::from_millis(6)).await;
        assert_eq!(
            reused.get(counted(&fetches, Ok("second"))).await.ok(),
            Some("first")
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "reused within the window"
        );

        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            reused.get(counted(&fetches, Ok("second"))).await.ok(),
            Some("second")
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "fetched again after it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_reaches_every_waiting_caller_once_and_is_not_kept() {
        let reused: Reused<&str, &str> = Reused::new(WINDOW);
        let fetches = AtomicUsize::new(0);

        let failed = futures_util::future::join_all(
            (0..10).map(|_| reused.get(counted(&fetches, Err("down")))),
        )
        .await;
        assert!(
            failed
                .iter()
                .all(|r| r.as_ref().err().map(|e| **e) == Some("down"))
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one failed fetch for all"
        );

        assert_eq!(
            reused.get(counted(&fetches, Ok("up"))).await.ok(),
            Some("up")
        );
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "the next caller fetches again"
        );
    }

    #[test]
    fn the_dev_stream_url_is_a_websocket_url() {
        assert_eq!(
            WebSocketUrl::parse(DEV_STREAM_URL).unwrap(),
            WebSocketUrl::from_static(DEV_STREAM_URL)
        );
    }

    /// However long ASAPP's message, what reaches logs and Studio is its
    /// first 200 characters (not bytes).
    #[test]
    fn a_refusal_keeps_the_start_of_a_long_error_message() {
        let message = "é".repeat(1_000);
        let body = serde_json::json!({"error": {"code": "401-01", "message": message, "requestId": "r-1"}});
        let answer = Answer {
            status: StatusCode::UNAUTHORIZED,
            body: serde_json::to_vec(&body).unwrap().into(),
            attempts: 1,
        };

        let VendorError::Refused { detail, .. } = refused(&answer) else {
            panic!("a refusal");
        };

        assert_eq!(detail, Some(format!("error 401-01, {}", "é".repeat(186))));
    }

    /// ASAPP's error document with some of its fields: the others are left
    /// out, and with none there is no detail.
    #[test]
    fn a_refusal_gives_the_fields_asapp_sent() {
        let detail = |error: serde_json::Value| {
            let answer = Answer {
                status: StatusCode::FORBIDDEN,
                body: serde_json::to_vec(&serde_json::json!({ "error": error }))
                    .unwrap()
                    .into(),
                attempts: 1,
            };
            match refused(&answer) {
                VendorError::Refused { detail, .. } => detail,
                other => panic!("a refusal: {other:?}"),
            }
        };

        assert_eq!(
            detail(serde_json::json!({"message": "Forbidden"})).as_deref(),
            Some("Forbidden")
        );
        assert_eq!(
            detail(serde_json::json!({"requestId": "r-2"})).as_deref(),
            Some("request r-2")
        );
        assert_eq!(detail(serde_json::json!({})), None);
    }

    #[test]
    fn statuses_and_transfer_types_are_matched_in_any_case_and_kept_otherwise() {
        for (sent, read) in [
            ("active", "ACTIVE"),
            ("Ongoing", "ONGOING"),
            ("completed", "COMPLETED"),
            ("EXPIRED", "EXPIRED"),
            ("agent", "AGENT"),
            ("system", "SYSTEM"),
            ("Paused", "Paused"),
            ("QUEUE", "QUEUE"),
        ] {
            assert_eq!(known_or_as_sent(sent), read, "{sent}");
        }
    }

    #[test]
    fn a_call_transfer_serializes_to_the_five_studio_fields_with_nulls_for_what_is_missing() {
        let transfer = CallTransfer {
            status: "ONGOING".to_owned(),
            transfer_type: None,
            current_task_name: None,
            reference_variables: Value::Null,
            transfer_variables: serde_json::json!({"a": "1"}),
        };
        assert_eq!(
            serde_json::to_string(&transfer).unwrap(),
            r#"{"callTransferStatus":"ONGOING","transferType":null,"currentTaskName":null,"referenceVariables":null,"transferVariables":{"a":"1"}}"#
        );
    }
}
