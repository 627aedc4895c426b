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

/// An uptime monitor that checks with HEAD (RFC 9110 asks every server
/// that answers GET to answer it) gets GET's status and headers, and no
/// body.
#[tokio::test]
async fn head_on_the_operations_routes_answers_like_get_without_a_body() {
    let app = spawn_app(&[]).await;

    // The metrics' length changes with every request, the GET included.
    for (path, same_headers) in [
        ("/healthz", &["content-type", "content-length"][..]),
        ("/healthz?detail=true", &["content-type", "content-length"]),
        ("/metrics", &["content-type"]),
    ] {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        let head = app.client.head(app.url(path)).send().await.unwrap();

        assert_eq!(head.status().as_u16(), 200, "{path}");
        for header in same_headers {
            assert_eq!(head.headers()[*header], get.headers()[*header], "{path}");
        }
        assert_eq!(head.text().await.unwrap(), "", "{path}");
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
