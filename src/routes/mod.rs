//! The routes: one handler module per route (or per vendor's routes), and
//! the route table, where each route is listed once with its methods, the
//! kind of answer it gives and what it needs to be ready.

mod asapp;
pub mod conversation_relay;
mod health;
mod lookup;
mod metrics;
mod polyai;
mod receive_call;
mod refer_handler;
mod tools;
pub mod virtual_agent;

use std::panic::AssertUnwindSafe;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, Responder as _, ResponseError, guard, web};
use futures_util::FutureExt as _;

pub use lookup::CallLookupError;
pub use tools::ToolError;

use crate::config::Settings;
use crate::voice::{VoiceAnswer, VoiceError};

/// Whether a route can do its normal job (what it does), or what to set.
pub type Readiness = Result<String, String>;

/// What a route answers, and so how it answers a failure of its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// TwiML to Twilio; the voice fallback on any failure.
    Twiml,
    /// TwiML, or JSON for a Studio flow that asks for it (`/call-complete`).
    TwimlOrJson,
    /// JSON for a Studio flow.
    Json,
    /// JSON for an AI Assistant tool.
    Tool,
    /// Plain text or Prometheus text (operations).
    Text,
}

impl Answers {
    /// Whether a failure is answered with the voice fallback, which keeps
    /// the caller in care; the other kinds answer an error.
    pub fn falls_back(self) -> bool {
        matches!(self, Self::Twiml | Self::TwimlOrJson)
    }
}

/// One route.
pub struct Route {
    /// The path, as Twilio and users call it.
    pub path: &'static str,
    /// HTTP methods answered (others get 405).
    pub methods: &'static [&'static str],
    /// What it answers.
    pub answers: Answers,
    handler: fn() -> actix_web::Route,
    /// Whether its settings let it do its job, for `check-config` and the
    /// start-up log; `None` for routes that need none.
    pub ready: Option<fn(&Settings) -> Readiness>,
}

/// HTTP asks every server that answers GET to answer HEAD too (RFC 9110
/// §9.1), and some uptime monitors check with it; actix sends no body.
const GET: &[&str] = &["GET", "HEAD"];
const POST: &[&str] = &["POST"];
/// Twilio requests voice webhooks with POST, or GET when configured so.
const VOICE: &[&str] = &["POST", "GET"];

/// Every route flexbridge serves; `openapi.yaml` describes exactly these.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/healthz",
        methods: GET,
        answers: Answers::Text,
        handler: || web::to(health::healthz),
        ready: None,
    },
    Route {
        path: "/metrics",
        methods: GET,
        answers: Answers::Text,
        handler: || web::to(metrics::metrics),
        ready: None,
    },
    Route {
        path: "/receive-call",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(receive_call::receive_call),
        ready: Some(|s| match &s.voice.sip_uri_host {
            Some(host) => Ok(format!("dials sip:{{Called}}@{host}")),
            None => Err("set SIP_URI_HOST".to_owned()),
        }),
    },
    Route {
        path: "/refer-handler",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(refer_handler::refer_handler),
        ready: Some(
            |s| match (&s.voice.studio_webhook_url, &s.flex.workflow_sid) {
                (Some(_), _) => Ok("returns transfers to the Studio flow".to_owned()),
                (None, Some(_)) => Ok("enqueues transfers straight into Flex".to_owned()),
                (None, None) => Err("set STUDIO_WEBHOOK_URL (or FLEX_WORKFLOW_SID)".to_owned()),
            },
        ),
    },
    Route {
        path: "/tools/flex-handover",
        methods: POST,
        answers: Answers::Tool,
        handler: || web::to(tools::flex_handover),
        ready: Some(|s| {
            let targets = [
                ("FLEX_WORKFLOW_SID", s.flex.workflow_sid.is_some()),
                ("FLEX_WORKSPACE_SID", s.flex.workspace_sid.is_some()),
            ];
            needs(&[&targets, &*twilio_rest(s), &tool_callers(s)].concat())
                .map(|()| format!("hands sessions to Flex{}", dev(s, DRY_RUN)))
        }),
    },
    Route {
        path: "/tools/studio-handover",
        methods: POST,
        answers: Answers::Tool,
        handler: || web::to(tools::studio_handover),
        ready: Some(|s| {
            let flow = [("STUDIO_FLOW_SID", s.tools.studio_flow_sid.is_some())];
            needs(&[&flow, &*twilio_rest(s), &tool_callers(s)].concat())
                .map(|()| format!("hands conversations to the Studio flow{}", dev(s, DRY_RUN)))
        }),
    },
    Route {
        path: "/engage",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(asapp::engage),
        ready: Some(|s| {
            needs(&asapp_credentials(s))
                .map(|()| format!("connects calls to GenerativeAgent{}", dev(s, ASAPP_DEMO)))
        }),
    },
    Route {
        path: "/call-complete",
        methods: VOICE,
        answers: Answers::TwimlOrJson,
        handler: || web::to(asapp::call_complete),
        ready: Some(|s| {
            needs(&[&*asapp_credentials(s), &[workflow(s)]].concat())
                .map(|()| format!("enqueues AGENT transfers into Flex{}", dev(s, ASAPP_DEMO)))
        }),
    },
    Route {
        path: "/polyai/connect",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(polyai::connect),
        ready: Some(|s| {
            needs(&[("POLYAI_CONNECTOR_ID", s.polyai.connector_id.is_some())])
                .map(|()| "connects calls to the PolyAI connector".to_owned())
        }),
    },
    Route {
        path: "/polyai/handoff-state",
        methods: VOICE,
        answers: Answers::Json,
        handler: || web::to(polyai::handoff_state),
        ready: Some(|s| {
            needs(&polyai_credentials(s))
                .map(|()| format!("answers PolyAI's handoff state{}", dev(s, POLYAI_DEMO)))
        }),
    },
    Route {
        path: "/polyai/call-complete",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(polyai::call_complete),
        ready: Some(|s| {
            needs(&[&*polyai_credentials(s), &[workflow(s)]].concat()).map(|()| {
                format!(
                    "enqueues calls into Flex with the handoff state{}",
                    dev(s, POLYAI_DEMO)
                )
            })
        }),
    },
    Route {
        path: "/conversation-relay/connect",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(conversation_relay::connect),
        ready: Some(|s| match &s.relay.url {
            Some(url) => Ok(format!("connects calls to {}", url.as_ref())),
            None => Err("set CONVERSATION_RELAY_URL".to_owned()),
        }),
    },
    Route {
        path: "/conversation-relay/complete",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(conversation_relay::complete),
        ready: Some(|s| {
            needs(&[workflow(s)])
                .map(|()| "enqueues handoffs and failed sessions into Flex".to_owned())
        }),
    },
    Route {
        path: "/virtual-agent/connect",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(virtual_agent::connect),
        ready: Some(|s| match &s.dialogflow_connector {
            Some(name) => Ok(format!(
                "connects calls to the Dialogflow CX connector {name}"
            )),
            None => Err("set DIALOGFLOW_CX_CONNECTOR_NAME".to_owned()),
        }),
    },
    Route {
        path: "/virtual-agent/complete",
        methods: VOICE,
        answers: Answers::Twiml,
        handler: || web::to(virtual_agent::complete),
        ready: Some(|s| {
            needs(&[workflow(s)])
                .map(|()| "enqueues live-agent handoffs and failed sessions into Flex".to_owned())
        }),
    },
];

/// `Ok` when every listed variable is set, else what to set.
fn needs(variables: &[(&'static str, bool)]) -> Result<(), String> {
    let missing: Vec<&str> = variables
        .iter()
        .filter(|(_, set)| !set)
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("set {}", missing.join(", ")))
    }
}

fn workflow(s: &Settings) -> (&'static str, bool) {
    ("FLEX_WORKFLOW_SID", s.flex.workflow_sid.is_some())
}

/// The REST credentials the tools need to call Twilio; none in `--dev`,
/// where they make a dry run.
fn twilio_rest(s: &Settings) -> Vec<(&'static str, bool)> {
    match crate::twilio::client::missing_credentials(&s.twilio) {
        Some(variable) if !s.dev => vec![(variable, false)],
        _ => Vec::new(),
    }
}

/// The tools must know their caller: a tool key, or a signature checked
/// with the auth token.
fn tool_callers(s: &Settings) -> [(&'static str, bool); 1] {
    [(
        "TOOL_API_KEY (or TWILIO_AUTH_TOKEN)",
        s.tools.api_key.is_some()
            || s.twilio.auth_token.is_some()
            || s.twilio.secondary_auth_token.is_some()
            || s.twilio.webhook_shared_key_secret.is_some()
            || s.twilio.secondary_shared_key_secret.is_some()
            || !s.twilio.validate_signatures,
    )]
}

/// ASAPP's credentials; none in `--dev`, which answers demo values.
fn asapp_credentials(s: &Settings) -> Vec<(&'static str, bool)> {
    if s.dev {
        return Vec::new();
    }
    vec![
        ("ASAPP_API_HOST", s.asapp.api_host.is_some()),
        ("ASAPP_API_ID", s.asapp.api_id.is_some()),
        ("ASAPP_API_SECRET", s.asapp.api_secret.is_some()),
    ]
}

/// PolyAI's key; none in `--dev`, which answers a demo state.
fn polyai_credentials(s: &Settings) -> Vec<(&'static str, bool)> {
    if s.dev {
        return Vec::new();
    }
    vec![("POLYAI_API_KEY", s.polyai.api_key.is_some())]
}

const DRY_RUN: &str = " (--dev: dry run, Twilio is not called)";
const ASAPP_DEMO: &str = " (--dev: demo answers, ASAPP is not called)";
const POLYAI_DEMO: &str = " (--dev: demo state, PolyAI is not called)";

/// What `--dev` does instead of calling out, for the readiness line.
fn dev(s: &Settings, instead: &'static str) -> &'static str {
    if s.dev { instead } else { "" }
}

/// The route at `path`, if any.
pub fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.path == path)
}

/// What a route that is not ready does instead.
pub fn when_not_ready(route: &Route) -> &'static str {
    match route.answers {
        answers if answers.falls_back() => "answers with the fallback",
        Answers::Tool => "answers 500 not_configured",
        _ => "answers 500 with a JSON error",
    }
}

/// Register [`ROUTES`], and a plain-text 404 for every other path.
pub fn route_table(cfg: &mut web::ServiceConfig) {
    for route in ROUTES {
        let methods = route.methods;
        // One route guarded by a plain check: actix's method guards record
        // every method they try in the request's data (for the `Allow` of a
        // 405), which costs allocations on every request.
        let handler = (route.handler)().guard(guard::fn_guard(move |ctx| {
            methods.contains(&ctx.head().method.as_str())
        }));
        let resource = web::resource(route.path)
            .wrap_fn(catch_panics)
            .route(handler);
        // An assistant's tool reads JSON, even about a wrong method.
        let resource = if route.answers == Answers::Tool {
            resource.default_service(web::to(tools::method_not_allowed))
        } else {
            let allow = methods.join(", ");
            resource.default_service(web::to(move || {
                let allow = allow.clone();
                async move {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, allow))
                        .finish()
                }
            }))
        };
        cfg.service(resource);
    }
    cfg.default_service(web::to(no_route));
}

/// The one place panics are caught: a panic in a route's code (a bug) is
/// answered the way the route answers failures, instead of a connection
/// closed without an answer (a dropped caller, for a voice route).
fn catch_panics<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    // Routed already: a second handle on the request is harmless here.
    let request = req.request().clone();
    // Nothing the route touched is used again once it has panicked.
    let answer = AssertUnwindSafe(service.call(req)).catch_unwind();
    async move {
        match answer.await {
            Ok(answered) => Ok(answered?.map_into_boxed_body()),
            Err(_) => {
                tracing::error!("the route panicked (a bug); answering as for a failure");
                let response = panic_answer(&request);
                Ok(ServiceResponse::new(request, response))
            }
        }
    }
}

/// What a request whose route's own code panicked is answered, in the
/// route's kind of answer: a caller keeps the voice fallback, a tool or a
/// flow gets its JSON error.
fn panic_answer(req: &HttpRequest) -> HttpResponse {
    let answers = find(req.path()).map_or(Answers::Text, |route| route.answers);
    match answers {
        Answers::TwimlOrJson if asapp::wants_json(req) => {
            CallLookupError::Panicked.error_response()
        }
        Answers::Twiml | Answers::TwimlOrJson => {
            VoiceAnswer(Err(VoiceError::Panicked)).respond_to(req)
        }
        Answers::Json => CallLookupError::Panicked.error_response(),
        Answers::Tool => ToolError::Panicked.error_response(),
        Answers::Text => HttpResponse::InternalServerError()
            .content_type(ContentType::plaintext())
            .body("flexbridge failed on this request (a bug; the panic is logged)\n"),
    }
}

/// A path no route serves.
#[derive(Debug, thiserror::Error)]
#[error("flexbridge has no route at this path{}", match trailing_slash_of {
    Some(route) => format!("; its paths have no trailing slash: {route}"),
    None => String::new(),
})]
pub struct NoRoute {
    /// The route whose path this is with a `/` appended, if any (the path
    /// itself is not echoed).
    pub trailing_slash_of: Option<&'static str>,
}

impl ResponseError for NoRoute {
    fn status_code(&self) -> StatusCode {
        StatusCode::NOT_FOUND
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::NotFound()
            .content_type(ContentType::plaintext())
            .body(format!("{self}\n"))
    }
}

/// A path no route serves. A Twilio user who pasted a route's URL with a
/// trailing slash is told the path that exists (Twilio's debugger shows
/// the body).
async fn no_route(request: HttpRequest) -> Result<HttpResponse, NoRoute> {
    let trailing_slash_of = request
        .path()
        .strip_suffix('/')
        .and_then(find)
        .map(|route| route.path);
    Err(NoRoute { trailing_slash_of })
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody as _;
    use actix_web::{App, HttpMessage as _, test};

    use super::*;
    use crate::domain::CallSid;

    const CALL: &str = "CA0123456789abcdef0123456789abcdef";
    const WORKFLOW: &str = "WW0123456789abcdef0123456789abcdef";

    /// Status, content type and body of a request to `uri` whose route (at
    /// the path of `uri`) panics after its extractor recorded the call SID.
    async fn answer_to_a_panic(uri: &str) -> (u16, String, String) {
        let path = uri.split('?').next().unwrap_or(uri).to_owned();
        let lookup = |name: &str| (name == "FLEX_WORKFLOW_SID").then(|| WORKFLOW.to_owned());
        let (settings, _) = Settings::load(&lookup, false);
        let app = test::init_service(
            App::new().app_data(web::Data::new(settings)).service(
                web::resource(path)
                    .wrap_fn(catch_panics)
                    .route(web::post().to(|req: HttpRequest| async move {
                        req.extensions_mut().insert(CallSid::parse(CALL).unwrap());
                        if req.path().len() > 1 {
                            panic!("a bug in a route");
                        }
                        HttpResponse::Ok().finish()
                    })),
            ),
        )
        .await;
        let response =
            test::call_service(&app, test::TestRequest::post().uri(uri).to_request()).await;
        let status = response.status().as_u16();
        let content_type = response.headers().get(header::CONTENT_TYPE).unwrap();
        let content_type = content_type.to_str().unwrap().to_owned();
        let body = response.into_body().try_into_bytes().unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[actix_web::test]
    async fn a_panicking_route_answers_the_way_it_answers_failures() {
        let fallback = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Enqueue workflowSid=\"{WORKFLOW}\"><Task>{{&quot;call_sid&quot;:&quot;{CALL}&quot;,&quot;flexbridge_error&quot;:&quot;internal_error&quot;}}</Task></Enqueue></Response>"
        );
        let tool = r#"{"error":"internal_error","message":"Something went wrong on our side while handing over. Please try again in a moment.","status":"error"}"#;
        let lookup = r#"{"error":"internal_error","message":"flexbridge failed on this request (a bug; the panic is logged).","status":"error"}"#;
        let text = "flexbridge failed on this request (a bug; the panic is logged)\n";
        let cases = [
            (
                "/receive-call",
                200,
                "text/xml; charset=utf-8",
                fallback.as_str(),
            ),
            ("/call-complete", 200, "text/xml; charset=utf-8", &fallback),
            (
                "/call-complete?format=json",
                500,
                "application/json",
                lookup,
            ),
            ("/polyai/handoff-state", 500, "application/json", lookup),
            ("/tools/flex-handover", 500, "application/json", tool),
            ("/metrics", 500, "text/plain; charset=utf-8", text),
        ];
        for (uri, status, content_type, body) in cases {
            assert_eq!(
                answer_to_a_panic(uri).await,
                (status, content_type.to_owned(), body.to_owned()),
                "{uri}"
            );
        }
    }
}
