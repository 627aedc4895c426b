//! `POST /virtual-agent/connect` and `POST /virtual-agent/complete`: a
//! Google Dialogflow CX agent through Twilio's `<VirtualAgent>`.
//!
//! `/connect` connects the call to the agent's one-click integration; when
//! the session ends Twilio requests `/complete` (the `<Connect action>`)
//! with `VirtualAgentStatus` (`completed`, `live-agent-handoff`, `hangup`,
//! `failed`; with session resumption also `paused` and `timeout`),
//! `VirtualAgentProviderData` (JSON: `ConversationId`,
//! `EndUserId` and, on a handoff, the agent's `AgentHandoffParameters`) and,
//! on a failure, `VirtualAgentErrorCode`, `VirtualAgentError` and maybe
//! `VirtualAgentProviderError`
//! (<https://www.twilio.com/docs/voice/twiml/connect/virtualagent>).

use actix_web::web;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::handoff::{self, Handoff, Vendor};
use crate::twilio::TwilioRequest;
use crate::twiml::{Noun, VoiceResponse};
use crate::voice::{self, SessionEnd, VoiceAnswer, VoiceError};

/// Answer `<Connect action><VirtualAgent connectorName/></Connect>`.
pub async fn connect(settings: web::Data<Settings>, request: TwilioRequest) -> VoiceAnswer {
    connect_to_agent(&settings, &request).into()
}

fn connect_to_agent(
    settings: &Settings,
    request: &TwilioRequest,
) -> Result<VoiceResponse, VoiceError> {
    let connector =
        settings
            .dialogflow_connector
            .as_ref()
            .ok_or(VoiceError::AgentNotConfigured {
                code: "dialogflow_cx_not_configured",
                variable: "DIALOGFLOW_CX_CONNECTOR_NAME",
            })?;
    let noun = Noun::VirtualAgent {
        connector_name: connector.clone(),
    };
    Ok(voice::connect(
        settings,
        request,
        "/virtual-agent/complete",
        noun,
        voice::forwarded_parameters(request),
    ))
}

/// Act on how the session ended: a live-agent handoff goes to Flex, and so
/// does any other unfinished session (as a failure); a completed session
/// (or a caller who hung up) ends the call.
pub async fn complete(settings: web::Data<Settings>, request: TwilioRequest) -> VoiceAnswer {
    voice::counted(Vendor::DialogflowCx, act_on_session(&settings, &request))
}

/// The answer to the end of a session and the outcome counted: the
/// handler's work without HTTP.
///
/// # Errors
/// [`VoiceError::WorkflowNotConfigured`] when a person should take over but
/// `FLEX_WORKFLOW_SID` is unset.
pub fn act_on_session(
    settings: &Settings,
    request: &TwilioRequest,
) -> Result<(VoiceResponse, &'static str), VoiceError> {
    let text = |name| request.get(name).filter(|v| !v.trim().is_empty());
    let status = text("VirtualAgentStatus").unwrap_or_default();
    let data = text("VirtualAgentProviderData").map(handoff::agent_data);
    let conversation = data
        .as_ref()
        .and_then(|d| d.get("ConversationId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Only `completed` (or no status) says the agent finished. Any other
    // status with the caller on the line (`failed`; `paused` and `timeout`,
    // which came with Twilio's session resumption and only a Studio flow can
    // resume; one added later) must not end the call: a person takes over.
    let finished = status.is_empty() || status.eq_ignore_ascii_case("completed");
    let failed = !finished || text("VirtualAgentErrorCode").is_some();
    let end = if status.eq_ignore_ascii_case("hangup") {
        SessionEnd::Over("caller_hung_up")
    } else if status.eq_ignore_ascii_case("live-agent-handoff") {
        // The agent's handoff parameters are what it hands over; without
        // them, whatever the provider sent.
        let context = match data {
            Some(Value::Object(mut data)) => data
                .remove("AgentHandoffParameters")
                .unwrap_or(Value::Object(data)),
            Some(text) => text,
            None => Value::Null,
        };
        SessionEnd::HandedOver(Handoff::new(Vendor::DialogflowCx, conversation, context))
    } else if failed {
        let error = json!({
            "virtual_agent_status": text("VirtualAgentStatus"),
            "error_code": text("VirtualAgentErrorCode"),
            "error_message": text("VirtualAgentError"),
            // Dialogflow's own words when it refused the connector (32601).
            "provider_error": text("VirtualAgentProviderError"),
        });
        SessionEnd::Failed(Handoff::failed(Vendor::DialogflowCx, conversation, error))
    } else {
        SessionEnd::Over("ended")
    };
    voice::session_ended(settings, request, end)
}
