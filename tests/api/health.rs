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
