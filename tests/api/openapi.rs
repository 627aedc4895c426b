//! `openapi.yaml` stays honest: it describes exactly the routes served, its
//! TwiML examples are well-formed documents, and every example matches its
//! schema. The README's route table lists the same routes, and its version
//! is the crate's.

use std::collections::BTreeSet;

use flexbridge::routes::ROUTES;
use serde_json::Value;

use crate::helpers::{assert_readme_lists, assert_well_formed_twiml, readme_rows};

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

/// The contract is versioned with the binary that serves it.
#[test]
fn openapi_version_is_the_crate_version() {
    assert_eq!(spec()["info"]["version"], env!("CARGO_PKG_VERSION"));
}

/// The README's route table lists exactly the paths the router serves.
#[test]
fn the_readme_route_table_lists_exactly_the_routes_served() {
    let listed: BTreeSet<&str> = readme_rows("Routes")
        .filter_map(|row| row.split('`').next()?.split(' ').nth(1))
        .collect();
    let served: BTreeSet<&str> = ROUTES.iter().map(|route| route.path).collect();
    assert!(served.len() >= 15, "{served:?}");
    assert_readme_lists(&listed, &served);
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

/// Every example in the contract (a parameter's, a request body's, an
/// answer's) is valid against the schema beside it, so a client generated
/// from `openapi.yaml` or a reader copying an example is not misled.
#[test]
fn every_example_matches_its_schema() {
    let spec = spec();
    let mut examples = Vec::new();
    collect_examples(&spec, "", &mut examples);
    let mut wrong = Vec::new();
    for (at, schema, value) in &examples {
        // The whole document is the root, so `#/components/...` resolves.
        let mut root = spec.clone();
        if let (Some(root), Some(schema)) = (root.as_object_mut(), schema.as_object()) {
            root.extend(schema.clone());
        }
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("{at}: the schema does not compile: {e}"));
        if let Err(error) = validator.validate(value) {
            wrong.push(format!("{at}: {error}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        examples.len() >= 80,
        "only {} examples found",
        examples.len()
    );
}

/// Each `example` and `examples.*.value` beside a `schema`, with its JSON
/// Pointer.
fn collect_examples<'a>(node: &'a Value, at: &str, out: &mut Vec<(String, &'a Value, &'a Value)>) {
    match node {
        Value::Object(map) => {
            if let Some(schema) = map.get("schema") {
                if let Some(example) = map.get("example") {
                    out.push((format!("{at}/example"), schema, example));
                }
                for (name, example) in map
                    .get("examples")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if let Some(value) = example.get("value") {
                        out.push((format!("{at}/examples/{name}"), schema, value));
                    }
                }
            }
            for (key, child) in map {
                collect_examples(child, &format!("{at}/{}", pointer_token(key)), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_examples(child, &format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// `key` as a JSON Pointer token (RFC 6901): `/paths/~1healthz/get`.
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
