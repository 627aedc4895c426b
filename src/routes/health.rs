//! `GET /healthz`: liveness for Fly.io and load balancers.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

/// Always `200 ok`; no authentication, no dependencies.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body("ok")
}
