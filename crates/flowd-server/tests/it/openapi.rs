//! The published API description matches the server: every documented route exists.

use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_exists() {
    let app = spawn_app().await;
    let spec = app.get_json("/openapi.json").await;
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 12);
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "00000000-0000-7000-8000-000000000000")
                .replace("{team}", "default")
                .replace("{workflow}", "nope")
                .replace("{runtime}", "python3.11")
                .replace("{token}", "x");
            let request = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "application/json")
                .body("{}");
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            // A route that does not exist answers the fallback's 404 "route not found" or a 405.
            assert_ne!(status, 405, "{method} {path} is not routed");
            assert!(
                !(status == 404 && body["error"]["message"] == "route not found"),
                "{method} {path} is not routed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_description_needs_a_key_like_every_api_route() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
