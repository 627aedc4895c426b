//! `POST /receive-call`: connect an incoming call to the watsonx assistant's
//! SIP endpoint, with a `referUrl` so the assistant can transfer it back.

use actix_web::web;
use tracing_actix_web::RootSpan;

use crate::config::Settings;
use crate::domain::E164;
use crate::twilio::TwilioRequest;
use crate::twiml::{Verb, VoiceResponse};
use crate::voice::{self, TwimlReply, VoiceError};

/// Answer `<Dial answerOnBridge referUrl><Sip>sip:{Called}@{SIP_URI_HOST}</Sip></Dial>`.
pub async fn receive_call(
    settings: web::Data<Settings>,
    request: TwilioRequest,
    span: RootSpan,
) -> TwimlReply {
    let call_sid = super::call_sid(&request, &span);
    let result = voice::caught(async { dial_assistant(&settings, &request) }).await;
    voice::reply(&settings, call_sid.as_ref(), result)
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
    // Without a configured origin the URL stays relative: Twilio resolves it
    // against the URL it just requested, which is right unless a proxy
    // rewrites paths (then set PUBLIC_BASE_URL).
    let refer_url = match &settings.public_base_url {
        Some(base) => base.join("/refer-handler"),
        None => "/refer-handler".to_owned(),
    };
    // Concatenation allocates once, exactly; formatting grows the string.
    let sip_uri = ["sip:", called.as_ref(), "@", host.as_ref(), secure].concat();
    Ok(VoiceResponse::new().verb(Verb::DialSip {
        answer_on_bridge: true,
        refer_url,
        sip_uri,
    }))
}
