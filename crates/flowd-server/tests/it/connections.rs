//! Connection hygiene: slow and idle clients are let go, connections are capped, `/healthz`
//! answers whatever clients hold open, and request bodies in memory are bounded.

use std::time::Duration;

use flowd_server::conn::fd_limit;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection, failing the test if that takes over `within`;
/// answers what was read.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the connection open past {within:?}"));
    received
}

async fn healthz_answers_within(app: &TestApp, within: Duration) {
    let response = tokio::time::timeout(within, app.client.get(app.url("/healthz")).send())
        .await
        .unwrap_or_else(|_| panic!("/healthz did not answer within {within:?}"))
        .expect("healthz");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn client_that_never_finishes_its_headers_is_disconnected_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.connections.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"POST /healthz HTTP/1.1\r\nHost: flowd\r\nX-Slow: ")
        .await
        .expect("write");
    let received = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(
        received.is_empty() || text.starts_with("HTTP/1.1 408"),
        "a close or a 408, not {text:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.connections.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: flowd\r\n\r\n")
        .await
        .expect("write");
    let response = read_raw_response(&mut stream).await;
    assert_eq!(response.status, 200);
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    app.stop().await;
}

#[tokio::test]
async fn body_that_stops_coming_gets_408_after_the_body_timeout() {
    let app = spawn_app_with(|c| c.connections.body_read_timeout = Duration::from_secs(1)).await;
    let workflow = app.create_catch("stall", &catch_code("return {}")).await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: flowd\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\": ",
        hook_path(&workflow)
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let response = tokio::time::timeout(Duration::from_secs(5), read_raw_response(&mut stream))
        .await
        .expect("an answer within the body timeout");
    assert_eq!(response.status, 408);
    assert_eq!(response.json()["error"]["code"], "body_read_timeout");
    app.stop().await;
}

#[tokio::test]
async fn healthz_answers_with_2000_slow_clients_connected() {
    fd_limit::raise_to_hard_limit().expect("raise the open-file limit");
    let app = spawn_app().await;
    let mut slow = Vec::with_capacity(2000);
    for i in 0..2000 {
        let mut stream = connect(&app).await;
        // Half of them stop in their headers, half in a body the server is reading.
        let partial = if i % 2 == 0 {
            "POST /healthz HTTP/1.1\r\nHost: flowd\r\nX-Slow: ".to_string()
        } else {
            format!(
                "POST /api/v1/workflows HTTP/1.1\r\nHost: flowd\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
            )
        };
        stream.write_all(partial.as_bytes()).await.expect("write");
        slow.push(stream);
    }
    healthz_answers_within(&app, Duration::from_secs(2)).await;
    drop(slow);
    app.stop().await;
}

#[tokio::test]
async fn connection_beyond_the_cap_is_served_once_another_closes() {
    let app = spawn_app_with(|c| c.connections.max_connections = 2).await;
    let mut held = [connect(&app).await, connect(&app).await];
    // Both are accepted: each answers a request.
    for stream in &mut held {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: flowd\r\n\r\n")
            .await
            .expect("write");
        assert_eq!(read_raw_response(stream).await.status, 200);
    }
    let mut third = tokio::spawn({
        let url = app.url("/healthz");
        let client = app.client.clone();
        async move { client.get(url).send().await.map(|r| r.status()) }
    });
    let over_the_cap = tokio::time::timeout(Duration::from_millis(500), &mut third).await;
    assert!(
        over_the_cap.is_err(),
        "a third connection was served over the cap of 2"
    );
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .expect("task")
        .expect("request");
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn bodies_beyond_the_in_flight_budget_get_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.max_body_bytes = 1 << 20;
        c.max_inflight_body_bytes = 1 << 20;
    })
    .await;
    let workflow = app
        .create_catch(
            "slow",
            &catch_code("import time\ntime.sleep(4)\nreturn {'n': len(_request['data'])}"),
        )
        .await;
    let body = json!({"data": "x".repeat(600 << 10)});
    let calls = (0..4).map(|_| {
        let request = app.hook(&workflow).json(&body);
        async move { request.send().await.expect("hook") }
    });
    let responses = futures::future::join_all(calls).await;
    let mut served = 0;
    let mut refused = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => served += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                let body: serde_json::Value = response.json().await.expect("json");
                assert_eq!(body["error"]["code"], "body_budget_exhausted");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        (served, refused),
        (1, 3),
        "one 600 KiB body fits a 1 MiB budget"
    );
    assert_eq!(app.state.body_budget.in_flight_bytes(), 0);
    app.stop().await;
}
