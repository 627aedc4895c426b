//! `POST /engage` and `POST /call-complete`: ASAPP GenerativeAgent.
//!
//! `/engage` connects the call to GenerativeAgent over a media stream; when
//! the stream ends Twilio requests `/call-complete` (the `<Connect action>`),
//! which reads the call-transfer result and acts on it: a human agent in
//! Flex, the Studio flow, or the end of the call. A Studio flow can instead
//! read that result as JSON.

use actix_web::http::header;
use actix_web::{Either, HttpRequest, HttpResponse, web};

use super::lookup::CallLookupError;
use crate::config::Settings;
use crate::domain::{CallSid, encode_query_text};
use crate::handoff::{Handoff, Vendor};
use crate::twilio::{CallSidProblem, TwilioRequest};
use crate::twiml::{Noun, Parameter, Verb, VoiceResponse};
use crate::vendors::asapp::AsappClient;
use crate::voice::{self, VoiceAnswer, VoiceError};

/// Where `/call-complete` reads the call SID: the `callSid` flexbridge puts
/// in the `<Connect action>` URL, else Twilio's own `CallSid`.
const CALL_SID_PARAMS: [&str; 2] = ["callSid", "CallSid"];

/// Answer `<Connect action><Stream url>` to GenerativeAgent's media stream,
/// with the call SID as transfer and conversation id.
pub async fn engage(
    settings: web::Data<Settings>,
    asapp: web::Data<AsappClient>,
    request: TwilioRequest,
) -> VoiceAnswer {
    connect_to_agent(&settings, &asapp, &request).await.into()
}

async fn connect_to_agent(
    settings: &Settings,
    asapp: &AsappClient,
    request: &TwilioRequest,
) -> Result<VoiceResponse, VoiceError> {
    let call = request.call_sid(&["CallSid"])?;
    let url = asapp
        .stream_url()
        .await
        .map_err(VoiceError::AgentUnavailable)?;
    let ids = ["asapp_callTransferId", "asapp_externalConversationId"]
        .map(|name| Parameter::new(name, call.as_ref()));
    let callback = format!(
        "/call-complete?callSid={}",
        encode_query_text(call.as_ref())
    );
    Ok(voice::connect(
        settings,
        request,
        &callback,
        Noun::Stream {
            url: url.as_ref().to_owned(),
        },
        ids.into_iter()
            .chain(voice::forwarded_parameters(request))
            .collect(),
    ))
}

/// Act on the call-transfer result: TwiML for Twilio's `<Connect action>`
/// callback, or JSON for a Studio flow (`Accept: application/json` or
/// `?format=json`).
pub async fn call_complete(
    req: HttpRequest,
    asapp: web::Data<AsappClient>,
    settings: web::Data<Settings>,
    request: TwilioRequest,
) -> Either<VoiceAnswer, Result<HttpResponse, CallLookupError>> {
    let call = request.call_sid(&CALL_SID_PARAMS);
    if wants_json(&req) {
        return Either::Right(transfer_as_json(&asapp, call).await);
    }
    Either::Left(voice::counted(
        Vendor::Asapp,
        act_on_transfer(&settings, &asapp, call).await,
    ))
}

/// Whether the caller wants JSON rather than TwiML: `format=json` in the
/// query, or `application/json` among the media types it accepts.
pub(super) fn wants_json(req: &HttpRequest) -> bool {
    let format = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "format")
        .is_some_and(|(_, value)| value.eq_ignore_ascii_case("json"));
    format
        || req
            .headers()
            .get_all(header::ACCEPT)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|range| range.split(';').next())
            .any(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The five fields of ASAPP's Studio sample, for a Make HTTP Request widget.
async fn transfer_as_json(
    asapp: &AsappClient,
    call: Result<CallSid, CallSidProblem>,
) -> Result<HttpResponse, CallLookupError> {
    let call = call.map_err(|p| p.for_lookup("callSid or CallSid"))?;
    let transfer = asapp
        .call_transfer(&call)
        .await?
        .ok_or(CallLookupError::TransferNotFound)?;
    Ok(HttpResponse::Ok().json(transfer))
}

/// The TwiML for a transfer result and the outcome counted for it.
///
/// `AGENT` goes to Flex whatever the status, since the transfer variables
/// are there; an `EXPIRED` transfer without it falls back (what GenerativeAgent
/// decided is lost, and the caller is still on the line); anything else
/// (`SYSTEM`, completed) ends the call: GenerativeAgent is done with it.
async fn act_on_transfer(
    settings: &Settings,
    asapp: &AsappClient,
    call: Result<CallSid, CallSidProblem>,
) -> Result<(VoiceResponse, &'static str), VoiceError> {
    let call = call?;
    let Some(transfer) = asapp.call_transfer(&call).await? else {
        // ASAPP keeps no result when the caller hangs up: nothing is wrong.
        tracing::info!(
            "no ASAPP call transfer: the caller hung up before GenerativeAgent finished"
        );
        return Ok((VoiceResponse::new().verb(Verb::Hangup), "caller_hung_up"));
    };
    tracing::info!(
        asapp.status = transfer.status,
        asapp.transfer_type = transfer.transfer_type,
        "ASAPP call transfer"
    );
    if transfer.transfer_type.as_deref() == Some("AGENT") {
        // Serialising a struct of strings and JSON values cannot fail.
        let details = serde_json::to_value(&transfer).unwrap_or_default();
        let handoff = Handoff::new(
            Vendor::Asapp,
            Some(call.to_string()),
            transfer.transfer_variables.clone(),
        );
        let variables = &transfer.transfer_variables;
        let attributes = voice::agent_task_attributes(&call, variables, details, handoff);
        return Ok((voice::enqueue(settings, &attributes)?, "handed_over"));
    }
    if transfer.status == "EXPIRED" {
        return Err(VoiceError::TransferExpired);
    }
    Ok((VoiceResponse::new().verb(Verb::Hangup), "ended"))
}
