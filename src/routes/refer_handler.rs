//! `POST /refer-handler`: the assistant transferred the call (SIP REFER);
//! hand it back to the Studio flow, or straight to Flex, with the watsonx
//! session history key and the transfer's SIP headers.

use actix_web::HttpMessage as _;
use actix_web::{HttpRequest, web};

use crate::config::Settings;
use crate::domain::{CallSid, ReferTo};
use crate::handoff::Vendor;
use crate::twilio::TwilioRequest;
use crate::twiml::VoiceResponse;
use crate::voice::{self, Handback, VoiceAnswer, VoiceError};

/// Answer a `<Redirect>` to Studio (or an `<Enqueue>` into Flex) carrying the key.
pub async fn refer_handler(
    req: HttpRequest,
    settings: web::Data<Settings>,
    request: TwilioRequest,
) -> VoiceAnswer {
    let call_sid = req.extensions().get::<CallSid>().cloned();
    voice::counted(
        Vendor::Watsonx,
        hand_back_transfer(&settings, &request, call_sid.as_ref()),
    )
}

/// The TwiML that returns the caller, and the outcome counted for it.
fn hand_back_transfer(
    settings: &Settings,
    request: &TwilioRequest,
    call_sid: Option<&CallSid>,
) -> Result<(VoiceResponse, &'static str), VoiceError> {
    let target = request
        .get("ReferTransferTarget")
        .filter(|t| !t.trim().is_empty())
        .ok_or(VoiceError::MissingReferTarget)?;
    let refer_to = ReferTo::parse(target)?;
    // A transfer without a key still goes back to Studio or Flex, with its
    // other headers: an agent without history beats a dropped call.
    let key = refer_to.session_history_key();
    if let Err(error) = &key {
        tracing::warn!(
            error.code = error.code(),
            error.message = %error,
            "transfer without a session history key"
        );
    }
    let destination = match (
        &settings.voice.studio_webhook_url,
        &settings.flex.workflow_sid,
    ) {
        (Some(_), _) => "returned_to_studio",
        (None, Some(_)) => "enqueued_to_flex",
        (None, None) => "no_destination",
    };
    let twiml = voice::hand_back(
        settings,
        &Handback {
            call_sid,
            key: key.as_ref().ok(),
            error: key.as_ref().err().map(|e| e.code()),
            refer_to: Some(&refer_to),
        },
    );
    Ok((twiml, key.as_ref().err().map_or(destination, |e| e.code())))
}
