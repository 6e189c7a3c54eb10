//! The egress policy, end to end: workflows reach a "public" test host but not loopback (flowd's
//! own API), private or link-local test hosts, over TCP and UDP, IPv4 and IPv6, by address, by
//! name or through a redirect; `--egress-allow` opens one; `--egress-proxy` is the only way out;
//! a workflow's own `egress_allow` opens one to that workflow alone, within
//! `--egress-workflow-allow`.
//!
//! Every remote host lives in a network namespace the test creates (and removes) behind a veth
//! pair: 203.0.113.246 and 2001:db8:77::2 play the public side, 10.200.0.2 and fd00:200::2 the
//! private side, 169.254.77.2 the link-local side. No packet goes to any other address. Each
//! server gets a sandbox uid of its own, so its table affects no other test's server.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flowd_core::egress::EgressRule;
use flowd_runtime::{EgressConfig, SandboxUser};
use serde_json::{json, Value};

use super::{attack, running_as_root};
use crate::support::*;

/// In a /30 of its own: the rest of 203.0.113.0/24 keeps its route (on these machines the package
/// registries answer on an address of that network, and a test must not take it over).
const PUBLIC_V4: &str = "203.0.113.246";
const PUBLIC_V6: &str = "2001:db8:77::2";
const PRIVATE_V4: &str = "10.200.0.2";
const PRIVATE_V6: &str = "fd00:200::2";
const LINK_LOCAL_V4: &str = "169.254.77.2";

/// The test hosts' addresses are fixed: one network at a time.
static NETWORK: Mutex<()> = Mutex::new(());

/// What the test hosts run: HTTP on port 80 (`/redirect` sends to the private host; a request in
/// proxy form is answered `proxied`), the same on 3128 (the proxy), a UDP echo on port 7.
const HOST_SERVER: &str = r#"
import socket, threading
def answer(conn):
    try:
        line = conn.recv(4096).split(b'\r\n', 1)[0]
        if line.startswith(b'GET /redirect'):
            conn.sendall(b'HTTP/1.1 302 Found\r\nLocation: http://10.200.0.2/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
        else:
            body = b'proxied' if line.startswith(b'GET http://') else b'hello'
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' % len(body) + body)
    finally:
        conn.close()
def dual(kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s
def serve_tcp(port):
    s = dual(socket.SOCK_STREAM)
    s.bind(('::', port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=answer, args=(conn,), daemon=True).start()
def serve_udp(port):
    s = dual(socket.SOCK_DGRAM)
    s.bind(('::', port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
threading.Thread(target=serve_udp, args=(7,), daemon=True).start()
threading.Thread(target=serve_tcp, args=(3128,), daemon=True).start()
serve_tcp(80)
"#;

/// A network namespace holding the test hosts, joined to this host by a veth pair; removed
/// (with its server) when dropped.
struct TestHosts {
    namespace: String,
    host_link: String,
    server: Child,
    _serial: MutexGuard<'static, ()>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip runs");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl TestHosts {
    fn start() -> TestHosts {
        let serial = NETWORK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = std::process::id();
        let namespace = format!("flowd-egress-{id}");
        let host_link = format!("feg{id}h");
        let peer_link = format!("feg{id}n");
        let _ = Command::new("ip")
            .args(["netns", "del", &namespace])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &namespace]);
        ip(&[
            "link", "add", &host_link, "type", "veth", "peer", "name", &peer_link,
        ]);
        ip(&["link", "set", &peer_link, "netns", &namespace]);
        let inside = |args: &[&str]| {
            let mut all = vec!["-n", namespace.as_str()];
            all.extend_from_slice(args);
            ip(&all);
        };
        for (host, remote) in [
            ("203.0.113.245/30", format!("{PUBLIC_V4}/30")),
            ("10.200.0.1/24", format!("{PRIVATE_V4}/24")),
            ("169.254.77.1/24", format!("{LINK_LOCAL_V4}/24")),
        ] {
            ip(&["addr", "add", host, "dev", &host_link]);
            inside(&["addr", "add", &remote, "dev", &peer_link]);
        }
        for (host, remote) in [
            ("2001:db8:77::1/64", format!("{PUBLIC_V6}/64")),
            ("fd00:200::1/64", format!("{PRIVATE_V6}/64")),
        ] {
            ip(&["addr", "add", host, "dev", &host_link, "nodad"]);
            inside(&["addr", "add", &remote, "dev", &peer_link, "nodad"]);
        }
        ip(&["link", "set", &host_link, "up"]);
        inside(&["link", "set", &peer_link, "up"]);
        inside(&["link", "set", "lo", "up"]);
        let server = Command::new("ip")
            .args(["netns", "exec", &namespace, "/usr/bin/python3", "-c"])
            .arg(HOST_SERVER)
            .spawn()
            .expect("the test hosts' server starts");
        let hosts = TestHosts {
            namespace,
            host_link,
            server,
            _serial: serial,
        };
        hosts.wait_until_serving();
        hosts
    }

    /// Polls the public and private hosts (as root, which the policy leaves alone).
    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for address in [PUBLIC_V4, PRIVATE_V6] {
            let target: std::net::IpAddr = address.parse().unwrap();
            while std::net::TcpStream::connect_timeout(
                &(target, 80).into(),
                Duration::from_millis(200),
            )
            .is_err()
            {
                assert!(Instant::now() < deadline, "the test host {address} serves");
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

/// A uid of its own for each server of this test binary (and one no other test uses).
pub(super) fn fresh_sandbox_user() -> SandboxUser {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    SandboxUser {
        uid: 64_100 + (std::process::id() % 100) * 10 + NEXT.fetch_add(1, Ordering::Relaxed),
        gid: 65534,
    }
}

async fn spawn_with_egress(egress: EgressConfig) -> TestApp {
    spawn_app_with(|config| {
        config.sandbox_user = Some(fresh_sandbox_user());
        config.egress = egress;
    })
    .await
}

fn rules(texts: &[&str]) -> Vec<EgressRule> {
    texts.iter().map(|text| text.parse().unwrap()).collect()
}

/// Sends `ping` over `kind` (`tcp`/`udp`) to `host:port` from a workflow, waits for an answer;
/// answers `open`, `refused` or `timeout`, with the error in the execution's output.
const CONNECT: &str = r#"import json, socket, time
kind, host, port = _request['kind'], _request['host'], _request['port']
family = socket.getaddrinfo(host, port)[0][0]
s = socket.socket(family, socket.SOCK_STREAM if kind == 'tcp' else socket.SOCK_DGRAM)
s.settimeout(5)
started = time.monotonic()
try:
    s.connect((host, port))
    s.send(b'ping\r\n\r\n')
    s.recv(64)
    result = 'open'
except socket.timeout:
    result = 'timeout'
except OSError as error:
    print('egress refused:', host, port, error)
    result = 'refused'
elapsed = time.monotonic() - started
return {'status_code': 200, 'body': json.dumps({'result': result, 'elapsed': elapsed})}"#;

struct Attempt {
    result: String,
    elapsed: f64,
    record: Value,
}

async fn connect(app: &TestApp, kind: &str, host: &str, port: u16) -> Attempt {
    let name = format!("connect-{kind}-{}-{port}", host.replace([':', '.'], "-"));
    connect_as(app, &name, json!({}), kind, host, port).await
}

/// [`connect`] from a workflow named `name`, created with `extra` fields.
async fn connect_as(
    app: &TestApp,
    name: &str,
    extra: Value,
    kind: &str,
    host: &str,
    port: u16,
) -> Attempt {
    let outcome = attack(
        app,
        name,
        CONNECT,
        extra,
        json!({"kind": kind, "host": host, "port": port}),
    )
    .await;
    attempt(outcome.status, &outcome.body, outcome.record)
}

/// [`connect`] from a workflow made with [`CONNECT`] already.
async fn connect_again(
    app: &TestApp,
    workflow: &Value,
    kind: &str,
    host: &str,
    port: u16,
) -> Attempt {
    let response = app
        .call_hook_json(workflow, &json!({"kind": kind, "host": host, "port": port}))
        .await;
    let status = response.status().as_u16();
    let id = execution_id(&response);
    let body = response.text().await.unwrap_or_default();
    attempt(status, &body, app.execution(&id).await)
}

fn attempt(status: u16, body: &str, record: Value) -> Attempt {
    assert_eq!(status, 200, "{record}");
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    Attempt {
        result: body["result"].as_str().unwrap_or_default().to_string(),
        elapsed: body["elapsed"].as_f64().unwrap_or(f64::MAX),
        record,
    }
}

fn assert_refused_fast(attempt: &Attempt, what: &str) {
    assert_eq!(attempt.result, "refused", "{what}: {}", attempt.record);
    assert!(
        attempt.elapsed < 1.0,
        "{what} refused in {} s",
        attempt.elapsed
    );
    let logs = attempt.record["logs"].as_str().unwrap_or_default();
    assert!(logs.contains("egress refused"), "{what}: {logs}");
}

fn api_port(app: &TestApp) -> u16 {
    app.address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the API's port")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_test_host_is_reachable_over_tcp_and_udp_ipv4_and_ipv6() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_egress(EgressConfig::default()).await;

    for (kind, host, port) in [
        ("tcp", PUBLIC_V4, 80),
        ("udp", PUBLIC_V4, 7),
        ("tcp", PUBLIC_V6, 80),
        ("udp", PUBLIC_V6, 7),
    ] {
        let attempt = connect(&app, kind, host, port).await;
        assert_eq!(attempt.result, "open", "{kind} {host}: {}", attempt.record);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flowds_own_api_on_loopback_is_refused_fast_by_address_and_by_name() {
    if !running_as_root() {
        return;
    }
    let app = spawn_with_egress(EgressConfig::default()).await;
    let port = api_port(&app);

    for host in ["127.0.0.1", "localhost"] {
        assert_refused_fast(&connect(&app, "tcp", host, port).await, host);
    }
    assert_refused_fast(
        &connect(&app, "udp", "127.0.0.1", port).await,
        "udp loopback",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_and_link_local_test_hosts_are_refused_fast_over_tcp_and_udp() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_egress(EgressConfig::default()).await;

    for (kind, host, port) in [
        ("tcp", PRIVATE_V4, 80),
        ("udp", PRIVATE_V4, 7),
        ("tcp", PRIVATE_V6, 80),
        ("udp", PRIVATE_V6, 7),
        ("tcp", LINK_LOCAL_V4, 80),
        ("udp", LINK_LOCAL_V4, 7),
    ] {
        assert_refused_fast(
            &connect(&app, kind, host, port).await,
            &format!("{kind} {host}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_the_public_host_to_a_private_one_is_refused() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_egress(EgressConfig::default()).await;

    let outcome = attack(
        &app,
        "redirected",
        &format!("import requests\ntry:\n    result = requests.get('http://{PUBLIC_V4}/redirect', timeout=5).text\nexcept requests.ConnectionError as error:\n    print('egress refused:', error)\n    result = 'refused'\nreturn {{'status_code': 200, 'body': result}}"),
        json!({}),
        json!({}),
    )
    .await;

    assert_eq!(outcome.body, "refused", "{}", outcome.record);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_egress_allow_exception_opens_that_network_only() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_egress(EgressConfig {
        allow: rules(&["10.200.0.0/24"]),
        ..EgressConfig::default()
    })
    .await;

    let private = connect(&app, "tcp", PRIVATE_V4, 80).await;
    assert_eq!(private.result, "open", "{}", private.record);
    assert_refused_fast(&connect(&app, "tcp", LINK_LOCAL_V4, 80).await, "link-local");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_egress_allow_exception_opens_loopback_for_a_local_service() {
    if !running_as_root() {
        return;
    }
    let app = spawn_with_egress(EgressConfig {
        allow: rules(&["127.0.0.1"]),
        ..EgressConfig::default()
    })
    .await;

    let attempt = connect(&app, "tcp", "127.0.0.1", api_port(&app)).await;

    assert_eq!(attempt.result, "open", "{}", attempt.record);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_proxy_http_goes_through_it_and_a_direct_connection_is_refused() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_egress(EgressConfig {
        proxy: Some(format!("http://{PUBLIC_V4}:3128").parse().unwrap()),
        ..EgressConfig::default()
    })
    .await;

    let outcome = attack(
        &app,
        "proxied",
        &format!("import requests\nreturn {{'status_code': 200, 'body': requests.get('http://{PUBLIC_V4}/', timeout=5).text}}"),
        json!({}),
        json!({}),
    )
    .await;
    assert_eq!(outcome.body, "proxied", "{}", outcome.record);
    assert_refused_fast(
        &connect(&app, "tcp", PUBLIC_V4, 80).await,
        "direct to the public host",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_endpoint_lists_the_egress_layer() {
    if !running_as_root() {
        return;
    }
    let app = spawn_with_egress(EgressConfig::default()).await;

    let system = app.get_json("/system").await;

    let layers = system["isolation"]["layers"].as_array().unwrap();
    let egress = layers
        .iter()
        .find(|layer| layer["name"] == "egress")
        .expect("an egress layer");
    assert_eq!(egress["active"], true, "{egress}");
    assert!(
        egress["detail"].as_str().unwrap().contains("127.0.0.0/8"),
        "{egress}"
    );
}

/// The server's ceiling on workflows' own exceptions in these tests: the private test network.
const WORKFLOW_CEILING: &str = "10.200.0.0/24";

async fn spawn_with_workflow_ceiling() -> TestApp {
    spawn_with_egress(EgressConfig {
        workflow_allow: rules(&[WORKFLOW_CEILING]),
        ..EgressConfig::default()
    })
    .await
}

async fn given_bystander(app: &TestApp) {
    app.create_catch(
        "bystander",
        &catch_code("return {'status_code': 200, 'body': 'alive'}"),
    )
    .await;
}

async fn assert_bystander_answers(app: &TestApp) {
    let bystander = app.get_json("/workflows").await["workflows"]
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "bystander").cloned())
        .expect("the bystander");
    let response = app.call_hook_json(&bystander, &json!({})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflows_own_exception_opens_the_private_host_to_it_while_another_is_refused() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_workflow_ceiling().await;
    given_bystander(&app).await;

    let (allowed, other) = tokio::join!(
        connect_as(
            &app,
            "allowed",
            json!({"egress_allow": [PRIVATE_V4]}),
            "tcp",
            PRIVATE_V4,
            80
        ),
        connect_as(&app, "other", json!({}), "tcp", PRIVATE_V4, 80),
    );

    assert_eq!(allowed.result, "open", "{}", allowed.record);
    assert_refused_fast(&other, "a workflow without the exception");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflows_own_exception_opens_that_destination_only() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_workflow_ceiling().await;
    let allowed = json!({"egress_allow": [format!("{PRIVATE_V4}:80")]});

    let udp = connect_as(&app, "udp", allowed.clone(), "udp", PRIVATE_V4, 7).await;
    let link_local = connect_as(&app, "link-local", allowed, "tcp", LINK_LOCAL_V4, 80).await;

    assert_refused_fast(&udp, "another port of the allowed host");
    assert_refused_fast(&link_local, "another host");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exception_beyond_the_servers_ceiling_is_refused_naming_it() {
    if !running_as_root() {
        return;
    }
    let app = spawn_with_workflow_ceiling().await;

    let response = app
        .api(reqwest::Method::POST, "/workflows")
        .json(&json!({
            "name": "wider",
            "mode": "catch",
            "code": catch_code("return None"),
            "egress_allow": [PRIVATE_V4, "10.200.0.0/16"],
        }))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`10.200.0.0/16`"), "{message}");
    assert!(message.contains(WORKFLOW_CEILING), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_removing_the_exception_closes_it_for_the_next_execution() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_workflow_ceiling().await;
    let before = connect_as(
        &app,
        "revoked",
        json!({"egress_allow": [WORKFLOW_CEILING]}),
        "tcp",
        PRIVATE_V4,
        80,
    )
    .await;
    assert_eq!(before.result, "open", "{}", before.record);
    let workflow = app.get_json("/workflows").await["workflows"]
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "revoked").cloned())
        .expect("the workflow");

    let patched = app
        .patch_workflow(&workflow, json!({"egress_allow": []}))
        .await;
    let after = connect_again(&app, &workflow, "tcp", PRIVATE_V4, 80).await;

    assert_eq!(patched["egress_allow"], json!([]));
    assert_refused_fast(&after, "after the exception was removed");
    assert_bystander_answers(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patch_adding_an_exception_opens_it_for_the_next_execution() {
    if !running_as_root() {
        return;
    }
    let _hosts = TestHosts::start();
    let app = spawn_with_workflow_ceiling().await;
    let before = connect_as(&app, "granted", json!({}), "tcp", PRIVATE_V4, 80).await;
    assert_refused_fast(&before, "before the exception");
    let workflow = app.get_json("/workflows").await["workflows"]
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "granted").cloned())
        .expect("the workflow");

    app.patch_workflow(&workflow, json!({"egress_allow": [PRIVATE_V4]}))
        .await;
    let after = connect_again(&app, &workflow, "tcp", PRIVATE_V4, 80).await;

    assert_eq!(after.result, "open", "{}", after.record);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_endpoint_lists_the_per_workflow_egress_layer_with_its_ceiling() {
    if !running_as_root() {
        return;
    }
    let app = spawn_with_workflow_ceiling().await;

    let system = app.get_json("/system").await;

    let layers = system["isolation"]["layers"].as_array().unwrap();
    let layer = layers
        .iter()
        .find(|layer| layer["name"] == "egress_per_workflow")
        .expect("an egress_per_workflow layer");
    assert_eq!(layer["active"], true, "{layer}");
    assert!(
        layer["detail"].as_str().unwrap().contains(WORKFLOW_CEILING),
        "{layer}"
    );
}
