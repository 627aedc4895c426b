//! Building and running the HTTP server: the services every route shares,
//! and the layer around every request.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpMessage as _, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::domain::HandoverStoreSetting;
use crate::handover::{HandoverStore, Handovers, MemoryStore, RedisStore};
use crate::routes;
use crate::shutdown::{self, InFlight};
use crate::telemetry::{self, FlexbridgeRootSpan, RouteLabel};
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
        let keep_alive = settings.keep_alive;
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
                .configure(routes::route_table)
        })
        // Idle connections outlive a proxy's, and are closed as soon as the
        // server stops (actix-web 4.14.1 and later), so they do not hold the exit.
        .keep_alive(keep_alive)
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

    /// Serve until the server stops or is dropped (tests).
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

/// The outermost layer: the request is labelled with its route (for its
/// span and metrics), counts as in flight (for a draining shutdown) until it
/// is answered, and the answer carries its request id.
fn around_request<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let route = routes::find(req.path()).map_or("unmatched", |route| route.path);
    req.extensions_mut().insert(RouteLabel(route));
    let in_flight = shutdown::track(&req);
    let answer = service.call(req);
    async move {
        let mut response = answer.await?;
        drop(in_flight);
        telemetry::echo_request_id(&mut response);
        Ok(response)
    }
}
