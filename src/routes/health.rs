//! `GET /healthz`: liveness for Fly.io and load balancers.
//!
//! The plain answer is always `200 ok`: flexbridge keeps handing customers
//! over when its handover store is down (it fails open), so an unreachable
//! Redis must not get machines restarted or taken out of the proxy.
//! `?detail=true` adds what an operator wants to see, still with 200.

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::handover::Handovers;

/// `200 ok`; with `?detail=true`, JSON with the handover store's kind and
/// state. No authentication.
pub async fn healthz(req: HttpRequest, handovers: Option<web::Data<Handovers>>) -> HttpResponse {
    if !wants_detail(req.query_string()) {
        return HttpResponse::Ok()
            .content_type(ContentType::plaintext())
            .body("ok");
    }
    let store = handovers.map(|h| h.store_status());
    HttpResponse::Ok().json(json!({
        "status": "ok",
        "handover_store": store.map(|s| json!({ "kind": s.kind, "state": s.state.as_str() })),
    }))
}

/// Whether the query asks for detail (`detail=true`, `1` or `yes`); any
/// other query is ignored, so a probe's cache-buster never breaks the check.
fn wants_detail(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(name, value)| {
        name == "detail" && matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
    })
}

#[cfg(test)]
mod tests {
    use super::wants_detail;

    #[test]
    fn detail_is_asked_for_explicitly() {
        assert!(wants_detail("detail=true"));
        assert!(wants_detail("x=1&detail=1"));
        assert!(wants_detail("detail=YES"));
        assert!(!wants_detail(""));
        assert!(!wants_detail("detail=false"));
        assert!(!wants_detail("details=true"));
        assert!(!wants_detail("%zz"));
    }
}
