//! Differential check against Twilio's own TwiML builder: for each case in
//! `tests/fixtures/twiml_cases.json` (made by `tests/fixtures/oracle/gen-twiml.js`
//! with the `twilio` npm package's `VoiceResponse`), flexbridge's answer to
//! the same request under the same configuration is the same document.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::helpers::{TestApp, assert_equivalent_twiml, spawn_app};

#[derive(Deserialize)]
struct Fixture {
    twilio_version: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    route: String,
    env: BTreeMap<String, String>,
    params: Vec<(String, String)>,
    twiml: String,
}

#[tokio::test]
async fn voice_answers_match_twilio_nodes_voice_response() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../fixtures/twiml_cases.json")).expect("fixture parses");
    assert_eq!(fixture.twilio_version, "6.3.1");
    assert!(
        fixture.cases.len() >= 40,
        "the fixture has {} cases",
        fixture.cases.len()
    );

    // One app per distinct configuration.
    let mut apps: BTreeMap<BTreeMap<String, String>, TestApp> = BTreeMap::new();
    for case in &fixture.cases {
        if !apps.contains_key(&case.env) {
            let env: Vec<(&str, &str)> = case
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            apps.insert(case.env.clone(), spawn_app(&env).await);
        }
        let app = &apps[&case.env];
        let params: Vec<(&str, &str)> = case
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();

        let twiml = app.voice(&case.route, &params).await;

        println!("case: {}", case.name);
        assert_equivalent_twiml(&twiml, &case.twiml);
    }
}
