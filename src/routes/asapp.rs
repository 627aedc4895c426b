//! `POST /engage` and `POST /call-complete`: ASAPP GenerativeAgent.
//!
//! `/engage` connects the call to GenerativeAgent over a media stream; when
//! the stream ends Twilio requests `/call-complete` (the `<Connect action>`),
//! which reads the call-transfer result and acts on it: a human agent in
//! Flex, the Studio flow, or the end of the call. A Studio flow can instead
//! read that result as JSON.

use actix_web::http::header;
use actix_web::{Either, HttpRequest, HttpResponse, web};

use super::lookup::{CallLookupError, CallSidProblem, call_sid_in};
use crate::config::Settings;
use crate::domain::{CallSid, encode_query_text};
use crate::twilio::TwilioRequest;
use crate::twiml::{StreamParameter, Verb, VoiceResponse};
use crate::vendors::asapp::{AsappClient, TransferStatus, TransferType};
use crate::voice::{self, VoiceAnswer, VoiceError};

/// Request fields passed on to GenerativeAgent as stream parameters, besides
/// every `input_*` field (its input variables).
const FORWARDED_FIELDS: [&str; 2] = ["customerId", "taskName"];

/// The prefix of request fields that become GenerativeAgent input variables.
const INPUT_PREFIX: &str = "input_";

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
    let call = call_sid_in(request, &["CallSid"])?;
    let url = asapp
        .stream_url()
        .await
        .map_err(VoiceError::AgentUnavailable)?;
    let from_studio = request
        .query()
        .iter()
        .any(|(name, value)| name == "FlowEvent" && value.eq_ignore_ascii_case("return"));
    let action = (!from_studio).then(|| {
        let path = format!(
            "/call-complete?callSid={}",
            encode_query_text(call.as_ref())
        );
        voice::callback_url(settings, &path)
    });
    let mut parameters = vec![
        parameter("asapp_callTransferId", call.as_ref()),
        parameter("asapp_externalConversationId", call.as_ref()),
    ];
    parameters.extend(forwarded_parameters(request));
    let connect = VoiceResponse::new().verb(Verb::ConnectStream {
        action,
        url: url.as_ref().to_owned(),
        parameters,
    });
    if !from_studio {
        return Ok(connect);
    }
    // Without an action Twilio runs the next verb when the stream ends; a
    // Redirect back to the flow resumes it there, where the flow reads the
    // result from /call-complete. Without one the call simply ends.
    match voice::studio_return(settings, []) {
        Some(back_to_studio) => Ok(connect.then(back_to_studio)),
        None => {
            tracing::warn!(
                variable = "STUDIO_WEBHOOK_URL",
                "FlowEvent=return but no Studio flow configured: the call ends with the stream"
            );
            Ok(connect)
        }
    }
}

fn parameter(name: &str, value: &str) -> StreamParameter {
    StreamParameter {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// `customerId`, `taskName`, then every `input_*` field in the order sent;
/// form fields before query fields, the first of a repeated name, blank
/// values left out.
fn forwarded_parameters(request: &TwilioRequest) -> Vec<StreamParameter> {
    let fields = || request.params();
    let is_input = |name: &str| name.len() > INPUT_PREFIX.len() && name.starts_with(INPUT_PREFIX);
    let named = FORWARDED_FIELDS
        .iter()
        .filter_map(|wanted| fields().find(|(name, _)| name == wanted));
    let inputs = fields().filter(|(name, _)| is_input(name));
    let mut parameters: Vec<StreamParameter> = Vec::new();
    for (name, value) in named.chain(inputs) {
        if value.trim().is_empty() || parameters.iter().any(|p| p.name == name) {
            continue;
        }
        parameters.push(parameter(name, value));
    }
    parameters
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
    let call = call_sid_in(&request, &CALL_SID_PARAMS);
    if wants_json(&req) {
        return Either::Right(transfer_as_json(&asapp, call).await);
    }
    Either::Left(voice::counted(
        "asapp",
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
    Ok(HttpResponse::Ok().json(transfer.summary()))
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
        asapp.status = transfer.status.as_str(),
        asapp.transfer_type = transfer.transfer_type.as_ref().map(TransferType::as_str),
        "ASAPP call transfer"
    );
    if transfer.transfer_type == Some(TransferType::Agent) {
        // Serialising a struct of strings and JSON values cannot fail.
        let details = serde_json::to_value(transfer.summary()).unwrap_or_default();
        let attributes =
            voice::agent_task_attributes(&call, &transfer.transfer_variables, "asapp", details);
        return Ok((voice::enqueue(settings, &attributes)?, "handed_over"));
    }
    if transfer.status == TransferStatus::Expired {
        return Err(VoiceError::TransferExpired);
    }
    Ok((VoiceResponse::new().verb(Verb::Hangup), "ended"))
}
