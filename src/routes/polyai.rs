//! `POST /polyai/connect`, `GET|POST /polyai/handoff-state` and
//! `POST /polyai/call-complete`: PolyAI voice agents.
//!
//! `/polyai/connect` hands the call to the PolyAI connector; when PolyAI
//! hands it back Twilio requests `/polyai/call-complete` (the `<Connect
//! action>`), which puts the call in front of a Flex agent with the agent's
//! handoff state as task attributes. A Studio flow reads the same state as
//! JSON from `/polyai/handoff-state`.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};

use super::lookup::CallLookupError;
use crate::config::Settings;
use crate::handoff::{self, Handoff};
use crate::twilio::TwilioRequest;
use crate::twiml::{Verb, VoiceResponse};
use crate::vendors::polyai::PolyAiClient;
use crate::voice::{self, VoiceAnswer, VoiceError};

/// Answer `<Connect connectorId action/>`, after `POLYAI_CONNECT_MESSAGE` when set.
pub async fn connect(settings: web::Data<Settings>, _request: TwilioRequest) -> VoiceAnswer {
    connect_to_polyai(&settings).into()
}

fn connect_to_polyai(settings: &Settings) -> Result<VoiceResponse, VoiceError> {
    let connector =
        settings
            .polyai
            .connector_id
            .as_ref()
            .ok_or(VoiceError::AgentNotConfigured {
                code: "polyai_not_configured",
                variable: "POLYAI_CONNECTOR_ID",
            })?;
    let mut response = VoiceResponse::new();
    if let Some(message) = &settings.polyai.connect_message {
        response = response.verb(Verb::Say {
            text: message.clone(),
        });
    }
    Ok(response.verb(Verb::ConnectConnector {
        connector_id: connector.clone(),
        action: voice::callback_url(settings, "/polyai/call-complete"),
    }))
}

/// PolyAI's handoff state for `call_sid` (or `CallSid`), its JSON unchanged.
pub async fn handoff_state(
    polyai: web::Data<PolyAiClient>,
    request: TwilioRequest,
) -> Result<HttpResponse, CallLookupError> {
    let call = request
        .call_sid(&["call_sid", "CallSid"])
        .map_err(|p| p.for_lookup("call_sid or CallSid"))?;
    let state = polyai
        .handoff_state(&call)
        .await?
        .ok_or(CallLookupError::HandoffStateNotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(state.raw().clone()))
}

/// Enqueue the call into Flex with PolyAI's handoff state as task attributes.
pub async fn call_complete(
    settings: web::Data<Settings>,
    polyai: web::Data<PolyAiClient>,
    request: TwilioRequest,
) -> VoiceAnswer {
    voice::counted(
        handoff::Vendor::PolyAi,
        enqueue_with_state(&settings, &polyai, &request).await,
    )
}

async fn enqueue_with_state(
    settings: &Settings,
    polyai: &PolyAiClient,
    request: &TwilioRequest,
) -> Result<(VoiceResponse, &'static str), VoiceError> {
    let call = request.call_sid(&["CallSid"])?;
    let state = polyai
        .handoff_state(&call)
        .await?
        .ok_or(VoiceError::HandoffStateNotFound)?;
    let state = state.value();
    let handoff = Handoff::new(
        handoff::Vendor::PolyAi,
        Some(call.to_string()),
        state.clone(),
    );
    let attributes = voice::agent_task_attributes(&call, state, state.clone(), handoff);
    Ok((voice::enqueue(settings, &attributes)?, "handed_over"))
}
