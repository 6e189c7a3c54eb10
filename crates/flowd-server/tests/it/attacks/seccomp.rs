//! The seccomp layer, attacked as a workflow would: system calls through another ABI, namespaces
//! through `clone`, `clone3`; and what must keep working under it. Each attack runs while the
//! bystander keeps answering (see [`attack`]).

use serde_json::json;

use super::{attack_simple, probe};
use crate::support::*;

/// Python defining `libc` (the C library through ctypes, errno kept) and `call(number, *args)`:
/// a raw system call answered as `'<result>/<errno>'`.
const RAW_SYSCALL: &str = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\ndef call(number, *args):\n    ctypes.set_errno(0)\n    rc = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])\n    if rc == 0 and os.getpid() != pid:\n        os._exit(0)\n    return '%d/%d' % (min(rc, 0), ctypes.get_errno())\npid = os.getpid()";

fn killed_by_sigsys(record: &serde_json::Value) -> bool {
    record["status"] == "killed"
        && record["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("SIGSYS"))
}

#[tokio::test(flavor = "multi_thread")]
async fn unshare_through_int_0x80_kills_the_execution() {
    let app = spawn_app().await;
    // push rbx; mov eax, 310 (i386 unshare); xor ebx, ebx (flags 0); int 0x80; pop rbx; ret
    let body = "import ctypes, mmap\ncode = bytes([0x53, 0xb8, 0x36, 0x01, 0x00, 0x00, 0x31, 0xdb, 0xcd, 0x80, 0x5b, 0xc3])\nmemory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\nmemory.write(code)\nunshare = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(memory)))\nreturn {'status_code': 200, 'body': 'unshare returned %d' % unshare()}";
    let outcome = attack_simple(&app, "int80", body).await;
    assert_eq!(outcome.status, 500, "{}", outcome.body);
    assert!(killed_by_sigsys(&outcome.record), "{}", outcome.record);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_system_call_through_the_x32_abi_kills_the_execution() {
    let app = spawn_app().await;
    let body = format!("{RAW_SYSCALL}\nX32 = 0x40000000\nUNSHARE = 272\nreturn {{'status_code': 200, 'body': call(X32 | UNSHARE, 0)}}");
    let outcome = attack_simple(&app, "x32", &body).await;
    assert_eq!(outcome.status, 500, "{}", outcome.body);
    assert!(killed_by_sigsys(&outcome.record), "{}", outcome.record);
}

#[tokio::test(flavor = "multi_thread")]
async fn clone_into_a_new_user_namespace_fails_with_eperm() {
    let app = spawn_app().await;
    let code = format!("{RAW_SYSCALL}\nCLONE = 56\nCLONE_NEWUSER, SIGCHLD = 0x10000000, 17\nresult = call(CLONE, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)");
    let found = probe(&app, "userns", &code, json!({})).await;
    assert_eq!(found, "-1/1", "EPERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn clone3_fails_with_enosys() {
    let app = spawn_app().await;
    let code = format!("{RAW_SYSCALL}\nCLONE3 = 435\nresult = call(CLONE3, 0, 0)");
    let found = probe(&app, "clone3", &code, json!({})).await;
    assert_eq!(found, "-1/38", "ENOSYS");
}

#[tokio::test(flavor = "multi_thread")]
async fn threads_subprocesses_and_forks_still_work() {
    let app = spawn_app().await;
    let code = "import os, subprocess, threading\nfrom concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor(4) as pool:\n    squares = sorted(pool.map(lambda n: n * n, range(8)))\nseen = []\nthread = threading.Thread(target=seen.append, args=('thread',))\nthread.start()\nthread.join()\ntrue = subprocess.run(['/bin/true']).returncode\nchild = os.fork()\nif child == 0:\n    os._exit(7)\n_, status = os.waitpid(child, 0)\nresult = '%s %s %d %d' % (squares[-1], seen[0], true, os.waitstatus_to_exitcode(status))";
    let found = probe(&app, "workers", code, json!({})).await;
    assert_eq!(found, "49 thread 0 7");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_may_still_lower_its_own_limits_and_priority_and_so_may_its_subprocesses() {
    let app = spawn_app().await;
    let code = "import os, resource, subprocess\nsoft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\nresource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))\nniced = os.nice(1)\nos.sched_setaffinity(0, os.sched_getaffinity(0))\nchild = subprocess.run(['/bin/sh', '-c', 'ulimit -n 32 && nice -n 1 /bin/true'])\nresult = '%d %d %d' % (resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 64, niced >= 1, child.returncode)";
    let found = probe(&app, "self-limits", code, json!({})).await;
    assert_eq!(found, "1 1 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seccomp_layer_is_reported_active() {
    let app = spawn_app().await;
    let layers = app.get_json("/system").await["isolation"]["layers"].clone();
    let seccomp = layers
        .as_array()
        .and_then(|layers| layers.iter().find(|layer| layer["name"] == "seccomp"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(seccomp["active"], true, "{seccomp}");
    let detail = seccomp["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("another ABI"), "{detail}");
}
