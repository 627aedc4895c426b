//! `POST /tools/flex-handover` and `POST /tools/studio-handover`: the tools a
//! Twilio AI Assistant calls to hand a customer to a person.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::domain::SessionId;
use crate::errors::{ToolError, caught};
use crate::handover::{Handovers, Outcome};
use crate::tools::ToolRequest;

/// Hand the conversation (Flex Interaction) or call (call update) to Flex.
pub async fn flex_handover(
    handovers: web::Data<Handovers>,
    request: ToolRequest,
) -> Result<HttpResponse, ToolError> {
    let handed = caught(handovers.to_flex(&request), || ToolError::Panicked).await;
    let outcome = record("twilio_flex", handed)?;
    let (sid_field, handed_over, already) = match request.session {
        SessionId::Conversation { .. } => (
            "interaction_sid",
            "Thanks for waiting. I've passed our conversation to a member of our team, who will reply here shortly.",
            "A member of our team already has this conversation and will reply here shortly.",
        ),
        SessionId::Voice { .. } => (
            "call_sid",
            "I'm connecting you to a member of our team now. Please hold.",
            "You're already on your way to a member of our team. Please hold.",
        ),
    };
    Ok(answer(outcome, sid_field, handed_over, already))
}

/// Hand the conversation to a Studio flow.
pub async fn studio_handover(
    handovers: web::Data<Handovers>,
    request: ToolRequest,
) -> Result<HttpResponse, ToolError> {
    let handed = caught(handovers.to_studio(&request), || ToolError::Panicked).await;
    let outcome = record("twilio_studio", handed)?;
    Ok(answer(
        outcome,
        "webhook_sid",
        "Thanks for waiting. I've passed our conversation on, and you'll hear from us here shortly.",
        "This conversation has already been passed on; you'll hear from us here shortly.",
    ))
}

/// Whether `path` is one of the AI Assistant tools (`/tools/*`), which answer
/// JSON and have no voice fallback.
pub fn is_tool(path: &str) -> bool {
    path.starts_with("/tools/")
}

/// A tool route asked with another method than `POST`: `405` in the tools'
/// JSON error shape, with `Allow: POST`.
pub async fn tool_method_not_allowed() -> Result<HttpResponse, ToolError> {
    Err(ToolError::MethodNotAllowed)
}

/// Count the handover's outcome.
fn record(vendor: &'static str, result: Result<Outcome, ToolError>) -> Result<Outcome, ToolError> {
    let outcome = match &result {
        Ok(Outcome::HandedOver(_)) => "handed_over",
        Ok(Outcome::AlreadyHandedOver(_)) => "already_handed_over",
        Ok(Outcome::DryRun(_)) => "dry_run",
        Err(e) => e.code(),
    };
    crate::metrics::handover(vendor, outcome);
    result
}

fn answer(outcome: Outcome, sid_field: &str, handed_over: &str, already: &str) -> HttpResponse {
    let body = match outcome {
        Outcome::HandedOver(sid) => {
            json!({ "status": "handed_over", "message": handed_over, sid_field: sid })
        }
        Outcome::AlreadyHandedOver(sid) => {
            json!({ "status": "already_handed_over", "message": already, sid_field: sid })
        }
        Outcome::DryRun(request) => json!({
            "status": "dry_run",
            "message": "Dry run (--dev): nothing was sent to Twilio. This is the request flexbridge would send.",
            "request": request,
        }),
    };
    HttpResponse::Ok().json(body)
}
