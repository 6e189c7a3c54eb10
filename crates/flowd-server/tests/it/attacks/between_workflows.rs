//! One workflow cannot touch another's processes, nor flowd's: signals, `/proc`, abstract Unix
//! sockets and temporary directories are all refused while the victim keeps answering `200`.
//!
//! Both workflows run as the same sandbox user, so what stops these attacks is each warm
//! instance's own Landlock domain (filesystem rules, ptrace rules, and ABI 6's scoping of
//! signals and abstract Unix sockets), and for resource limits, nice values and CPU affinity,
//! the seccomp filter's rule that those calls name no process but the caller.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// Every attack the tests below make, chosen by `_request['attack']`; without one, the workflow
/// answers who it is: its warm instance's pid, its own pid and its temporary directory. At its
/// top level (run once per warm instance) it listens on an abstract Unix socket, stream and
/// datagram, named after the workflow.
const TWO_FACED: &str = r#"
import json, os, resource, signal, socket, time

NAME = __NAME__
_stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
_stream.bind('\0' + NAME + '-stream')
_stream.listen(64)
_datagram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
_datagram.bind('\0' + NAME + '-datagram')


def parent_of(pid):
    for line in open('/proc/%d/status' % pid):
        if line.startswith('PPid:'):
            return int(line.split()[1])
    return None


def children_of(pid):
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                if parent_of(int(entry)) == pid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def signal_all(pids):
    outcomes = []
    for pid in pids:
        for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
                outcomes.append('sent %s to %d' % (sig.name, pid))
            except PermissionError:
                outcomes.append('denied')
            except ProcessLookupError:
                outcomes.append('gone')
    return outcomes


def assassin(request):
    # Every other warm instance of this base process, and their forks, found via /proc.
    mine = os.getppid()
    instances = [pid for pid in children_of(parent_of(mine)) if pid != mine]
    forks = [fork for instance in instances for fork in children_of(instance)]
    deadline = time.monotonic() + 2
    while not forks and time.monotonic() < deadline:
        # Between a call taking the parked fork and the next one being made.
        time.sleep(0.01)
        forks = [fork for instance in instances for fork in children_of(instance)]
    targets = instances + forks
    return {'targets': targets, 'outcomes': signal_all(targets)}


def regicide(request):
    base = parent_of(os.getppid())
    return {'base': base, 'outcomes': signal_all([request['server_pid'], base])}


def snoop(request):
    outcomes = {}
    for name in ('environ', 'maps', 'mem'):
        try:
            open('/proc/%d/%s' % (request['victim_instance'], name), 'rb').read(16)
            outcomes[name] = 'read'
        except PermissionError:
            outcomes[name] = 'denied'
    try:
        os.listdir('/proc/%d/cwd' % request['victim_instance'])
        outcomes['cwd'] = 'listed'
    except PermissionError:
        outcomes['cwd'] = 'denied'
    return outcomes


def knock(request):
    outcomes = {}
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect('\0' + request['victim_name'] + '-stream')
        outcomes['stream'] = 'connected'
    except PermissionError:
        outcomes['stream'] = 'denied'
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        client.sendto(b'hello', '\0' + request['victim_name'] + '-datagram')
        outcomes['datagram'] = 'sent'
    except PermissionError:
        outcomes['datagram'] = 'denied'
    return outcomes


def trespass(request):
    outcomes = {}
    try:
        open(os.path.join(request['victim_tmp'], 'planted.py'), 'w').write('x')
        outcomes['write'] = 'written'
    except PermissionError:
        outcomes['write'] = 'denied'
    try:
        os.listdir(request['victim_tmp'])
        outcomes['list'] = 'listed'
    except PermissionError:
        outcomes['list'] = 'denied'
    return outcomes


def attempt_all(pids, actions):
    outcomes = []
    for pid in pids:
        for action in actions:
            try:
                action(pid)
                outcomes.append('changed %d' % pid)
            except PermissionError:
                outcomes.append('denied')
            except ProcessLookupError:
                outcomes.append('gone')
    return outcomes


def victims(request):
    # The victim's warm instance and its forks (its parked one at least).
    instance = request['victim_instance']
    return [instance] + children_of(instance)


def starve(request):
    # Three open files and one second of CPU would make every call of the victim fail.
    actions = [
        lambda pid: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)),
        lambda pid: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1)),
    ]
    return {'outcomes': attempt_all(victims(request), actions)}


def renice(request):
    actions = [lambda pid: os.setpriority(os.PRIO_PROCESS, pid, 19)]
    outcomes = attempt_all(victims(request), actions)
    # Every process of the shared uid at once, the victim's among them.
    outcomes += attempt_all([0], [lambda who: os.setpriority(os.PRIO_USER, who, 19)])
    return {'outcomes': outcomes}


def pin(request):
    actions = [lambda pid: os.sched_setaffinity(pid, {min(os.sched_getaffinity(0))})]
    return {'outcomes': attempt_all(victims(request), actions)}


ATTACKS = {'starve': starve, 'renice': renice, 'pin': pin, 'assassin': assassin, 'regicide': regicide, 'snoop': snoop, 'knock': knock, 'trespass': trespass}


def workflow(_request, settings):
    attack = _request.get('attack')
    if attack:
        found = ATTACKS[attack](_request)
    else:
        found = {'instance': os.getppid(), 'pid': os.getpid(), 'tmp': os.getcwd()}
    return {'status_code': 200, 'body': json.dumps(found)}
"#;

/// A deployed two-faced workflow and who it is.
struct Party {
    workflow: Value,
    /// The abstract socket names' prefix (unique per test process and party).
    socket_name: String,
    instance: u64,
    tmp: String,
}

async fn deploy(app: &TestApp, name: &str) -> Party {
    static PARTIES: AtomicU32 = AtomicU32::new(0);
    let socket_name = format!(
        "flowd-test-{}-{}-{name}",
        std::process::id(),
        PARTIES.fetch_add(1, Ordering::Relaxed)
    );
    let code = TWO_FACED.replace("__NAME__", &format!("{socket_name:?}"));
    let workflow = app.create_catch(name, &code).await;
    let identity = call(app, &workflow, &json!({})).await;
    Party {
        workflow,
        socket_name,
        instance: identity["instance"].as_u64().expect("the instance's pid"),
        tmp: identity["tmp"].as_str().expect("its directory").to_string(),
    }
}

/// Calls `workflow` and answers its JSON body; the call must answer `200` within 5 s.
async fn call(app: &TestApp, workflow: &Value, request: &Value) -> Value {
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        app.call_hook_json(workflow, request),
    )
    .await
    .expect("answered within 5 s");
    assert_eq!(response.status(), 200);
    serde_json::from_str(&response.text().await.expect("a body")).expect("a JSON body")
}

/// Runs `attack` from `attacker` while `victim` is called again and again: every victim call
/// answers `200` within 5 s, and its warm instance is the same one afterwards (not killed and
/// replaced). Answers what the attack found.
async fn attack_while_the_victim_answers(
    app: &TestApp,
    attacker: &Party,
    victim: &Party,
    attack: Value,
) -> Value {
    let mut request = json!({
        "victim_instance": victim.instance,
        "victim_name": victim.socket_name,
        "victim_tmp": victim.tmp,
        "server_pid": std::process::id(),
    });
    if let (Some(request), Some(attack)) = (request.as_object_mut(), attack.as_object()) {
        request.extend(attack.clone());
    }
    let client = app.client.clone();
    let url = app.url(hook_path(&attacker.workflow));
    let attack_call = tokio::spawn(async move { client.post(url).json(&request).send().await });
    let mut victim_calls = 0;
    while !attack_call.is_finished() || victim_calls < 3 {
        let started = Instant::now();
        let identity = call(app, &victim.workflow, &json!({})).await;
        assert_eq!(
            identity["instance"], victim.instance,
            "the victim's instance survived"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        victim_calls += 1;
    }
    let response = attack_call
        .await
        .expect("join")
        .expect("the attack call is answered");
    assert_eq!(response.status(), 200);
    serde_json::from_str(&response.text().await.expect("a body")).expect("a JSON body")
}

/// Whether the host's Landlock scopes signals and abstract sockets (ABI 6); the tests that need
/// it say so and pass without it, where `/system` reports the layer missing.
async fn scoping_is_active(app: &TestApp) -> bool {
    let layers = app.get_json("/system").await["isolation"]["layers"].clone();
    let active = layers
        .as_array()
        .and_then(|all| all.iter().find(|l| l["name"] == "landlock_scope"))
        .is_some_and(|layer| layer["active"] == true);
    if !active {
        eprintln!("skipped: Landlock scoping (ABI 6) is not active on this host: {layers}");
    }
    active
}

fn all_denied(outcomes: &Value) -> bool {
    outcomes
        .as_array()
        .is_some_and(|all| !all.is_empty() && all.iter().all(|o| o == "denied" || o == "gone"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_signal_another_workflows_instance_nor_its_forks_either_way() {
    let app = spawn_app().await;
    if !scoping_is_active(&app).await {
        return;
    }
    let first = deploy(&app, "assassin-a").await;
    let second = deploy(&app, "assassin-b").await;
    for (attacker, victim) in [(&first, &second), (&second, &first)] {
        let found =
            attack_while_the_victim_answers(&app, attacker, victim, json!({"attack": "assassin"}))
                .await;
        let targets = found["targets"].as_array().expect("targets");
        assert!(
            targets.contains(&json!(victim.instance)) && targets.len() >= 2,
            "the victim's instance and its parked fork were found: {found}"
        );
        assert!(all_denied(&found["outcomes"]), "{found}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_signal_the_server_nor_the_base_process() {
    let app = spawn_app().await;
    if !scoping_is_active(&app).await {
        return;
    }
    let attacker = deploy(&app, "regicide").await;
    let victim = deploy(&app, "subject").await;
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "regicide"}))
            .await;
    assert!(found["base"].as_u64().is_some(), "{found}");
    let outcomes = found["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 6, "{found}");
    assert!(
        outcomes.iter().all(|o| o == "denied"),
        "neither the server nor the base process is signalled: {found}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_read_another_workflows_proc_files() {
    let app = spawn_app().await;
    let attacker = deploy(&app, "snoop").await;
    let victim = deploy(&app, "watched").await;
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "snoop"})).await;
    assert_eq!(
        found,
        json!({"environ": "denied", "maps": "denied", "mem": "denied", "cwd": "denied"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_reach_another_workflows_abstract_unix_sockets() {
    let app = spawn_app().await;
    if !scoping_is_active(&app).await {
        return;
    }
    let attacker = deploy(&app, "knock").await;
    let victim = deploy(&app, "listener").await;
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "knock"})).await;
    assert_eq!(found, json!({"stream": "denied", "datagram": "denied"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_write_into_another_workflows_temporary_directory() {
    let app = spawn_app().await;
    let attacker = deploy(&app, "trespass").await;
    let victim = deploy(&app, "tenant").await;
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "trespass"}))
            .await;
    assert_eq!(found, json!({"write": "denied", "list": "denied"}));
    assert!(!std::path::Path::new(&victim.tmp)
        .join("planted.py")
        .exists());
}

/// What the kernel says of `pid` in `/proc/<pid>/{file}`, read by the test (root, outside the
/// sandbox).
fn proc_file(pid: u64, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).expect("the victim's instance runs")
}

/// The open-files and CPU-time lines of `/proc/<pid>/limits`.
fn limits_an_attacker_would_lower(pid: u64) -> Vec<String> {
    proc_file(pid, "limits")
        .lines()
        .filter(|line| line.starts_with("Max open files") || line.starts_with("Max cpu time"))
        .map(str::to_string)
        .collect()
}

/// The nice value of `/proc/<pid>/stat` (its 19th field; the command, 2nd, is in parentheses).
fn nice_value(pid: u64) -> String {
    let stat = proc_file(pid, "stat");
    let after_command = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    after_command
        .split_whitespace()
        .nth(16)
        .expect("a nice value")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_lower_another_workflows_resource_limits() {
    let app = spawn_app().await;
    let attacker = deploy(&app, "starve").await;
    let victim = deploy(&app, "starved").await;
    let before = limits_an_attacker_would_lower(victim.instance);
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "starve"}))
            .await;
    assert!(all_denied(&found["outcomes"]), "{found}");
    assert_eq!(limits_an_attacker_would_lower(victim.instance), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_renice_another_workflows_processes_nor_every_process_of_its_uid() {
    let app = spawn_app().await;
    let attacker = deploy(&app, "renice").await;
    let victim = deploy(&app, "reniced").await;
    let before = nice_value(victim.instance);
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "renice"}))
            .await;
    assert!(all_denied(&found["outcomes"]), "{found}");
    assert_eq!(nice_value(victim.instance), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_cannot_pin_another_workflows_processes_to_one_cpu() {
    let app = spawn_app().await;
    let attacker = deploy(&app, "pin").await;
    let victim = deploy(&app, "pinned").await;
    let allowed_cpus = |status: String| {
        status
            .lines()
            .find(|line| line.starts_with("Cpus_allowed_list:"))
            .map(str::to_string)
    };
    let before = allowed_cpus(proc_file(victim.instance, "status"));
    let found =
        attack_while_the_victim_answers(&app, &attacker, &victim, json!({"attack": "pin"})).await;
    assert!(all_denied(&found["outcomes"]), "{found}");
    assert_eq!(allowed_cpus(proc_file(victim.instance, "status")), before);
}
