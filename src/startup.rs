//! Building and running the HTTP server: the route table lives here.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::handover::{Handovers, MemoryStore};
use crate::routes;
use crate::telemetry::FlexbridgeRootSpan;
use crate::twilio::WebhookAuth;
use crate::twilio::client::TwilioClient;
use crate::upstream::Upstream;
use crate::vendors::asapp::AsappClient;
use crate::vendors::polyai::PolyAiClient;

/// A bound, ready-to-run server.
pub struct Application {
    /// The port actually bound (differs from the setting when it was 0).
    port: u16,
    server: Server,
}

impl Application {
    /// Bind `HOST:PORT` and prepare the server.
    ///
    /// # Errors
    /// When the address cannot be bound.
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
            Arc::new(MemoryStore::default()),
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
                .app_data(asapp.clone())
                .app_data(polyai.clone())
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
        )
        .service(
            web::resource("/engage")
                .route(web::post().to(routes::engage))
                .route(web::get().to(routes::engage)),
        )
        .service(
            web::resource("/call-complete")
                .route(web::post().to(routes::call_complete))
                .route(web::get().to(routes::call_complete)),
        )
        .service(
            web::resource("/polyai/connect")
                .route(web::post().to(routes::polyai_connect))
                .route(web::get().to(routes::polyai_connect)),
        )
        .service(
            web::resource("/polyai/handoff-state")
                .route(web::post().to(routes::polyai_handoff_state))
                .route(web::get().to(routes::polyai_handoff_state)),
        )
        .service(
            web::resource("/polyai/call-complete")
                .route(web::post().to(routes::polyai_call_complete))
                .route(web::get().to(routes::polyai_call_complete)),
        );
}
