//! Prometheus metrics: the names, labels and the one place each is recorded.
//!
//! Recording goes through the `metrics` facade; the Prometheus recorder is
//! installed once per process and rendered by `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: fine below 50 ms (local work), coarse above
/// (upstream calls, which Twilio cuts off at 15 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets. The recorder
/// keeps every sample until that happens (or `/metrics` is scraped): 8 bytes
/// or more per request, so what it holds grows with the request rate. At
/// 5 s it was most of the peak RSS under load (19.6 MiB at 256 connections
/// and 86,000 req/s, 13.8 MiB at 1 s).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The name of the thread that folds histogram samples.
pub const UPKEEP_THREAD: &str = "metrics-upkeep";

/// Install the Prometheus recorder (once; later calls reuse it), and start
/// the thread that keeps its memory bounded.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be global (an embedding program);
            // then flexbridge's metrics go there and /metrics shows none.
            metrics::set_global_recorder(recorder).ok()?;
            // A thread, not a task: it must run whatever runtime (if any)
            // the embedding program uses, and it only sleeps.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name(UPKEEP_THREAD.to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error.message = %e, "no metrics upkeep thread: histograms grow until /metrics is scraped");
            }
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

/// The `method` label: the standard methods by name, anything else `other`,
/// so a client inventing methods cannot create series without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// One HTTP request answered: `flexbridge_http_requests_total{route,method,status}`
/// and `flexbridge_http_request_duration_seconds{route}`.
pub fn http_request(route: &'static str, method: &Method, status: u16, elapsed: Duration) {
    metrics::counter!(
        "flexbridge_http_requests_total",
        "route" => route,
        "method" => method_label(method),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("flexbridge_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

/// A request that ended in an error no handler turned into a response (the
/// request itself is gone by then): counted with route `unmatched` and
/// method `other`, without a latency.
pub fn http_request_failed(status: u16) {
    metrics::counter!(
        "flexbridge_http_requests_total",
        "route" => "unmatched",
        "method" => "other",
        "status" => status.to_string()
    )
    .increment(1);
}

/// A voice route answered with its fallback: `flexbridge_voice_fallbacks_total{reason}`.
pub fn voice_fallback(reason: &'static str) {
    metrics::counter!("flexbridge_voice_fallbacks_total", "reason" => reason).increment(1);
}

/// A request refused by authentication: `flexbridge_signature_rejections_total{reason}`.
pub fn signature_rejection(reason: &'static str) {
    metrics::counter!("flexbridge_signature_rejections_total", "reason" => reason).increment(1);
}

/// A request whose Twilio signature checked out:
/// `flexbridge_signatures_accepted_total{token}` (`primary`, `secondary`,
/// `shared_key` or `secondary_shared_key`), so an operator rotating the auth
/// token or the SharedKey sees when the old one stops.
pub fn signature_accepted(token: &'static str) {
    metrics::counter!("flexbridge_signatures_accepted_total", "token" => token).increment(1);
}

/// A handover attempt ended: `flexbridge_handovers_total{vendor,outcome}`
/// (`vendor`: `twilio_flex` and `twilio_studio` for the tools, else the
/// handoff's vendor: `watsonx`, `asapp`, `polyai`, `conversation_relay`,
/// `dialogflow_cx`; `outcome`: `handed_over`, `already_handed_over`,
/// `dry_run`, an error code, `returned_to_studio` and `enqueued_to_flex`
/// when watsonx transfers a call, `ai_session_failed`, and `ended` (the
/// agent finished the call) and `caller_hung_up` when an AI agent hands one
/// back).
pub fn handover(vendor: &'static str, outcome: &'static str) {
    metrics::counter!("flexbridge_handovers_total", "vendor" => vendor, "outcome" => outcome)
        .increment(1);
}

/// One upstream call ended: `flexbridge_upstream_requests_total{upstream,outcome}`
/// and `flexbridge_upstream_duration_seconds{upstream}` (`outcome`: the HTTP
/// status, `timeout` or `unreachable`).
pub fn upstream_call(upstream: &'static str, outcome: &str, elapsed: Duration) {
    metrics::counter!("flexbridge_upstream_requests_total", "upstream" => upstream, "outcome" => outcome.to_owned())
        .increment(1);
    metrics::histogram!("flexbridge_upstream_duration_seconds", "upstream" => upstream)
        .record(elapsed.as_secs_f64());
}

/// The handover store answers (1) or not (0): `flexbridge_handover_store_up{kind}`
/// (`kind`: `memory`, always 1, or `redis`).
pub fn handover_store_up(kind: &'static str, up: bool) {
    metrics::gauge!("flexbridge_handover_store_up", "kind" => kind).set(if up { 1.0 } else { 0.0 });
}
