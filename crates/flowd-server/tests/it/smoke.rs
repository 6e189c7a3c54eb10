use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_catch_workflow_answers_its_hook_with_what_it_returns() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "hello",
            &catch_code("return {'status_code': 201, 'body': 'hi ' + _request['name']}"),
        )
        .await;
    let response = app.call_hook_json(&workflow, &json!({"name": "ada"})).await;
    assert_eq!(response.status(), 201);
    let id = execution_id(&response);
    assert_eq!(response.text().await.unwrap(), "hi ada");
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "success");
    assert_eq!(record["response_status"], 201);
    app.stop().await;
}
