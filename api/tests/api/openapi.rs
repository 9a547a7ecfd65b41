//! `/api/openapi.json` documents every route of the router, and only routes that exist.

use std::collections::BTreeSet;
use std::path::Path;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::support::TestApp;

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

/// Every `(method, path)` the API's sources register with `.route(…)`.
fn routes_in_the_sources() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("lib.rs")];
    for entry in std::fs::read_dir(src.join("routes")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for chunk in text.split(".route(").skip(1) {
            // The route's arguments end before the next line at the start of a column.
            let chunk = chunk.split("\n}").next().unwrap();
            let path = chunk.split('"').nth(1).expect("a path literal");
            let handlers = &chunk[chunk.find(path).unwrap() + path.len()..];
            let before = |i: usize| handlers[..i].chars().last();
            for method in METHODS {
                let call = format!("{method}(");
                let registered = handlers
                    .match_indices(&call)
                    .any(|(i, _)| !before(i).is_some_and(|c| c.is_alphanumeric() || c == '_'));
                if registered {
                    routes.insert((method.to_string(), path.to_string()));
                }
            }
        }
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.clone(), path.clone()));
        }
    }
    operations
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_nothing_else() {
    let app = TestApp::start().await;

    let reply = app.get("/api/openapi.json", None).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.1.0");
    let in_sources = routes_in_the_sources();
    assert!(
        in_sources.len() > 60,
        "the source scan found {in_sources:?}"
    );
    let in_document = documented(&reply.body);
    let undocumented: Vec<_> = in_sources.difference(&in_document).collect();
    let unrouted: Vec<_> = in_document.difference(&in_sources).collect();
    assert!(undocumented.is_empty(), "not documented: {undocumented:?}");
    assert!(
        unrouted.is_empty(),
        "documented but not in the router: {unrouted:?}"
    );

    // And the router answers every documented operation (the fallback 404 has no body).
    for (method, path) in &in_document {
        let concrete = path.replace(['{', '}'], "");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = app.request(method.clone(), &concrete, None, None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(
            reply.status != StatusCode::NOT_FOUND || !reply.bytes.is_empty(),
            "{method} {path} is not routed"
        );
    }
}

#[tokio::test]
async fn every_operation_says_who_may_call_it() {
    let app = TestApp::start().await;

    let doc = app.get("/api/openapi.json", None).await.body;

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(
                description.starts_with("Access: "),
                "{method} {path}: {description:?}"
            );
        }
    }
}
