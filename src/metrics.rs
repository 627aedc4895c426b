//! Prometheus metrics: the names, labels and the one place each is recorded.
//!
//! Recording goes through the `metrics` facade; the Prometheus recorder is
//! installed once per process and rendered by `GET /metrics`.

use std::cell::RefCell;
use std::collections::HashMap;
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
/// or more per request, without bound when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

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

/// The handles of one `(route, method, status)` series, registered on
/// first use: looking a series up by its labels on every request would hash
/// and allocate the label set each time.
struct HttpSeries {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

thread_local! {
    /// Per worker thread, so recording takes no lock. Bounded: routes come
    /// from the route table, methods from [`method_label`], statuses from
    /// flexbridge's own answers.
    static HTTP_SERIES: RefCell<HashMap<(&'static str, &'static str, u16), HttpSeries>> =
        RefCell::new(HashMap::new());
    /// The handover counters, registered on first use like [`HTTP_SERIES`],
    /// found by the addresses of their static labels: a few comparisons
    /// instead of hashing both strings. The same text at two addresses
    /// only costs a second handle to the same series; the entries are
    /// bounded by the labels the code contains.
    static HANDOVER_SERIES: RefCell<Vec<(&'static str, &'static str, metrics::Counter)>> =
        const { RefCell::new(Vec::new()) };
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
    let method = method_label(method);
    HTTP_SERIES.with(|series| {
        let mut series = series.borrow_mut();
        let series = series
            .entry((route, method, status))
            .or_insert_with(|| HttpSeries {
                requests: metrics::counter!(
                    "flexbridge_http_requests_total",
                    "route" => route,
                    "method" => method,
                    "status" => status.to_string()
                ),
                duration: metrics::histogram!(
                    "flexbridge_http_request_duration_seconds",
                    "route" => route
                ),
            });
        series.requests.increment(1);
        series.duration.record(elapsed.as_secs_f64());
    });
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

/// A handover attempt ended: `flexbridge_handovers_total{vendor,outcome}`
/// (`vendor`: `twilio_flex`, `twilio_studio`, `asapp`, `polyai`, `watsonx`;
/// `outcome`: `handed_over`, `already_handed_over`, `dry_run`, an error code,
/// `returned_to_studio` and `enqueued_to_flex` when watsonx transfers a
/// call, and `ended` (the agent finished the call) and `caller_hung_up`
/// when an AI agent hands one back).
pub fn handover(vendor: &'static str, outcome: &'static str) {
    HANDOVER_SERIES.with(|series| {
        let mut series = series.borrow_mut();
        let known = series
            .iter()
            .find(|(v, o, _)| std::ptr::eq(*v, vendor) && std::ptr::eq(*o, outcome));
        match known {
            Some((_, _, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!("flexbridge_handovers_total", "vendor" => vendor, "outcome" => outcome);
                counter.increment(1);
                series.push((vendor, outcome, counter));
            }
        }
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Handovers count into one series per label pair, whether the same
    /// label text comes from one address or two.
    #[test]
    fn handovers_count_once_per_label_pair_whatever_the_labels_address() {
        install().expect("the recorder installs");
        let outcome = "cache_test_outcome";
        let same_text_elsewhere: &'static str = String::from(outcome).leak();
        handover("cache_test_vendor", outcome);
        handover("cache_test_vendor", outcome);
        handover("cache_test_vendor", same_text_elsewhere);
        handover("cache_test_vendor", "cache_test_other");

        let text = render();
        let count = |outcome: &str| {
            let prefix = format!(
                r#"flexbridge_handovers_total{{vendor="cache_test_vendor",outcome="{outcome}"}} "#
            );
            text.lines()
                .find_map(|line| line.strip_prefix(prefix.as_str()))
                .map(str::to_owned)
        };
        assert_eq!(count("cache_test_outcome").as_deref(), Some("3"), "{text}");
        assert_eq!(count("cache_test_other").as_deref(), Some("1"), "{text}");
    }
}
