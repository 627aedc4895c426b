//! PolyAI: the handoff state a PolyAI voice agent leaves when it hands a
//! call back (`context.state.handoff` in the agent's project).
//!
//! `GET {POLYAI_API_BASE_URL}/v1/handoff_state?id={CallSid}` with the
//! `x-api-key` header answers that state as JSON; flexbridge passes it on
//! unchanged (to Studio) or as Flex task attributes.

use actix_web::web::Bytes;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{Vendor, VendorError};
use crate::config::Settings;
use crate::domain::{ApiBaseUrl, CallSid, encode_query_text};
use crate::upstream::Upstream;

/// A call's handoff state: the exact JSON PolyAI sent, and its parsed value.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffState {
    raw: Bytes,
    value: Value,
}

impl HandoffState {
    /// Keep `raw` when it is JSON.
    fn parse(raw: Bytes) -> Option<Self> {
        let value = serde_json::from_slice(&raw).ok()?;
        Some(Self { raw, value })
    }

    /// The JSON exactly as PolyAI sent it (key order and spacing kept).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The parsed JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// The PolyAI client.
#[derive(Clone)]
pub struct PolyAiClient {
    upstream: Upstream,
    base: ApiBaseUrl,
    api_key: Option<SecretString>,
    dry_run: bool,
}

impl PolyAiClient {
    /// A client for the configured API; `--dev` makes it answer a demo state
    /// without calling PolyAI.
    pub fn new(settings: &Settings, upstream: Upstream) -> Self {
        Self {
            upstream,
            base: settings.polyai.api_base_url.clone(),
            api_key: settings.polyai.api_key.clone(),
            dry_run: settings.dev,
        }
    }

    /// `GET /v1/handoff_state?id={call}`. `None` when PolyAI has no state
    /// for the call (404).
    ///
    /// # Errors
    /// [`VendorError`] when `POLYAI_API_KEY` is unset, PolyAI is unreachable
    /// or refuses, or its answer is not JSON.
    pub async fn handoff_state(&self, call: &CallSid) -> Result<Option<HandoffState>, VendorError> {
        if self.dry_run {
            return Ok(Some(dev_state()));
        }
        let not_configured = || VendorError::NotConfigured {
            vendor: Vendor::PolyAi,
            variable: "POLYAI_API_KEY",
        };
        let mut key = self
            .api_key
            .as_ref()
            .and_then(|key| HeaderValue::from_str(key.expose_secret()).ok())
            .ok_or_else(not_configured)?;
        key.set_sensitive(true);
        let url = self.base.join(&format!(
            "/v1/handoff_state?id={}",
            encode_query_text(call.as_ref())
        ));
        let answer = self
            .upstream
            .send(Vendor::PolyAi.upstream(), || {
                self.upstream
                    .http()
                    .get(&url)
                    .header("x-api-key", key.clone())
                    .header(ACCEPT, "application/json")
            })
            .await
            .map_err(|source| VendorError::Upstream {
                vendor: Vendor::PolyAi,
                source,
            })?;
        let status = answer.status.as_u16();
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(VendorError::Refused {
                vendor: Vendor::PolyAi,
                status,
                detail: None,
            });
        }
        HandoffState::parse(answer.body)
            .map(Some)
            .ok_or(VendorError::Decode {
                vendor: Vendor::PolyAi,
                status,
            })
    }
}

/// The state `--dev` answers: what a PolyAI agent typically hands off.
fn dev_state() -> HandoffState {
    let value = serde_json::json!({
        "dev_demo": true,
        "reason": "caller asked for an agent",
        "summary": "Wants to change the delivery address of order 1234.",
    });
    HandoffState {
        raw: Bytes::from(value.to_string()),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handoff_state_keeps_the_exact_json_and_rejects_anything_else() {
        let raw = Bytes::from_static(br#"{ "z": 1, "a": {"b": [true]} }"#);
        let state = HandoffState::parse(raw.clone()).unwrap();
        assert_eq!(state.raw(), &raw);
        assert_eq!(state.value()["a"]["b"][0], true);
        assert!(HandoffState::parse(Bytes::from_static(b"<html>")).is_none());
        assert!(HandoffState::parse(Bytes::new()).is_none());
    }
}
