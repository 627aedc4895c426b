//! Handing a customer from an AI Assistant to a person: Flex Interactions
//! for conversations, a call update for voice, a Studio webhook for
//! `/tools/studio-handover`; each at most once per conversation or call
//! within the dedup window.

mod redis_store;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub use redis_store::{RedisStore, StoreError, ping};
pub use store::{Claim, Clock, HandoverStore, MemoryStore, StoreState, StoreStatus};

use crate::config::Settings;
use crate::domain::{
    ConversationServiceSid, ConversationSid, FlowSid, Identity, SessionId, Sid, SidError, SidKind,
    WorkflowSid, WorkspaceSid,
};
use crate::handoff::{Handoff, Vendor};
use crate::twilio::client::{ClientError, DryRunRequest, Sent, TwilioClient};
use crate::twiml::VoiceResponse;

/// Fields that select targets rather than describe the customer.
const OVERRIDES: [&str; 3] = ["FlexWorkspaceSid", "FlexWorkflowSid", "FlowSid"];

/// A customer an AI Assistant hands over, as its tool request describes them.
#[derive(Debug, Clone)]
pub struct HandoverRequest {
    /// `X-Session-Id`: the conversation or call.
    pub session: SessionId,
    /// `X-Identity`: who the customer is.
    pub identity: Identity,
    /// String fields of the tool input, in order; target overrides among them.
    pub fields: Vec<(String, String)>,
    /// Query parameters, where target overrides may also be given.
    pub query: Vec<(String, String)>,
}

impl HandoverRequest {
    /// An override SID from the tool input or the query (input first).
    /// Every value given must be a SID, not only the one used: a malformed
    /// override is a mistake to report wherever it was made.
    fn override_sid<K: SidKind>(
        &self,
        name: &'static str,
    ) -> Result<Option<Sid<K>>, HandoverError> {
        let mut first = None;
        let given = [&self.fields, &self.query]
            .into_iter()
            .flatten()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty());
        for value in given {
            let sid = Sid::parse(value)
                .map_err(|source| HandoverError::InvalidOverride { name, source })?;
            first.get_or_insert(sid);
        }
        Ok(first)
    }
}

/// Why a handover could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    /// A target override is not a SID of its kind.
    #[error("{name}: {source}")]
    InvalidOverride {
        /// The override's field name.
        name: &'static str,
        /// What is wrong with it.
        source: SidError,
    },
    /// A Studio handover of a voice session.
    #[error("a Studio handover needs a conversation; voice sessions use /tools/flex-handover")]
    VoiceToStudio,
    /// A setting the handover needs is unset.
    #[error("{0} is not set")]
    NotConfigured(&'static str),
    /// The Twilio call failed.
    #[error(transparent)]
    Twilio(#[from] ClientError),
    /// A concurrent handover of the same session did not finish in time.
    #[error("a handover of this conversation is still in progress")]
    InProgress,
}

/// How often a waiting request re-checks a store that cannot notify.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What a handover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Created now: the new SID.
    HandedOver(String),
    /// Done within the window already: the first SID.
    AlreadyHandedOver(String),
    /// `--dev`: the request that would have been sent.
    DryRun(DryRunRequest),
}

/// Handovers, with their client, store and defaults.
pub struct Handovers {
    client: TwilioClient,
    store: Arc<dyn HandoverStore>,
    dedup: Duration,
    /// How long a request waits for a concurrent one, and the claim lease.
    wait: Duration,
    workspace: Option<WorkspaceSid>,
    workflow: Option<WorkflowSid>,
    studio_flow: Option<FlowSid>,
}

impl Handovers {
    /// Handovers as the settings describe, remembered in `store`.
    pub fn new(settings: &Settings, client: TwilioClient, store: Arc<dyn HandoverStore>) -> Self {
        Self {
            client,
            store,
            dedup: settings.tools.handover_dedup,
            wait: settings.upstream_timeout,
            workspace: settings.flex.workspace_sid.clone(),
            workflow: settings.flex.workflow_sid.clone(),
            studio_flow: settings.tools.studio_flow_sid.clone(),
        }
    }

    /// The handover store's kind and state, for `/healthz?detail=true`.
    pub fn store_status(&self) -> StoreStatus {
        self.store.status()
    }

    /// Hand the session to a Flex agent.
    ///
    /// # Errors
    /// [`HandoverError`] for bad overrides, missing configuration or Twilio failures.
    pub async fn to_flex(&self, request: &HandoverRequest) -> Result<Outcome, HandoverError> {
        let workflow = request
            .override_sid("FlexWorkflowSid")?
            .or_else(|| self.workflow.clone())
            .ok_or(HandoverError::NotConfigured("FLEX_WORKFLOW_SID"))?;
        // Checked for voice sessions too, which have no use for it.
        let workspace = request.override_sid("FlexWorkspaceSid")?;
        let attributes = task_attributes(request);
        match &request.session {
            SessionId::Conversation { conversation, .. } => {
                let workspace = workspace
                    .or_else(|| self.workspace.clone())
                    .ok_or(HandoverError::NotConfigured("FLEX_WORKSPACE_SID"))?;
                let channel = json!({
                    "type": request.identity.channel_type().as_str(),
                    "initiated_by": "customer",
                    "properties": { "media_channel_sid": conversation.as_ref() },
                });
                let routing = json!({
                    "properties": {
                        "workspace_sid": workspace.as_ref(),
                        "workflow_sid": workflow.as_ref(),
                        "task_channel_unique_name": "chat",
                        "attributes": attributes,
                    },
                });
                self.once(&format!("flex:{conversation}"), || {
                    self.client.create_interaction(&channel, &routing)
                })
                .await
            }
            SessionId::Voice { call } => {
                let twiml = VoiceResponse::enqueue(&workflow, &attributes).render();
                self.once(&format!("flex:{call}"), || {
                    self.client.update_call(call, &twiml)
                })
                .await
            }
        }
    }

    /// Hand the conversation to a Studio flow through a conversation-scoped webhook.
    ///
    /// # Errors
    /// [`HandoverError`] for voice sessions, bad overrides, missing
    /// configuration or Twilio failures.
    pub async fn to_studio(&self, request: &HandoverRequest) -> Result<Outcome, HandoverError> {
        let (service, conversation): (&ConversationServiceSid, &ConversationSid) =
            match &request.session {
                SessionId::Conversation {
                    service,
                    conversation,
                } => (service, conversation),
                SessionId::Voice { .. } => return Err(HandoverError::VoiceToStudio),
            };
        let flow = request
            .override_sid("FlowSid")?
            .or_else(|| self.studio_flow.clone())
            .ok_or(HandoverError::NotConfigured("STUDIO_FLOW_SID"))?;
        self.once(&format!("studio:{conversation}"), || {
            self.client.add_studio_webhook(service, conversation, &flow)
        })
        .await
    }

    /// Run `call` at most once per `key` within the dedup window.
    async fn once<F, Fut>(&self, key: &str, call: F) -> Result<Outcome, HandoverError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Sent, ClientError>>,
    {
        if self.dedup.is_zero() {
            return Ok(outcome(call().await?));
        }
        let deadline = Instant::now() + self.wait;
        // The lease outlives the upstream deadline, so a live request keeps it.
        let lease = self.wait + Duration::from_secs(2);
        loop {
            match self.store.claim(key, lease).await {
                Claim::Existing(sid) => return Ok(Outcome::AlreadyHandedOver(sid)),
                Claim::InProgress(waiter) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        return Err(HandoverError::InProgress);
                    }
                    match waiter {
                        Some(mut waiter) => {
                            let _ = tokio::time::timeout(remaining, waiter.changed()).await;
                        }
                        None => tokio::time::sleep(POLL_INTERVAL.min(remaining)).await,
                    }
                }
                Claim::Acquired => {
                    return match call().await {
                        Ok(Sent::Done(sid)) => {
                            self.store.complete(key, &sid, self.dedup).await;
                            Ok(Outcome::HandedOver(sid))
                        }
                        Ok(Sent::DryRun(request)) => {
                            self.store.release(key).await;
                            Ok(Outcome::DryRun(request))
                        }
                        Err(e) => {
                            self.store.release(key).await;
                            Err(e.into())
                        }
                    };
                }
            }
        }
    }
}

fn outcome(sent: Sent) -> Outcome {
    match sent {
        Sent::Done(sid) => Outcome::HandedOver(sid),
        Sent::DryRun(request) => Outcome::DryRun(request),
    }
}

/// Task attributes: who the customer is (`from`, `customerName`,
/// `customerAddress`, as Twilio's sample sets them), then every string field
/// of the tool input, then the `handoff` with the tool input as its context.
/// Input fields may refine `customerName` but never replace the
/// routing-relevant `from` and `customerAddress`.
fn task_attributes(request: &HandoverRequest) -> Value {
    let address = request.identity.address();
    let mut attributes = Map::new();
    attributes.insert("from".into(), address.clone().into());
    attributes.insert("customerName".into(), address.clone().into());
    attributes.insert("customerAddress".into(), address.into());
    let input: Map<String, Value> = request
        .fields
        .iter()
        .filter(|(name, _)| !OVERRIDES.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone().into()))
        .collect();
    for (name, value) in &input {
        if !matches!(name.as_str(), "from" | "customerAddress") {
            attributes.insert(name.clone(), value.clone());
        }
    }
    let session = Some(request.session.to_string());
    Handoff::new(Vendor::AiAssistant, session, input.into()).into_attributes(attributes)
}
