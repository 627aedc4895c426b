//! `POST /conversation-relay/connect` and `POST /conversation-relay/complete`:
//! an LLM voice agent on Twilio ConversationRelay (Twilio Agent Connect
//! builds on it).
//!
//! `/connect` connects the call to the agent's WebSocket app; when the
//! session ends Twilio requests `/complete` (the `<Connect action>`) with
//! the session's parameters (<https://www.twilio.com/docs/voice/twiml/connect/conversationrelay>):
//! `SessionId`, `SessionStatus`, `SessionDuration`, `HandoffData` (the text
//! of the `handoffData` the app put in its `end` message) and, when the
//! session failed, `ErrorCode` and `ErrorMessage`.

use actix_web::web;
use serde_json::json;

use crate::config::Settings;
use crate::handoff::{self, Handoff, Vendor};
use crate::twilio::TwilioRequest;
use crate::twiml::{Noun, Parameter, VoiceResponse};
use crate::voice::{self, SessionEnd, VoiceAnswer, VoiceError};

/// Answer `<Connect action><ConversationRelay url …><Parameter …/></ConversationRelay></Connect>`.
pub async fn connect(settings: web::Data<Settings>, request: TwilioRequest) -> VoiceAnswer {
    connect_to_agent(&settings, &request).into()
}

fn connect_to_agent(
    settings: &Settings,
    request: &TwilioRequest,
) -> Result<VoiceResponse, VoiceError> {
    let relay = &settings.relay;
    let url = relay.url.as_ref().ok_or(VoiceError::AgentNotConfigured {
        code: "conversation_relay_not_configured",
        variable: "CONVERSATION_RELAY_URL",
    })?;
    // Only a real call SID reaches the agent: anything else is noise it
    // would have to second-guess.
    let call = request.call_sid(&["CallSid"]).ok();
    let parameters = call
        .map(|sid| Parameter::new("call_sid", sid.as_ref()))
        .into_iter()
        .chain(voice::forwarded_parameters(request))
        .collect();
    let noun = Noun::ConversationRelay {
        url: url.as_ref().to_owned(),
        welcome_greeting: relay.welcome_greeting.clone(),
        language: relay.language.clone(),
        conversation_configuration: relay.conversation_configuration.clone(),
    };
    Ok(voice::connect(
        settings,
        request,
        "/conversation-relay/complete",
        noun,
        parameters,
    ))
}

/// Act on how the session ended: a handoff or a failure goes to Flex, a
/// session that simply ended (or a caller who hung up) ends the call.
pub async fn complete(settings: web::Data<Settings>, request: TwilioRequest) -> VoiceAnswer {
    voice::counted(
        Vendor::ConversationRelay,
        act_on_session(&settings, &request),
    )
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
    let session_id = text("SessionId").map(str::to_owned);
    let failed = text("ErrorCode").is_some()
        || text("SessionStatus").is_some_and(|s| s.eq_ignore_ascii_case("failed"));
    let end = match text("HandoffData") {
        // Twilio Agent Connect's handoff tool puts its reason under
        // `attributes`: `{"conversationId", …, "attributes": {"reason", …}}`.
        Some(data) => SessionEnd::HandedOver(
            Handoff::new(
                Vendor::ConversationRelay,
                session_id,
                handoff::agent_data(data),
            )
            .or_nested("attributes"),
        ),
        // A broken app must not drop the caller: a person takes over.
        None if failed => {
            let error = json!({
                "session_status": text("SessionStatus"),
                "error_code": text("ErrorCode"),
                "error_message": text("ErrorMessage"),
            });
            SessionEnd::Failed(Handoff::failed(
                Vendor::ConversationRelay,
                session_id,
                error,
            ))
        }
        None => SessionEnd::Over("ended"),
    };
    voice::session_ended(settings, request, end)
}
