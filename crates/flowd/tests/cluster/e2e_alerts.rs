//! Failure alerts across nodes: the rate limit is claimed in the database, so failures on every
//! node inside one interval send one alert between them, and count the others as suppressed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// An HTTP server on 127.0.0.1 that answers every request `200` and keeps each body.
struct AlertReceiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl AlertReceiver {
    async fn start() -> AlertReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    if let Some(body) = read_one_request(socket).await {
                        kept.lock().unwrap().push(body);
                    }
                });
            }
        });
        AlertReceiver { url, bodies }
    }

    fn received(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// Reads one request (headers, then `Content-Length` bytes of body), answers `200` and closes.
async fn read_one_request(mut socket: tokio::net::TcpStream) -> Option<Value> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..read]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while bytes.len() < head_end + length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    let _ = socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await;
    serde_json::from_slice(&bytes[head_end..head_end + length]).ok()
}

/// The workflow's suppressed count in the shared rate limit (`None` before its first alert).
async fn suppressed_in_database(database_url: &str, workflow_id: &str) -> Option<i64> {
    let mut connection = PgConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar("SELECT suppressed FROM alert_state WHERE workflow_id = $1")
        .bind(workflow_id)
        .fetch_optional(&mut connection)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_failures_on_two_nodes_inside_one_interval_send_one_alert() {
    const CALLS_PER_NODE: usize = 4;
    let receiver = AlertReceiver::start().await;
    let flags = [
        "--alert-url",
        receiver.url.as_str(),
        "--alert-min-interval-s",
        "600",
    ];
    let cluster = Cluster::start(2, &flags).await;
    let workflow = cluster
        .admin(0)
        .create_workflow(catch_workflow(
            "alerting",
            "def workflow(_request, settings):\n    raise KeyError('employee_id')\n",
            json!({}),
        ))
        .await;
    let hook = workflow["hook_url"].as_str().unwrap().to_string();

    let urls: Vec<String> = (0..cluster.len())
        .flat_map(|node| vec![format!("{}{hook}", cluster.node(node)); CALLS_PER_NODE])
        .collect();
    let http = cluster.http();
    let calls = urls.iter().map(|url| async move {
        let answer = http.post(url).json(&json!({})).send().await;
        answer.expect("the node answers").status().as_u16()
    });
    let statuses = join_all(calls).await;
    assert!(statuses.iter().all(|status| *status == 500), "{statuses:?}");

    // Every failure's claim is made once the count holds all but the one sent.
    let total = i64::try_from(cluster.len() * CALLS_PER_NODE).unwrap();
    let id = workflow["id"].as_str().unwrap();
    eventually(
        Duration::from_secs(30),
        "every failure claimed the rate limit",
        || async {
            (suppressed_in_database(cluster.database_url(), id).await == Some(total - 1))
                .then_some(())
        },
    )
    .await;
    let alert = eventually(Duration::from_secs(30), "the alert arrives", || async {
        receiver.received().pop()
    })
    .await;
    assert_eq!(alert["workflow_name"], "alerting");
    assert_eq!(alert["suppressed"], 0);
    let path = format!("/workflows/{id}/alerts");
    let deliveries = eventually(
        Duration::from_secs(30),
        "the delivery is recorded",
        || async {
            let (status, answer) = cluster
                .admin(1)
                .call(reqwest::Method::GET, &path, None)
                .await;
            assert_eq!(status, 200, "{answer}");
            answer["deliveries"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
                .then_some(answer)
        },
    )
    .await;
    assert_eq!(deliveries["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(receiver.received().len(), 1);
}
