//! `GET /metrics`: Prometheus text with the series the README documents.
//! The recorder is process-wide, so assertions look for series, not totals.

use flexbridge::metrics::UPKEEP_THREAD;

use crate::helpers::{CALL_SID, STUDIO, WORKFLOW, spawn_app, spawn_studio_app};
use crate::process::start_binary;

/// The value of the series whose line starts with `prefix`.
pub fn value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The value of `flexbridge_handovers_total` for `vendor` and `outcome`.
pub fn handovers(metrics: &str, vendor: &str, outcome: &str) -> Option<f64> {
    let series = format!(r#"flexbridge_handovers_total{{vendor="{vendor}",outcome="{outcome}"}} "#);
    value(metrics, &series)
}

#[tokio::test]
async fn metrics_count_requests_fallbacks_and_signature_rejections() {
    let app = spawn_studio_app().await;
    app.post_form(
        "/receive-call",
        &[("CallSid", CALL_SID), ("Called", "+18005551234")],
    )
    .await;
    app.post_form("/receive-call", &[("Called", "1@evil.com")])
        .await;
    app.client
        .post(app.url("/refer-handler"))
        .header("X-Twilio-Signature", "forged")
        .send()
        .await
        .unwrap();
    app.client
        .post(app.url("/refer-handler"))
        .send()
        .await
        .unwrap();

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = response.text().await.unwrap();

    let requests =
        r#"flexbridge_http_requests_total{route="/receive-call",method="POST",status="200"} "#;
    assert!(
        value(&metrics, requests).is_some_and(|n| n >= 2.0),
        "{metrics}"
    );
    assert!(
        value(
            &metrics,
            r#"flexbridge_http_requests_total{route="/refer-handler",method="POST",status="403"} "#
        )
        .is_some()
    );
    assert!(
        value(
            &metrics,
            r#"flexbridge_voice_fallbacks_total{reason="invalid_called"} "#
        )
        .is_some_and(|n| n >= 1.0)
    );
    for reason in ["invalid_signature", "missing_signature"] {
        let series = format!(r#"flexbridge_signature_rejections_total{{reason="{reason}"}} "#);
        assert!(
            value(&metrics, &series).is_some_and(|n| n >= 1.0),
            "{series} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains(
            r#"flexbridge_http_request_duration_seconds_bucket{route="/receive-call",le="0.005"}"#
        ),
        "{metrics}"
    );
}

/// A watsonx transfer is counted under where it went: the outcomes
/// `docs/routes.md` lists and the alert rules read.
#[tokio::test]
async fn watsonx_transfers_are_counted_under_where_they_went() {
    let refer_to = "<sip:+18005551234@twilio.com?X-Watson-Assistant-Session-History-Key=k>";
    let cases = [
        (("STUDIO_WEBHOOK_URL", STUDIO), "returned_to_studio"),
        (("FLEX_WORKFLOW_SID", WORKFLOW), "enqueued_to_flex"),
        (("FALLBACK_MESSAGE", "Goodbye."), "no_destination"),
    ];
    for (setting, outcome) in cases {
        let app = spawn_app(&[setting]).await;
        let params = [("CallSid", CALL_SID), ("ReferTransferTarget", refer_to)];

        app.voice("/refer-handler", &params).await;

        // The recorder is process-wide: other tests may have counted too.
        let metrics = app.metrics_text().await;
        assert!(
            handovers(&metrics, "watsonx", outcome).is_some_and(|n| n >= 1.0),
            "{outcome} in\n{metrics}"
        );
    }
}

/// Probes cannot create series without bound: a path that is no route is
/// `unmatched` and an invented method is `other`, while HTTP's own methods
/// keep their names (CONNECT, which opens a tunnel, is not sent).
#[tokio::test]
async fn unknown_paths_and_methods_share_one_label_each() {
    let app = spawn_app(&[]).await;
    let named = [
        ("HEAD", 200),
        ("PUT", 405),
        ("DELETE", 405),
        ("OPTIONS", 405),
        ("PATCH", 405),
        ("TRACE", 405),
    ];
    for (method, status) in named {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app.client.request(method, app.url("/healthz")).send();
        assert_eq!(response.await.unwrap().status().as_u16(), status);
    }
    let probe = reqwest::Method::from_bytes(b"PROBE").unwrap();
    for path in ["/wp-admin/setup.php", "/receive-call/CA1", "/RECEIVE-CALL"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let response = app
        .client
        .request(probe, app.url("/receive-call"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);

    let metrics = app.metrics_text().await;
    assert!(
        value(
            &metrics,
            r#"flexbridge_http_requests_total{route="unmatched",method="GET",status="404"} "#
        )
        .is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    assert!(
        value(
            &metrics,
            r#"flexbridge_http_requests_total{route="/receive-call",method="other",status="405"} "#
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    for (method, status) in named {
        let series = format!(
            r#"flexbridge_http_requests_total{{route="/healthz",method="{method}",status="{status}"}} "#
        );
        assert!(
            value(&metrics, &series).is_some_and(|n| n >= 1.0),
            "{series} in\n{metrics}"
        );
    }
    for leaked in ["wp-admin", "CA1", "RECEIVE-CALL", "PROBE"] {
        assert!(!metrics.contains(leaked), "{leaked} in {metrics}");
    }
}

/// GET and HEAD alike need the token.
#[tokio::test]
async fn metrics_require_the_token_when_one_is_set() {
    let app = spawn_app(&[("METRICS_TOKEN", "metrics-token-31")]).await;

    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let request = || app.client.request(method.clone(), app.url("/metrics"));
        let without = request().send().await.unwrap();
        let wrong = request().bearer_auth("nope").send().await.unwrap();
        let with = request()
            .bearer_auth("metrics-token-31")
            .send()
            .await
            .unwrap();

        assert_eq!(without.status().as_u16(), 401, "{method}");
        assert_eq!(without.headers()["www-authenticate"], "Bearer", "{method}");
        assert_eq!(wrong.status().as_u16(), 401, "{method}");
        assert_eq!(with.status().as_u16(), 200, "{method}");
    }
    let refused = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        refused.text().await.unwrap(),
        "metrics need Authorization: Bearer METRICS_TOKEN\n"
    );
}

/// Regression: the Prometheus recorder kept every histogram sample until
/// `/metrics` was scraped (about 16 bytes a request, without bound when
/// nobody scrapes: 3 MiB more RSS per 200,000 requests). The binary now
/// runs a thread that folds samples into their buckets every few seconds.
#[tokio::test]
async fn histogram_samples_do_not_pile_up_when_metrics_are_never_scraped() {
    let app = start_binary(&[], &[]).await;

    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", app.pid()))
        .expect("the process's threads are listed")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();

    assert!(
        threads.iter().any(|name| name == UPKEEP_THREAD),
        "an upkeep thread runs: {threads:?}"
    );
}
