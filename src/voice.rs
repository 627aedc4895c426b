//! Answers of the voice routes, and the fallback that keeps a caller in care
//! whenever a route cannot do its normal job.
//!
//! Twilio plays "an application error has occurred" and drops the caller on
//! any non-2xx answer or invalid TwiML, so voice routes never return an
//! error: a voice handler answers a [`VoiceAnswer`], and its `Responder`
//! is the one place a [`VoiceError`] becomes TwiML.

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::http::header;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, Responder, web};
use serde_json::{Map, Value};

use crate::config::{DEFAULT_FALLBACK_MESSAGE, Settings};
use crate::domain::{CallSid, ReferTo, ReferToError, SessionHistoryKey, SidError};
use crate::handoff::{Handoff, Vendor};
use crate::twilio::{CallSidProblem, TwilioRequest};
use crate::twiml::{self, Noun, Parameter, Verb, VoiceResponse};
use crate::vendors::VendorError;

/// Why a voice route falls back; each has a stable code for Studio and logs.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// `Called` is absent.
    #[error("the request has no Called parameter")]
    MissingCalled,
    /// `Called` is not `+` and 3–15 digits (a SIP URI, an injection attempt…).
    #[error("Called is not an E.164 number (+ and 3 to 15 digits)")]
    InvalidCalled,
    /// `SIP_URI_HOST` is unset.
    #[error("SIP_URI_HOST is not set, so there is no assistant to dial")]
    SipHostNotConfigured,
    /// `ReferTransferTarget` is absent.
    #[error("the request has no ReferTransferTarget parameter")]
    MissingReferTarget,
    /// `ReferTransferTarget` is not a Refer-To value.
    #[error("ReferTransferTarget is malformed: {0}")]
    InvalidReferTarget(#[from] ReferToError),
    /// The call SID the route needs is absent.
    #[error("the request has no call SID")]
    MissingCallSid,
    /// The call SID is not `CA` and 32 hex digits.
    #[error("the call SID is malformed: {0}")]
    InvalidCallSid(#[source] SidError),
    /// The AI agent the caller was about to reach cannot be connected to
    /// (no media stream URL).
    #[error("the AI agent cannot be reached: {0}")]
    AgentUnavailable(Arc<VendorError>),
    /// A vendor call that decides what happens next failed.
    #[error(transparent)]
    Vendor(#[from] VendorError),
    /// ASAPP's call transfer expired, so what GenerativeAgent decided is lost.
    #[error("the ASAPP call transfer has expired")]
    TransferExpired,
    /// PolyAI has no handoff state for the call.
    #[error("PolyAI has no handoff state for this call")]
    HandoffStateNotFound,
    /// `FLEX_WORKFLOW_SID` is unset: there is no workflow to enqueue into.
    #[error("FLEX_WORKFLOW_SID is not set, so the call cannot be enqueued into Flex")]
    WorkflowNotConfigured,
    /// The setting naming the AI agent the caller was about to reach is unset.
    #[error("{variable} is not set, so there is no AI agent to connect the caller to")]
    AgentNotConfigured {
        /// The stable code.
        code: &'static str,
        /// The variable to set.
        variable: &'static str,
    },
    /// The route's own code panicked: a bug, logged where it was caught.
    #[error("the route panicked (a bug)")]
    Panicked,
}

impl VoiceError {
    /// Stable code, sent to Studio as `FlexbridgeError`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCalled => "missing_called",
            Self::InvalidCalled => "invalid_called",
            Self::SipHostNotConfigured => "sip_host_not_configured",
            Self::MissingReferTarget => "missing_refer_target",
            Self::InvalidReferTarget(_) => "invalid_refer_target",
            Self::MissingCallSid => "missing_call_sid",
            Self::InvalidCallSid(_) => "invalid_call_sid",
            Self::AgentUnavailable(e) => e.code(),
            Self::AgentNotConfigured { code, .. } => code,
            Self::Vendor(e) => e.code(),
            Self::TransferExpired => "asapp_transfer_expired",
            Self::HandoffStateNotFound => "polyai_handoff_state_not_found",
            Self::WorkflowNotConfigured => "flex_workflow_not_configured",
            Self::Panicked => "internal_error",
        }
    }

    /// Whether the caller hears `FALLBACK_MESSAGE` before being handed back:
    /// a caller who expected an AI agent is told why the call goes elsewhere
    /// instead of hearing it silently change course.
    fn apologise_first(&self) -> bool {
        matches!(
            self,
            Self::AgentUnavailable(_) | Self::AgentNotConfigured { .. }
        )
    }
}

impl From<CallSidProblem> for VoiceError {
    fn from(problem: CallSidProblem) -> Self {
        match problem {
            CallSidProblem::Missing => Self::MissingCallSid,
            CallSidProblem::Invalid(e) => Self::InvalidCallSid(e),
        }
    }
}

/// What a voice route answers: its TwiML, or the fallback for its error.
/// Always `200 text/xml`.
#[derive(Debug)]
pub struct VoiceAnswer(pub Result<VoiceResponse, VoiceError>);

impl<E: Into<VoiceError>> From<Result<VoiceResponse, E>> for VoiceAnswer {
    fn from(result: Result<VoiceResponse, E>) -> Self {
        Self(result.map_err(Into::into))
    }
}

impl Responder for VoiceAnswer {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse {
        let twiml = match self.0 {
            Ok(twiml) => twiml,
            Err(error) => match req.app_data::<web::Data<Settings>>() {
                Some(settings) => fallback(settings, req.extensions().get(), &error),
                None => VoiceResponse::new()
                    .verb(Verb::Say {
                        text: DEFAULT_FALLBACK_MESSAGE.to_owned(),
                    })
                    .verb(Verb::Hangup),
            },
        };
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, twiml::CONTENT_TYPE))
            .body(twiml.render_bytes())
    }
}

/// A handover's answer, its outcome counted under `vendor`
/// (`flexbridge_handovers_total`): the outcome the route names when it
/// succeeded, the error's code when it failed.
pub fn counted(
    vendor: Vendor,
    result: Result<(VoiceResponse, &'static str), VoiceError>,
) -> VoiceAnswer {
    let outcome = match &result {
        Ok((_, outcome)) => outcome,
        Err(error) => error.code(),
    };
    crate::metrics::handover(vendor.as_str(), outcome);
    VoiceAnswer(result.map(|(twiml, _)| twiml))
}

/// What a call carries back when flexbridge hands it on.
#[derive(Debug, Default)]
pub struct Handback<'a> {
    /// The call being handed on, for the Flex task.
    pub call_sid: Option<&'a CallSid>,
    /// The watsonx session history key, when there is one.
    pub key: Option<&'a SessionHistoryKey>,
    /// Why there is no key (the `FlexbridgeError` code), when there is an error.
    pub error: Option<&'static str>,
    /// The Refer-To of a transfer: its `X-` headers go to Studio, all its
    /// headers to the Flex task.
    pub refer_to: Option<&'a ReferTo>,
}

/// Return the caller to care: the Studio flow when `STUDIO_WEBHOOK_URL` is
/// set, else Flex when `FLEX_WORKFLOW_SID` is set, else the fallback message.
pub fn hand_back(settings: &Settings, handback: &Handback<'_>) -> VoiceResponse {
    let mut params: Vec<(&str, &[u8])> = Vec::new();
    if let Some(key) = handback.key {
        params.push(("SessionHistoryKey", key.as_bytes()));
    }
    if let Some(code) = handback.error {
        params.push(("FlexbridgeError", code.as_bytes()));
    }
    if let Some(refer_to) = handback.refer_to {
        params.extend(
            refer_to
                .forwarded_headers()
                .map(|h| (h.name.as_str(), h.value.as_slice())),
        );
    }
    if let Some(studio) = studio_return(settings, params) {
        return studio;
    }
    if let Some(workflow) = &settings.flex.workflow_sid {
        return VoiceResponse::enqueue(workflow, &task_attributes(handback));
    }
    tracing::error!(
        "neither STUDIO_WEBHOOK_URL nor FLEX_WORKFLOW_SID is set: the caller hears FALLBACK_MESSAGE and the call ends"
    );
    goodbye(settings)
}

/// `<Redirect>` to `STUDIO_WEBHOOK_URL` with `FlowEvent=return` and then
/// `params` (percent-encoded), which resumes the Studio flow the call came
/// from; `None` when Studio is not configured.
pub fn studio_return<'a>(
    settings: &Settings,
    params: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Option<VoiceResponse> {
    let studio = settings.voice.studio_webhook_url.as_ref()?;
    let params = std::iter::once(("FlowEvent", &b"return"[..])).chain(params);
    Some(VoiceResponse::new().verb(Verb::Redirect {
        url: studio.with_params(params),
    }))
}

/// `<Enqueue workflowSid="{FLEX_WORKFLOW_SID}">` with `attributes` as the
/// task attributes: the call goes to a Flex agent.
///
/// # Errors
/// [`VoiceError::WorkflowNotConfigured`] when `FLEX_WORKFLOW_SID` is unset.
pub fn enqueue(settings: &Settings, attributes: &Value) -> Result<VoiceResponse, VoiceError> {
    let workflow = settings
        .flex
        .workflow_sid
        .as_ref()
        .ok_or(VoiceError::WorkflowNotConfigured)?;
    Ok(VoiceResponse::enqueue(workflow, attributes))
}

/// Task attributes for a call an AI agent hands to Flex: the agent's
/// variables (`variables`, when a JSON object) as attributes, as the
/// vendor's integration guides have them, then `call_sid`, everything the
/// vendor sent (`details`) under the handoff's `vendor` name, and the
/// `handoff`. flexbridge's own win a clash: a variable of the same name is
/// still in `details`.
pub fn agent_task_attributes(
    call: &CallSid,
    variables: &Value,
    details: Value,
    handoff: Handoff,
) -> Value {
    let mut attributes = match variables {
        Value::Object(variables) => variables.clone(),
        _ => Map::new(),
    };
    attributes.insert("call_sid".into(), call.as_ref().into());
    attributes.insert(handoff.vendor.as_str().into(), details);
    handoff.into_attributes(attributes)
}

/// How an AI agent's voice session ended, as its `<Connect action>`
/// request tells.
pub enum SessionEnd {
    /// Nobody needs a person: `<Hangup/>`, counted with this outcome.
    Over(&'static str),
    /// The agent handed the caller over.
    HandedOver(Handoff),
    /// The agent's session failed with the caller still on the line.
    Failed(Handoff),
}

/// The answer to the end of an AI agent's session, and its outcome:
/// `<Hangup/>` when the caller has gone (whatever else the request says)
/// or nobody needs a person, else the caller enqueued into Flex with the
/// handoff (and `call_sid` when known).
///
/// # Errors
/// [`VoiceError::WorkflowNotConfigured`] when `FLEX_WORKFLOW_SID` is unset.
pub fn session_ended(
    settings: &Settings,
    request: &TwilioRequest,
    end: SessionEnd,
) -> Result<(VoiceResponse, &'static str), VoiceError> {
    // Twilio requests the action with the final `CallStatus` when the
    // caller hung up during the session.
    let hung_up = request.get("CallStatus").is_some_and(|status| {
        ["completed", "busy", "no-answer", "canceled", "failed"]
            .iter()
            .any(|gone| status.eq_ignore_ascii_case(gone))
    });
    let (handoff, outcome) = match end {
        _ if hung_up => return Ok((VoiceResponse::new().verb(Verb::Hangup), "caller_hung_up")),
        SessionEnd::Over(outcome) => return Ok((VoiceResponse::new().verb(Verb::Hangup), outcome)),
        SessionEnd::HandedOver(handoff) => (handoff, "handed_over"),
        SessionEnd::Failed(handoff) => (handoff, crate::handoff::SESSION_FAILED),
    };
    let mut attributes = Map::new();
    if let Ok(call) = request.call_sid(&["CallSid"]) {
        attributes.insert("call_sid".into(), call.as_ref().into());
    }
    Ok((
        enqueue(settings, &handoff.into_attributes(attributes))?,
        outcome,
    ))
}

/// Request fields passed on to an AI agent as `<Parameter>`s, besides every
/// `input_*` field (ASAPP's input variables, say).
const FORWARDED_FIELDS: [&str; 2] = ["customerId", "taskName"];

/// The prefix of request fields passed on to an AI agent.
const INPUT_PREFIX: &str = "input_";

/// `customerId`, `taskName`, then every `input_*` field in the order sent;
/// form fields before query fields, the first of a repeated name, blank
/// values left out.
pub fn forwarded_parameters(request: &TwilioRequest) -> Vec<Parameter> {
    let fields = || request.params();
    let is_input = |name: &str| name.len() > INPUT_PREFIX.len() && name.starts_with(INPUT_PREFIX);
    let named = FORWARDED_FIELDS
        .iter()
        .filter_map(|wanted| fields().find(|(name, _)| name == wanted));
    let inputs = fields().filter(|(name, _)| is_input(name));
    let mut parameters: Vec<Parameter> = Vec::new();
    for (name, value) in named.chain(inputs) {
        if value.trim().is_empty() || parameters.iter().any(|p| p.name == name) {
            continue;
        }
        parameters.push(Parameter::new(name, value));
    }
    parameters
}

/// `<Connect>` the call to an AI agent. Called directly (by a phone
/// number), the `action` is the route's `callback` path, which acts on how
/// the session ended. Called from Studio (`FlowEvent=return` in the query)
/// there is no `action`: Twilio runs the next verb when the session ends, a
/// `<Redirect>` back to the flow, which resumes there (without
/// `STUDIO_WEBHOOK_URL` the call ends with the session).
pub fn connect(
    settings: &Settings,
    request: &TwilioRequest,
    callback: &str,
    noun: Noun,
    parameters: Vec<Parameter>,
) -> VoiceResponse {
    let from_studio = request
        .query()
        .iter()
        .any(|(name, value)| name == "FlowEvent" && value.eq_ignore_ascii_case("return"));
    let connect = VoiceResponse::new().verb(Verb::Connect {
        action: (!from_studio).then(|| callback_url(settings, callback)),
        noun,
        parameters,
    });
    if !from_studio {
        return connect;
    }
    match studio_return(settings, []) {
        Some(back_to_studio) => connect.then(back_to_studio),
        None => {
            tracing::warn!(
                variable = "STUDIO_WEBHOOK_URL",
                "FlowEvent=return but no Studio flow configured: the call ends with the session"
            );
            connect
        }
    }
}

/// The URL of a flexbridge route for Twilio to request next (`path` starts
/// with `/`): absolute under `PUBLIC_BASE_URL`, else relative, which Twilio
/// resolves against the URL it just requested.
pub fn callback_url(settings: &Settings, path: &str) -> String {
    match &settings.public_base_url {
        Some(base) => base.join(path),
        None => path.to_owned(),
    }
}

/// The last resort: say the fallback message and hang up.
fn goodbye(settings: &Settings) -> VoiceResponse {
    goodbye_message(settings).verb(Verb::Hangup)
}

/// `<Say>{FALLBACK_MESSAGE}</Say>`.
fn goodbye_message(settings: &Settings) -> VoiceResponse {
    VoiceResponse::new().verb(Verb::Say {
        text: settings.voice.fallback_message.clone(),
    })
}

/// Task attributes for a call enqueued into Flex: for a watsonx transfer,
/// with the `handoff` (the key as session id, the SIP headers as context).
///
/// `call_sid` matches the name TaskRouter itself uses for voice tasks;
/// repeated SIP headers are joined with ", " as RFC 3261 §7.3.1 allows.
fn task_attributes(handback: &Handback<'_>) -> Value {
    let mut attributes = Map::new();
    if let Some(call_sid) = handback.call_sid {
        attributes.insert("call_sid".into(), call_sid.as_ref().into());
    }
    if let Some(key) = handback.key {
        attributes.insert("session_history_key".into(), key.to_string_lossy().into());
    }
    if let Some(code) = handback.error {
        attributes.insert("flexbridge_error".into(), code.into());
    }
    if let Some(refer_to) = handback.refer_to {
        let mut headers: Vec<(String, String)> = Vec::new();
        for header in refer_to.headers() {
            let value = header.value_lossy();
            match headers
                .iter_mut()
                .find(|(name, _)| name.eq_ignore_ascii_case(&header.name))
            {
                Some((_, joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                None => headers.push((header.name.clone(), value.into_owned())),
            }
        }
        let headers: Map<String, Value> = headers.into_iter().map(|(n, v)| (n, v.into())).collect();
        attributes.insert("sip_headers".into(), headers.clone().into());
        let handoff = Handoff {
            vendor: Vendor::Watsonx,
            reason: None,
            summary: None,
            session_id: handback.key.map(SessionHistoryKey::to_string_lossy),
            context: headers.into(),
        };
        return handoff.into_attributes(attributes);
    }
    attributes.into()
}

/// The answer to a voice route's failure, logged and counted: the caller is
/// returned to care ([`hand_back`]), told why first when they expected an AI
/// agent that cannot be reached.
fn fallback(settings: &Settings, call_sid: Option<&CallSid>, error: &VoiceError) -> VoiceResponse {
    crate::metrics::voice_fallback(error.code());
    tracing::warn!(
        error.code = error.code(),
        error.message = %error,
        "voice fallback: returning the caller to care"
    );
    let handback = Handback {
        call_sid,
        error: Some(error.code()),
        ..Handback::default()
    };
    let handed = hand_back(settings, &handback);
    // The last resort already says the message; saying it twice helps nobody.
    let says_it_already = matches!(handed.verbs().first(), Some(Verb::Say { .. }));
    if error.apologise_first() && !says_it_already {
        goodbye_message(settings).then(handed)
    } else {
        handed
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CALL: &str = "CA0123456789abcdef0123456789abcdef";

    #[test]
    fn an_agents_variables_become_attributes_and_flexbridges_own_win_a_clash() {
        let call = CallSid::parse(CALL).unwrap();
        let details = json!({"transferVariables": {"call_sid": "mine", "asapp": 1}});
        let handoff = json!({"vendor": "asapp", "context": {}});
        let cases = [
            (
                json!({"reason": "refund", "call_sid": "mine", "asapp": 1, "handoff": 2}),
                json!({"reason": "refund", "call_sid": CALL, "asapp": details, "handoff": handoff}),
            ),
            (
                json!(null),
                json!({"call_sid": CALL, "asapp": details, "handoff": handoff}),
            ),
            (
                json!(["a", "b"]),
                json!({"call_sid": CALL, "asapp": details, "handoff": handoff}),
            ),
            (
                json!("text"),
                json!({"call_sid": CALL, "asapp": details, "handoff": handoff}),
            ),
        ];
        for (variables, expected) in cases {
            let handoff = Handoff::new(Vendor::Asapp, None, json!({}));
            let attributes = agent_task_attributes(&call, &variables, details.clone(), handoff);
            assert_eq!(attributes, expected, "{variables}");
        }
    }

    /// Twilio's final `CallStatus` values, in any case, mean the caller is
    /// gone, whatever the session asked for; a live call is handed over.
    #[test]
    fn a_caller_gone_by_any_final_call_status_is_hung_up_on() {
        let workflow = "WW0123456789abcdef0123456789abcdef";
        let lookup = |name: &str| (name == "FLEX_WORKFLOW_SID").then(|| workflow.to_owned());
        let (settings, _) = Settings::load(&lookup, false);
        let cases = [
            (Some("completed"), "caller_hung_up"),
            (Some("Busy"), "caller_hung_up"),
            (Some("no-answer"), "caller_hung_up"),
            (Some("CANCELED"), "caller_hung_up"),
            (Some("failed"), "caller_hung_up"),
            (Some("in-progress"), "handed_over"),
            (Some("ringing"), "handed_over"),
            (None, "handed_over"),
        ];
        for (status, expected) in cases {
            let form = status
                .map(|status| ("CallStatus", status))
                .into_iter()
                .collect();
            let request = TwilioRequest::from_form(form);
            let handoff = Handoff::new(Vendor::ConversationRelay, None, json!({}));

            let (twiml, outcome) =
                session_ended(&settings, &request, SessionEnd::HandedOver(handoff)).unwrap();

            assert_eq!(outcome, expected, "{status:?}");
            let hung_up = matches!(twiml.verbs(), [Verb::Hangup]);
            assert_eq!(hung_up, expected == "caller_hung_up", "{status:?}");
        }
    }

    #[test]
    fn a_failure_is_answered_with_the_fallback_that_names_its_code() {
        let studio = "https://webhooks.twilio.com/v1/Accounts/AC0123456789abcdef0123456789abcdef/Flows/FW0123456789abcdef0123456789abcdef";
        let lookup = |name: &str| (name == "STUDIO_WEBHOOK_URL").then(|| studio.to_owned());
        let (settings, _) = Settings::load(&lookup, false);

        let answer = fallback(&settings, None, &VoiceError::Panicked).render();

        assert_eq!(
            answer,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Redirect method=\"POST\">{studio}?FlowEvent=return&amp;FlexbridgeError=internal_error</Redirect></Response>"
            )
        );
    }
}
