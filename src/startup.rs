//! Building and running the HTTP server: the route table lives here.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, guard, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::domain::HandoverStoreSetting;
use crate::errors::NoRoute;
use crate::handover::{HandoverStore, Handovers, MemoryStore, RedisStore};
use crate::routes;
use crate::shutdown::{self, InFlight};
use crate::telemetry::{self, FlexbridgeRootSpan};
use crate::twilio::WebhookAuth;
use crate::twilio::client::TwilioClient;
use crate::upstream::Upstream;
use crate::vendors::asapp::AsappClient;
use crate::vendors::polyai::PolyAiClient;

/// Seconds in-flight requests get to finish once shutdown starts.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 25;

/// A bound, ready-to-run server.
pub struct Application {
    /// The port actually bound (differs from the setting when it was 0).
    port: u16,
    server: Server,
    /// Requests being handled, for a draining shutdown.
    in_flight: Arc<InFlight>,
}

impl Application {
    /// Bind `HOST:PORT` and prepare the server.
    ///
    /// Must run inside a tokio runtime (actix's, or a test's): a Redis
    /// handover store connects and is probed in the background.
    ///
    /// # Errors
    /// When the address cannot be bound, or the handover store cannot be set up.
    pub fn build(settings: Settings) -> std::io::Result<Self> {
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))?;
        let port = listener.local_addr()?.port();
        let upstream = Upstream::new(settings.upstream_timeout, settings.upstream_max_connections)
            .map_err(std::io::Error::other)?;
        crate::metrics::install();
        let asapp = web::Data::new(AsappClient::new(&settings, upstream.clone()));
        let polyai = web::Data::new(PolyAiClient::new(&settings, upstream.clone()));
        let client = TwilioClient::new(&settings, upstream);
        let handovers = web::Data::new(Handovers::new(
            &settings,
            client,
            handover_store(&settings.tools.handover_store)?,
        ));
        let auth = web::Data::new(WebhookAuth::from_settings(&settings));
        let in_flight = web::Data::new(InFlight::default());
        let tracked = in_flight.clone();
        let settings = web::Data::new(settings);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<FlexbridgeRootSpan>::new())
                .wrap_fn(around_request)
                .app_data(tracked.clone())
                .app_data(settings.clone())
                .app_data(auth.clone())
                .app_data(handovers.clone())
                .app_data(asapp.clone())
                .app_data(polyai.clone())
                .configure(route_table)
        })
        // In-flight requests get this long to finish after SIGTERM/SIGINT,
        // under Fly.io's 30 s kill timeout.
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // actix treats SIGINT as a forced stop; flexbridge drains on both
        // SIGTERM and SIGINT itself (see `shutdown`).
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Self {
            port,
            server,
            in_flight: in_flight.into_inner(),
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until stopped through [`Application::handle`].
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serve until SIGTERM or SIGINT, then stop accepting, let in-flight
    /// requests finish (up to [`SHUTDOWN_TIMEOUT_SECS`]) and return.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed or the server fails.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let limit = std::time::Duration::from_secs(SHUTDOWN_TIMEOUT_SECS);
        shutdown::on_signals(self.server.handle(), self.in_flight, limit)?;
        self.server.await
    }
}

/// The store `HANDOVER_STORE` names.
fn handover_store(setting: &HandoverStoreSetting) -> std::io::Result<Arc<dyn HandoverStore>> {
    Ok(match setting {
        HandoverStoreSetting::Memory => {
            crate::metrics::handover_store_up("memory", true);
            Arc::new(MemoryStore::default())
        }
        HandoverStoreSetting::Redis(url) => {
            Arc::new(RedisStore::connect(url).map_err(std::io::Error::other)?)
        }
    })
}

/// One route: its path, the methods it answers and its handler.
pub struct RouteSpec {
    /// The path, as Twilio and users call it.
    pub path: &'static str,
    /// HTTP methods answered (others get 405).
    pub methods: &'static [&'static str],
    handler: fn() -> actix_web::Route,
}

/// Every route flexbridge serves; `openapi.yaml` describes exactly these.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        path: "/healthz",
        methods: &["GET"],
        handler: || web::to(routes::healthz),
    },
    RouteSpec {
        path: "/metrics",
        methods: &["GET"],
        handler: || web::to(routes::metrics),
    },
    RouteSpec {
        path: "/receive-call",
        methods: &["POST", "GET"],
        handler: || web::to(routes::receive_call),
    },
    RouteSpec {
        path: "/refer-handler",
        methods: &["POST", "GET"],
        handler: || web::to(routes::refer_handler),
    },
    RouteSpec {
        path: "/tools/flex-handover",
        methods: &["POST"],
        handler: || web::to(routes::flex_handover),
    },
    RouteSpec {
        path: "/tools/studio-handover",
        methods: &["POST"],
        handler: || web::to(routes::studio_handover),
    },
    RouteSpec {
        path: "/engage",
        methods: &["POST", "GET"],
        handler: || web::to(routes::engage),
    },
    RouteSpec {
        path: "/call-complete",
        methods: &["POST", "GET"],
        handler: || web::to(routes::call_complete),
    },
    RouteSpec {
        path: "/polyai/connect",
        methods: &["POST", "GET"],
        handler: || web::to(routes::polyai_connect),
    },
    RouteSpec {
        path: "/polyai/handoff-state",
        methods: &["POST", "GET"],
        handler: || web::to(routes::polyai_handoff_state),
    },
    RouteSpec {
        path: "/polyai/call-complete",
        methods: &["POST", "GET"],
        handler: || web::to(routes::polyai_call_complete),
    },
];

/// The path of the [`ROUTES`] entry that answers `request`, or `unmatched`:
/// the label of its logs and metrics (never the raw path, which would make
/// one series per probe).
pub fn route_template(request: &ServiceRequest) -> &'static str {
    // Every route is a literal path, so an exact match is the common case;
    // the router is asked only for the rest (it may match other spellings).
    if let Some(path) = route_at(request.path()) {
        return path;
    }
    request
        .match_pattern()
        .and_then(|pattern| route_at(&pattern))
        .unwrap_or("unmatched")
}

/// The [`ROUTES`] path equal to `path`, as the static string.
fn route_at(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|spec| spec.path == path)
        .map(|spec| spec.path)
}

/// The outermost layer: the request counts as in flight (for a draining
/// shutdown) until it is answered, and the answer carries its request id.
/// One layer for both, as each layer costs per request; a plain function
/// rather than `from_fn`, whose `Next` boxes every call.
fn around_request<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let in_flight = shutdown::track(&req);
    let answer = service.call(req);
    async move {
        let mut response = answer.await?;
        drop(in_flight);
        telemetry::echo_request_id(&mut response);
        Ok(response)
    }
}

/// Register [`ROUTES`].
pub fn route_table(cfg: &mut web::ServiceConfig) {
    for spec in ROUTES {
        let methods = spec.methods;
        // One route guarded by a plain check: actix's method guards record
        // every method they try in the request's data (for the `Allow` of a
        // 405), which costs allocations on every request.
        let route = (spec.handler)().guard(guard::fn_guard(move |ctx| {
            methods.contains(&ctx.head().method.as_str())
        }));
        let resource = web::resource(spec.path).route(route);
        // An assistant's tool reads JSON, even about a wrong method.
        let resource = if routes::is_tool(spec.path) {
            resource.default_service(web::to(routes::tool_method_not_allowed))
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

/// A path no route serves. A Twilio user who pasted a route's URL with a
/// trailing slash is told the path that exists (Twilio's debugger shows
/// the body).
async fn no_route(request: actix_web::HttpRequest) -> Result<HttpResponse, NoRoute> {
    let trailing_slash_of = request.path().strip_suffix('/').and_then(route_at);
    Err(NoRoute { trailing_slash_of })
}
