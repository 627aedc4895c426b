use crate::helpers::spawn_app;

/// The health check needs no configuration and no authentication.
#[tokio::test]
async fn healthz_answers_ok_without_any_configuration() {
    let app = spawn_app(&[("TWILIO_VALIDATE_SIGNATURES", "true")]).await;

    let response = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "ok");
}

/// A path no route serves is a plain-text 404. A route's path with a
/// trailing slash (a habit when pasting URLs into Twilio's console) names
/// the path that exists; the request's own path is never echoed.
#[tokio::test]
async fn an_unknown_path_is_a_404_that_names_the_route_a_trailing_slash_hides() {
    let app = spawn_app(&[("TWILIO_VALIDATE_SIGNATURES", "true")]).await;

    for (method, path, expected) in [
        (
            reqwest::Method::POST,
            "/receive-call/",
            "flexbridge has no route at this path; its paths have no trailing slash: /receive-call\n",
        ),
        (
            reqwest::Method::POST,
            "/tools/flex-handover/?key=k",
            "flexbridge has no route at this path; its paths have no trailing slash: /tools/flex-handover\n",
        ),
        (
            reqwest::Method::GET,
            "/healthz/",
            "flexbridge has no route at this path; its paths have no trailing slash: /healthz\n",
        ),
        (
            reqwest::Method::POST,
            "/receive-call//",
            "flexbridge has no route at this path\n",
        ),
        (
            reqwest::Method::GET,
            "/%3Cscript%3E",
            "flexbridge has no route at this path\n",
        ),
        (
            reqwest::Method::POST,
            "/",
            "flexbridge has no route at this path\n",
        ),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
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
