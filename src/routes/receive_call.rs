//! `POST /receive-call`: connect an incoming call to the watsonx assistant's
//! SIP endpoint, with a `referUrl` so the assistant can transfer it back.

use actix_web::web;

use crate::config::Settings;
use crate::domain::E164;
use crate::twilio::TwilioRequest;
use crate::twiml::{Verb, VoiceResponse};
use crate::voice::{self, VoiceAnswer, VoiceError};

/// Answer `<Dial answerOnBridge referUrl><Sip>sip:{Called}@{SIP_URI_HOST}</Sip></Dial>`.
pub async fn receive_call(settings: web::Data<Settings>, request: TwilioRequest) -> VoiceAnswer {
    dial_assistant(&settings, &request).into()
}

fn dial_assistant(
    settings: &Settings,
    request: &TwilioRequest,
) -> Result<VoiceResponse, VoiceError> {
    let host = settings
        .voice
        .sip_uri_host
        .as_ref()
        .ok_or(VoiceError::SipHostNotConfigured)?;
    let called = request.get("Called").ok_or(VoiceError::MissingCalled)?;
    let called = E164::parse(called).map_err(|_| VoiceError::InvalidCalled)?;
    let secure = if settings.voice.sip_secure {
        ";secure=true"
    } else {
        ""
    };
    Ok(VoiceResponse::new().verb(Verb::DialSip {
        answer_on_bridge: true,
        // Without a configured origin the URL stays relative: Twilio
        // resolves it against the URL it just requested, which is right
        // unless a proxy rewrites paths (then set PUBLIC_BASE_URL).
        refer_url: voice::callback_url(settings, "/refer-handler"),
        sip_uri: format!("sip:{}@{host}{secure}", called.as_ref()),
    }))
}
