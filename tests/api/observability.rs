//! What a platform team watches flexbridge with: the Grafana dashboard and
//! the Prometheus rules in `deploy/` name only metrics flexbridge exports
//! (checked against a live `/metrics`), and a real Prometheus scrapes
//! flexbridge and evaluates the rules.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::doc_links::anchor;
use crate::helpers::{CALL_SID, STUDIO, spawn_app};
use crate::process::{free_port, start_binary};
use crate::redis_server::program;

const DASHBOARD: &str = include_str!("../../deploy/grafana/flexbridge.json");
const RULES: &str = include_str!("../../deploy/prometheus/flexbridge.rules.yml");

/// `flexbridge_…` metric names in a PromQL expression (recording rules,
/// `flexbridge:…`, are not metric names).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("flexbridge_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

/// Every expression of the dashboard's panels.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| {
            target["expr"]
                .as_str()
                .expect("each target has an expr")
                .to_owned()
        })
        .collect()
}

/// Every rule of the rule file, recording and alerting.
fn rules() -> Vec<Value> {
    let rules: Value = serde_norway::from_str(RULES).expect("the rules are YAML");
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Every `expr` of the rule file.
fn rule_exprs() -> Vec<String> {
    rules()
        .iter()
        .map(|rule| {
            rule["expr"]
                .as_str()
                .expect("each rule has an expr")
                .to_owned()
        })
        .collect()
}

/// The sample names of a Prometheus text exposition.
fn exported(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// A live `/metrics` after traffic that makes every metric family appear:
/// signed and unsigned webhooks, a fallback, a transfer, an upstream call.
async fn live_scrape() -> String {
    let polyai = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/handoff_state"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"reason":"x"}"#))
        .mount(&polyai)
        .await;
    let uri = polyai.uri();
    let app = spawn_app(&[
        ("SIP_URI_HOST", "sip.example.com"),
        ("STUDIO_WEBHOOK_URL", STUDIO),
        ("POLYAI_API_BASE_URL", uri.as_str()),
        ("POLYAI_API_KEY", "polyai-key"),
    ])
    .await;
    app.voice("/receive-call", &[("Called", "+18005551234")])
        .await;
    app.voice("/receive-call", &[("Called", "1@evil.example")])
        .await;
    app.voice("/refer-handler", &[("CallSid", CALL_SID)]).await;
    let unsigned = app.client.post(app.url("/receive-call")).send().await;
    assert_eq!(unsigned.unwrap().status().as_u16(), 400);
    let state = app
        .get_signed(&format!("/polyai/handoff-state?call_sid={CALL_SID}"))
        .await;
    assert_eq!(state.status().as_u16(), 200);
    app.metrics_text().await
}

/// The dashboard has a row for each concern, and neither it nor the rules
/// name a metric flexbridge does not export.
#[tokio::test]
async fn the_dashboard_and_the_rules_use_only_metrics_flexbridge_exports() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let rows: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|panel| panel["type"] == "row")
        .filter_map(|row| row["title"].as_str())
        .collect();
    assert_eq!(
        rows,
        [
            "Traffic and latency by route",
            "Handovers by vendor and outcome",
            "Voice fallbacks by reason",
            "Signatures",
            "Upstreams: Twilio, Flex, ASAPP, PolyAI",
            "Handover store",
        ]
    );

    let exported = exported(&live_scrape().await);
    for (source, exprs) in [
        (
            "deploy/grafana/flexbridge.json",
            dashboard_exprs(&dashboard),
        ),
        ("deploy/prometheus/flexbridge.rules.yml", rule_exprs()),
    ] {
        let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
        assert!(used.len() >= 8, "{source} uses {used:?}");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{source} names metrics /metrics lacks: {unknown:?}"
        );
    }
}

/// Every alert links to its own section of `docs/runbook.md`, and every
/// section there is an alert's, so the link in a page lands on what to do.
#[test]
fn every_alert_links_to_its_section_of_the_runbook() {
    let runbook = include_str!("../../docs/runbook.md");
    let sections: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(str::to_owned)
        .collect();
    let mut alerts = BTreeSet::new();
    for rule in rules() {
        let Some(alert) = rule["alert"].as_str() else {
            continue;
        };
        let anchor = format!("/docs/runbook.md#{}", anchor(alert));
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or("none");
        assert!(url.ends_with(&anchor), "{alert}: runbook_url {url}");
        alerts.insert(alert.to_owned());
    }
    assert!(alerts.len() >= 9, "{alerts:?}");
    assert_eq!(alerts, sections);
}

/// A Prometheus server, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Start `prometheus` scraping `target` every second under job
/// `flexbridge`, with the rules of `deploy/prometheus` evaluated every second.
fn start_prometheus(target: &str) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("flexbridge-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/prometheus/flexbridge.rules.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files: [{rules:?}]\n\
         scrape_configs:\n  - job_name: flexbridge\n    static_configs:\n      - targets: [{target:?}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new(program("prometheus"))
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    Prometheus {
        child,
        port,
        _dir: TempDir(dir),
    }
}

/// Ask Prometheus `query` until it has a result (or 60 s pass).
async fn query_until_present(prometheus: &Prometheus, query: &str) -> Vec<Value> {
    let url = format!("http://127.0.0.1:{}/api/v1/query", prometheus.port);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = reqwest::Client::new()
            .get(&url)
            .query(&[("query", query)])
            .send()
            .await;
        if let Ok(answer) = answer
            && let Ok(body) = answer.json::<Value>().await
        {
            let result = body["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !result.is_empty() {
                return result;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never answered {query}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// End to end: Prometheus scrapes a running flexbridge, the metrics arrive
/// with their labels, and the recording rules evaluate over them.
#[tokio::test]
#[ignore = "needs prometheus (Debian's prometheus package): cargo test -- --ignored"]
async fn a_real_prometheus_scrapes_flexbridge_and_evaluates_the_rules() {
    let flexbridge = start_binary(
        &[],
        &[
            ("SIP_URI_HOST", "sip.example.com"),
            ("STUDIO_WEBHOOK_URL", STUDIO),
            ("TWILIO_VALIDATE_SIGNATURES", "false"),
        ],
    )
    .await;
    let prometheus = start_prometheus(&format!("127.0.0.1:{}", flexbridge.port));
    let up = query_until_present(&prometheus, r#"up{job="flexbridge"}"#).await;
    assert_eq!(up[0]["value"][1], "1");

    // Traffic over several scrapes, fallbacks included, so rates have
    // samples before and after to work with.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        for called in ["+18005551234", "not-a-number"] {
            flexbridge
                .post_form("/receive-call", &[("Called", called)])
                .await;
        }
        flexbridge
            .post_form("/refer-handler", &[("CallSid", CALL_SID)])
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let fallbacks = query_until_present(&prometheus, "flexbridge_voice_fallbacks_total").await;
    let reasons: BTreeSet<&str> = fallbacks
        .iter()
        .filter_map(|f| f["metric"]["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["invalid_called", "missing_refer_target"])
    );
    query_until_present(
        &prometheus,
        r#"flexbridge:voice_fallbacks:rate5m{reason="invalid_called"} > 0"#,
    )
    .await;
    // Two of every three voice requests fell back.
    let ratio = query_until_present(
        &prometheus,
        "sum(flexbridge:voice_fallbacks:rate5m) / sum(flexbridge:voice_requests:rate5m)",
    )
    .await;
    let ratio: f64 = ratio[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (0.55..0.78).contains(&ratio),
        "two thirds fell back: {ratio}"
    );
    let handovers = query_until_present(
        &prometheus,
        r#"flexbridge:handovers:rate5m{vendor="watsonx"}"#,
    )
    .await;
    assert_eq!(handovers[0]["metric"]["outcome"], "missing_refer_target");

    // Every rule group loaded and evaluated without error.
    let rules: Value = reqwest::get(format!("http://127.0.0.1:{}/api/v1/rules", prometheus.port))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups = rules["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{rules}");
    for rule in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
}
