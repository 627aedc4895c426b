use crate::helpers::spawn_app;

/// The health check needs no configuration and no authentication.
#[tokio::test]
async fn healthz_answers_ok_without_any_configuration() {
    let app = spawn_app(&[("TWILIO_VALIDATE_SIGNATURES", "true")]).await;

    let response = app.client.get(app.url("/healthz")).send().await.unwrap();

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "ok");
}

/// `/healthz` and `/metrics` answer GET only, as the SPEC lists them: an
/// uptime monitor that sends HEAD gets a 405 whose `Allow` says what to
/// send instead (docs/operations.md, Troubleshooting).
#[tokio::test]
async fn head_on_the_operations_routes_is_a_405_that_allows_get() {
    let app = spawn_app(&[]).await;

    for path in ["/healthz", "/metrics"] {
        let response = app.client.head(app.url(path)).send().await.unwrap();

        assert_eq!(response.status().as_u16(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET", "{path}");
    }
}

/// A path no route serves is a plain-text 404. A route's path with a
/// trailing slash (a habit when pasting URLs into Twilio's console) names
/// the path that exists; the request's own path is never echoed.
#[tokio::test]
async fn an_unknown_path_is_a_404_that_names_the_route_a_trailing_slash_hides() {
    let app = spawn_app(&[("TWILIO_VALIDATE_SIGNATURES", "true")]).await;

    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    for (method, path, meant) in [
        (&post, "/receive-call/", Some("/receive-call")),
        (
            &post,
            "/tools/flex-handover/?key=k",
            Some("/tools/flex-handover"),
        ),
        (&get, "/healthz/", Some("/healthz")),
        (&post, "/receive-call//", None),
        (&get, "/%3Cscript%3E", None),
        (&post, "/", None),
    ] {
        let expected = match meant {
            Some(route) => format!(
                "flexbridge has no route at this path; its paths have no trailing slash: {route}\n"
            ),
            None => "flexbridge has no route at this path\n".to_owned(),
        };
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status().as_u16(), 404, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{method} {path}"
        );
        assert_eq!(response.text().await.unwrap(), expected, "{method} {path}");
    }
}
