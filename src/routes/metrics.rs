//! `GET /metrics` (Prometheus text) and the middleware that counts requests.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::config::Settings;

/// The metrics, behind `Authorization: Bearer {METRICS_TOKEN}` when that is set.
pub async fn metrics(req: HttpRequest, settings: web::Data<Settings>) -> HttpResponse {
    if let Some(token) = &settings.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(token.expose_secret().as_bytes())) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .content_type("text/plain; charset=utf-8")
                .body("metrics need Authorization: Bearer METRICS_TOKEN\n");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

/// Count every request by route template (never the raw path, which would
/// make one series per SID), method and status, with its latency.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed();
    // This middleware runs inside the request span (it is wrapped first).
    tracing::Span::current().record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    crate::metrics::http_request(&route, &method, status, elapsed);
    response
}
