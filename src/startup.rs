//! Building and running the HTTP server: the route table lives here.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::domain::HandoverStoreSetting;
use crate::handover::{HandoverStore, Handovers, MemoryStore, RedisStore};
use crate::routes;
use crate::telemetry::FlexbridgeRootSpan;
use crate::twilio::WebhookAuth;
use crate::twilio::client::TwilioClient;
use crate::upstream::Upstream;

/// A bound, ready-to-run server.
pub struct Application {
    /// The port actually bound (differs from the setting when it was 0).
    port: u16,
    server: Server,
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
        let client = TwilioClient::new(&settings, upstream);
        let handovers = web::Data::new(Handovers::new(
            &settings,
            client,
            handover_store(&settings.tools.handover_store)?,
        ));
        let auth = web::Data::new(WebhookAuth::from_settings(&settings));
        let settings = web::Data::new(settings);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(routes::record_request))
                .wrap(TracingLogger::<FlexbridgeRootSpan>::new())
                .app_data(settings.clone())
                .app_data(auth.clone())
                .app_data(handovers.clone())
                .configure(route_table)
        })
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until stopped (SIGTERM / SIGINT drain in-flight requests first).
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
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

/// Every route flexbridge serves.
pub fn route_table(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(routes::healthz))
        .route("/metrics", web::get().to(routes::metrics))
        .service(
            web::resource("/receive-call")
                .route(web::post().to(routes::receive_call))
                .route(web::get().to(routes::receive_call)),
        )
        .service(
            web::resource("/refer-handler")
                .route(web::post().to(routes::refer_handler))
                .route(web::get().to(routes::refer_handler)),
        )
        .service(web::resource("/tools/flex-handover").route(web::post().to(routes::flex_handover)))
        .service(
            web::resource("/tools/studio-handover").route(web::post().to(routes::studio_handover)),
        );
}
