//! `openapi.yaml` stays honest: it describes exactly the routes served, and
//! its TwiML examples are well-formed documents.

use std::collections::BTreeSet;

use flexbridge::routes::ROUTES;
use serde_json::Value;

use crate::helpers::assert_well_formed_twiml;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec() -> Value {
    serde_norway::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml is valid YAML")
}

/// YAML forbids a key twice in one mapping, but a load into JSON values
/// keeps the last silently; YAML's own values refuse it.
#[test]
fn openapi_has_no_key_twice_in_a_mapping() {
    let loaded: Result<serde_norway::Value, _> =
        serde_norway::from_str(include_str!("../../openapi.yaml"));
    if let Err(e) = loaded {
        panic!("openapi.yaml: {e}");
    }
}

#[test]
fn openapi_describes_exactly_the_routes_the_router_serves() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (path.clone(), m.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .map(move |m| (r.path.to_owned(), (*m).to_owned()))
        })
        .collect();

    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
}

/// Every operation has an id, a summary and at least one documented answer.
#[test]
fn every_operation_is_documented() {
    let spec = spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let op = &item[*method];
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: operationId"
            );
            assert!(op["summary"].is_string(), "{method} {path}: summary");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}: responses"
            );
        }
    }
}

#[test]
fn twiml_examples_are_well_formed() {
    let spec = spec();
    let mut checked = 0;
    for (_, response) in spec["components"]["responses"].as_object().unwrap() {
        if let Some(examples) = response["content"]["text/xml"]["examples"].as_object() {
            for (_, example) in examples {
                assert_well_formed_twiml(example["value"].as_str().unwrap());
                checked += 1;
            }
        }
    }
    assert!(checked >= 5, "checked {checked} TwiML examples");
}
