//! The load generator: a fixed number of workers, each with its own keep-alive HTTP/1.1
//! connection (hyper), sending one request after another until a request count or a time cap is
//! reached. Every request's latency goes into an HDR histogram; a server that closes the
//! connection after a response (gunicorn's sync workers do) is reconnected, and the connect time
//! counts in that request's latency, as it would for a real client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{CONNECTION, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What every request of a run is.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Target {
    pub fn post(addr: SocketAddr, path: &str, content_type: &str, body: impl Into<Bytes>) -> Self {
        Target {
            addr,
            method: Method::POST,
            path: path.to_string(),
            content_type: Some(content_type.to_string()),
            body: body.into(),
        }
    }

    pub fn get(addr: SocketAddr, path: &str) -> Self {
        Target {
            addr,
            method: Method::GET,
            path: path.to_string(),
            content_type: None,
            body: Bytes::new(),
        }
    }
}

/// How much load: `concurrency` workers, at most `requests` requests in all, at most `time`.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub concurrency: usize,
    pub requests: u64,
    pub time: Duration,
}

/// What a run measured.
pub struct Measured {
    /// Latency of the requests answered 2xx, in nanoseconds.
    pub latency: Histogram<u64>,
    pub ok: u64,
    /// Answered, but not 2xx.
    pub non_2xx: u64,
    /// Connection errors and timeouts.
    pub errors: u64,
    pub elapsed: Duration,
    /// One status other than 2xx, to explain `non_2xx`.
    pub sample_failure: Option<String>,
}

impl Measured {
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            self.ok as f64 / secs
        }
    }

    /// The latency at quantile `q` (0..=1), if anything was answered.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        (!self.latency.is_empty()).then(|| Duration::from_nanos(self.latency.value_at_quantile(q)))
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min, three significant figures.
    Histogram::new_with_bounds(1_000, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Longest wait for one answer before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `load` against `target`.
pub async fn run(target: &Target, load: Load) -> Measured {
    run_spread(std::slice::from_ref(target), load).await
}

/// Runs `load` against several servers at once: worker `i` sends its requests to
/// `targets[i % targets.len()]` (so at c=1 only the first gets any).
pub async fn run_spread(targets: &[Target], load: Load) -> Measured {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + load.time;
    let mut workers = Vec::new();
    for (_, target) in (0..load.concurrency.max(1)).zip(targets.iter().cycle()) {
        let target = target.clone();
        let issued = issued.clone();
        workers.push(tokio::spawn(async move {
            worker(&target, &issued, load.requests, deadline).await
        }));
    }
    let mut total = Measured {
        latency: new_histogram(),
        ok: 0,
        non_2xx: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        sample_failure: None,
    };
    for worker in workers {
        if let Ok(part) = worker.await {
            let _ = total.latency.add(&part.latency);
            total.ok += part.ok;
            total.non_2xx += part.non_2xx;
            total.errors += part.errors;
            if total.sample_failure.is_none() {
                total.sample_failure = part.sample_failure;
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

async fn worker(target: &Target, issued: &AtomicU64, limit: u64, deadline: Instant) -> Measured {
    let mut measured = Measured {
        latency: new_histogram(),
        ok: 0,
        non_2xx: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        sample_failure: None,
    };
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < limit {
        let start = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, once(target, &mut sender)).await;
        let latency = start.elapsed();
        match result {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                measured.ok += 1;
                let _ = measured
                    .latency
                    .record(latency.as_nanos().clamp(1_000, 600_000_000_000) as u64);
            }
            Ok(Ok(status)) => {
                measured.non_2xx += 1;
                measured
                    .sample_failure
                    .get_or_insert_with(|| format!("HTTP {status}"));
            }
            Ok(Err(error)) => {
                measured.errors += 1;
                sender = None;
                measured
                    .sample_failure
                    .get_or_insert_with(|| format!("{error:#}"));
                // A refused connection would otherwise spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                measured.errors += 1;
                sender = None;
                measured
                    .sample_failure
                    .get_or_insert_with(|| "timeout".to_string());
            }
        }
    }
    measured
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request on the worker's connection (opened first if needed); answers the status.
async fn once(
    target: &Target,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
) -> anyhow::Result<u16> {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = Some(connect(target.addr).await?);
    }
    let Some(connection) = sender.as_mut() else {
        anyhow::bail!("no connection");
    };
    connection.ready().await?;
    let mut request = Request::builder()
        .method(target.method.clone())
        .uri(target.path.as_str())
        .header(HOST, target.addr.to_string());
    if let Some(content_type) = &target.content_type {
        request = request.header(CONTENT_TYPE, content_type.as_str());
    }
    let request = request.body(Full::new(target.body.clone()))?;
    let response = connection.send_request(request).await?;
    let status = response.status().as_u16();
    let closes = response
        .headers()
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    response.into_body().collect().await?;
    if closes {
        *sender = None;
    }
    Ok(status)
}

/// One request on a fresh connection, for single measurements (cold calls).
pub async fn single(target: &Target) -> anyhow::Result<(u16, Duration)> {
    let mut sender = None;
    let start = Instant::now();
    let status = tokio::time::timeout(REQUEST_TIMEOUT, once(target, &mut sender))
        .await
        .context("timeout")??;
    Ok((status, start.elapsed()))
}

/// Waits until `target` answers anything (a server starting up), for at most `limit`.
pub async fn wait_until_answers(target: &Target, limit: Duration) -> anyhow::Result<()> {
    wait_until_status(target, limit, |_| true).await
}

/// Like [`wait_until_answers`], until the answer is `200` (a server's `/readyz`).
pub async fn wait_until_ok(target: &Target, limit: Duration) -> anyhow::Result<()> {
    wait_until_status(target, limit, |status| status == 200).await
}

async fn wait_until_status(
    target: &Target,
    limit: Duration,
    wanted: impl Fn(u16) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut sender = None;
        match tokio::time::timeout(Duration::from_secs(5), once(target, &mut sender)).await {
            Ok(Ok(status)) if wanted(status) => return Ok(()),
            _ if Instant::now() > deadline => {
                anyhow::bail!("{} did not answer within {limit:?}", target.addr)
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
