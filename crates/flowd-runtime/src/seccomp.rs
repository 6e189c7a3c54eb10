//! The seccomp filter each warm instance installs on itself before its module's top level runs
//! (the runner's `apply_seccomp`); the instance's execution forks and their children inherit it.
//!
//! The filter is compiled here with `seccompiler` and handed to the instance as BPF programs
//! (raw `struct sock_filter` arrays, native byte order), which the runner installs in order with
//! `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, …)` after `PR_SET_NO_NEW_PRIVS`. The kernel runs
//! every installed program on each system call and keeps the strictest answer:
//!
//! 1. **the deny list**: a system call made through any ABI other than x86_64's kills the
//!    process — another architecture (`int 0x80` is i386) through seccompiler's arch check, the
//!    x32 ABI (same arch value, numbers with [`X32_SYSCALL_BIT`]) through a guard in front of
//!    seccompiler's program, which does not look at that bit (rust-vmm/seccompiler#74); the calls
//!    of [`DENIED`] fail with EPERM, and so does a `clone` asking for any of [`NAMESPACE_FLAGS`],
//!    and a call of [`SELF_ONLY`] aimed at any process but the caller (see there);
//! 2. **`clone3` fails with ENOSYS**: its flags are in a struct that seccomp cannot read, and
//!    ENOSYS makes the C library fall back to `clone`, which the deny list checks. A second
//!    program because a seccompiler filter has one action for all its matches.
//!
//! The filter is defined for x86_64 only; elsewhere `InstanceFilter::native` reports that and the
//! layer is listed as missing.

// On other architectures only that error is compiled, not the builders it would use.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use seccompiler::{
    sock_filter, BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp,
    SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// What no workflow needs: tracing other processes, namespaces and mounts, kernel keyrings,
/// BPF, io_uring, modules, kexec, reboot, swap, clocks, perf, userfaultfd, and reading or writing
/// other processes' memory. These fail with EPERM.
#[cfg(target_arch = "x86_64")]
pub const DENIED: &[i64] = {
    use nix::libc::*;
    &[
        SYS_ptrace,
        SYS_mount,
        SYS_umount2,
        SYS_unshare,
        SYS_setns,
        SYS_bpf,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_kexec_load,
        SYS_kexec_file_load,
        SYS_reboot,
        SYS_swapon,
        SYS_swapoff,
        SYS_pivot_root,
        SYS_chroot,
        SYS_acct,
        SYS_settimeofday,
        SYS_clock_settime,
        SYS_clock_adjtime,
        SYS_adjtimex,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_open_by_handle_at,
        SYS_name_to_handle_at,
        SYS_quotactl,
        SYS_lookup_dcookie,
        SYS_fsopen,
        SYS_fsmount,
        SYS_move_mount,
        SYS_open_tree,
        SYS_mount_setattr,
        SYS_personality,
        SYS_vhangup,
    ]
};

/// A system call that can act on processes other than the caller's: their resource limits, nice
/// value, scheduling, I/O priority. Every workflow runs as the same uid, so the kernel's owner
/// check lets a workflow change these for another workflow's processes (and with `PRIO_USER`, for
/// all of them at once), and Landlock does not cover them. Under the filter such a call must name
/// the caller the way every C library call that acts on itself does: `target` is 0 (not even the
/// caller's own pid, which a filter shared by an instance and its forks cannot know), and `kind`,
/// when the call has one (`setpriority`'s `which`), is the value for one process. Anything else
/// fails with EPERM.
#[derive(Debug, Clone, Copy)]
pub struct SelfOnly {
    pub number: i64,
    /// The argument naming the process (or group, or user) acted on.
    pub target: u8,
    /// The argument saying what `target` is, and the value meaning "one process".
    pub kind: Option<(u8, u32)>,
}

impl SelfOnly {
    /// A call whose first argument is the pid it acts on.
    const fn pid_first(number: i64) -> SelfOnly {
        SelfOnly {
            number,
            target: 0,
            kind: None,
        }
    }

    /// A call taking `which` then `who`, where `which == one_process` makes `who` a pid.
    const fn which_who(number: i64, one_process: u32) -> SelfOnly {
        SelfOnly {
            number,
            target: 1,
            kind: Some((0, one_process)),
        }
    }
}

/// `ioprio_set`'s `which` for one process (linux/ioprio.h; not in the libc crate).
pub const IOPRIO_WHO_PROCESS: u32 = 1;

/// The calls allowed only on the caller itself. Reading (`getpriority`, `sched_getaffinity`, …)
/// stays allowed; `setrlimit`, `getrlimit` and `nice` in the C library are `prlimit64` and
/// `setpriority` with a target of 0.
#[cfg(target_arch = "x86_64")]
pub const SELF_ONLY: &[SelfOnly] = {
    use nix::libc::*;
    &[
        SelfOnly::pid_first(SYS_prlimit64),
        SelfOnly::which_who(SYS_setpriority, PRIO_PROCESS),
        SelfOnly::pid_first(SYS_sched_setaffinity),
        SelfOnly::pid_first(SYS_sched_setscheduler),
        SelfOnly::pid_first(SYS_sched_setparam),
        SelfOnly::pid_first(SYS_sched_setattr),
        SelfOnly::which_who(SYS_ioprio_set, IOPRIO_WHO_PROCESS),
    ]
};

/// The `clone` flags that create namespaces: a `clone` with any of them fails with EPERM.
/// (`CLONE_NEWTIME` shares its bit with the exit signal's field in `clone`, where no valid signal
/// sets it, so refusing it there costs nothing.)
pub const NAMESPACE_FLAGS: &[u64] = {
    use nix::libc::*;
    &[
        CLONE_NEWUSER as u64,
        CLONE_NEWNS as u64,
        CLONE_NEWPID as u64,
        CLONE_NEWNET as u64,
        CLONE_NEWUTS as u64,
        CLONE_NEWIPC as u64,
        CLONE_NEWCGROUP as u64,
        CLONE_NEWTIME as u64,
    ]
};

/// Set in the number of every system call made through the x32 ABI.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[cfg(not(target_arch = "x86_64"))]
    #[error("no seccomp filter is defined for the {0} architecture")]
    UnsupportedArch(&'static str),
    #[error("seccompiler refused the {program} program")]
    Compile {
        program: &'static str,
        #[source]
        source: BackendError,
    },
}

impl SeccompError {
    /// The error and its causes on one line, for the layer's detail.
    pub fn detail(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }
}

/// The compiled filter: its programs, in the order they are installed.
#[derive(Debug, Clone)]
pub struct InstanceFilter {
    programs: Vec<BpfProgram>,
}

impl InstanceFilter {
    /// The filter for the architecture flowd runs on.
    #[cfg(target_arch = "x86_64")]
    pub fn native() -> Result<InstanceFilter, SeccompError> {
        use nix::libc::{SYS_clone, SYS_clone3};
        let arch = TargetArch::x86_64;
        let mut deny_list = x32_guard();
        deny_list.extend(compile(
            "deny list",
            deny_list_rules(DENIED, SYS_clone, SELF_ONLY),
            SeccompAction::Errno(EPERM),
            arch,
        )?);
        let clone3 = compile(
            "clone3",
            Ok(BTreeMap::from([(SYS_clone3, Vec::new())])),
            SeccompAction::Errno(ENOSYS),
            arch,
        )?;
        Ok(InstanceFilter {
            programs: vec![deny_list, clone3],
        })
    }

    /// The filter for the architecture flowd runs on: none is defined for this one.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn native() -> Result<InstanceFilter, SeccompError> {
        Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
    }

    /// The programs as the runner receives them: each an array of `struct sock_filter`.
    pub fn programs_as_bytes(&self) -> Vec<Vec<u8>> {
        self.programs
            .iter()
            .map(|program| to_bytes(program))
            .collect()
    }

    /// The layer's detail in `GET /api/v1/system` and the start-up log.
    pub fn describe(&self) -> String {
        "a deny list (ptrace, mount, namespaces, bpf, keyrings, io_uring, modules, …), clone \
         with namespace flags, and prlimit, setpriority, sched_set*, ioprio_set aimed at another \
         process than the caller get EPERM; clone3 gets ENOSYS so that libc uses clone; a system \
         call through another ABI (i386, x32) kills the process"
            .to_string()
    }
}

const EPERM: u32 = nix::libc::EPERM as u32;
const ENOSYS: u32 = nix::libc::ENOSYS as u32;

/// `denied` unconditionally, `clone` when its flags ask for a namespace, and each of `self_only`
/// when it names another process than the caller.
fn deny_list_rules(
    denied: &[i64],
    clone: i64,
    self_only: &[SelfOnly],
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied.iter().map(|&number| (number, Vec::new())).collect();
    // One rule per flag (a system call's rules match when any of them does). `clone` reads its
    // flags from the low 32 bits of its first argument.
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(clone, clone_rules);
    for call in self_only {
        rules.insert(call.number, self_only_rules(call)?);
    }
    Ok(rules)
}

/// One rule per argument that must hold a given value, matching when it does not. The arguments
/// are C `int`s, which the kernel reads from the low 32 bits of their registers: so does the
/// comparison.
fn self_only_rules(call: &SelfOnly) -> Result<Vec<SeccompRule>, BackendError> {
    std::iter::once((call.target, 0))
        .chain(call.kind)
        .map(|(argument, required)| {
            let condition = SeccompCondition::new(
                argument,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Ne,
                u64::from(required),
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect()
}

/// Compiles `rules` into a program that answers `on_match` to them and allows everything else;
/// a system call of another architecture kills the process.
fn compile(
    program: &'static str,
    rules: Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError>,
    on_match: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    rules
        .and_then(|rules| SeccompFilter::new(rules, SeccompAction::Allow, on_match, arch))
        .and_then(BpfProgram::try_from)
        .map_err(|source| SeccompError::Compile { program, source })
}

/// Kills the process on a system call number with [`X32_SYSCALL_BIT`]. Goes before
/// seccompiler's program, which loads what it needs itself and jumps only forward within itself.
fn x32_guard() -> BpfProgram {
    // linux/bpf_common.h: a word loaded from seccomp_data, a jump on >= a constant, a return.
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    // offsetof(struct seccomp_data, nr)
    const SECCOMP_DATA_NR_OFFSET: u32 = 0;
    let instruction = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        instruction(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR_OFFSET),
        instruction(BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT),
        instruction(BPF_RET_K, 0, 0, nix::libc::SECCOMP_RET_KILL_PROCESS),
    ]
}

fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    bytes
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use nix::libc::{self, c_long};
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    /// The child's exit code when the filter could not be installed.
    const NOT_INSTALLED: i32 = 100;

    /// Runs `probe` in a forked child that installed the filter as the runner does (from the
    /// bytes it receives); the child exits with what `probe` returns: 0 for a call that
    /// succeeded, else its errno.
    fn under_filter(probe: fn() -> i32) -> WaitStatus {
        let programs: Vec<Vec<libc::sock_filter>> = InstanceFilter::native()
            .expect("the filter compiles")
            .programs_as_bytes()
            .iter()
            .map(|bytes| from_bytes(bytes))
            .collect();
        let fprogs: Vec<libc::sock_fprog> = programs
            .iter()
            .map(|program| libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            })
            .collect();
        // SAFETY: the child only makes system calls (no allocation, no locks) and exits.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = if install(&fprogs) {
                    probe()
                } else {
                    NOT_INSTALLED
                };
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Vec<libc::sock_filter> {
        bytes
            .chunks_exact(8)
            .map(|chunk| libc::sock_filter {
                code: u16::from_ne_bytes([chunk[0], chunk[1]]),
                jt: chunk[2],
                jf: chunk[3],
                k: u32::from_ne_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
            })
            .collect()
    }

    fn install(fprogs: &[libc::sock_fprog]) -> bool {
        // SAFETY: plain system calls; each fprog points into a program alive in the caller.
        unsafe {
            // No controlling terminal: `vhangup` in the deny list test could not touch the
            // terminal the tests run in even if the filter let it through.
            libc::setsid();
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return false;
            }
            fprogs.iter().all(|fprog| {
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    fprog as *const libc::sock_fprog,
                ) == 0
            })
        }
    }

    fn outcome(result: c_long) -> i32 {
        if result < 0 {
            nix::errno::Errno::last_raw()
        } else {
            0
        }
    }

    fn exited(code: i32) -> impl Fn(WaitStatus) -> bool {
        move |status| matches!(status, WaitStatus::Exited(_, c) if c == code)
    }

    fn killed_by_sigsys(status: WaitStatus) -> bool {
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _))
    }

    /// `clone` as `fork` does, with `flags` added; the new child exits at once and is reaped.
    fn clone_with(flags: c_long) -> i32 {
        // SAFETY: no new stack: the child continues on a copy of this one, like fork.
        let pid =
            unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as c_long, 0, 0, 0, 0) };
        match pid {
            0 => unsafe { libc::_exit(0) },
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: waits for the child just made.
                unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
                0
            }
            _ => nix::errno::Errno::last_raw(),
        }
    }

    #[test]
    fn ordinary_system_calls_are_allowed() {
        let status = under_filter(|| outcome(unsafe { libc::syscall(libc::SYS_getppid) }));
        assert!(exited(0)(status), "{status:?}");
    }

    #[test]
    fn every_denied_call_fails_with_eperm() {
        let status = under_filter(|| {
            for &number in DENIED {
                // SAFETY: null arguments; under the filter the call never reaches the kernel.
                let result = unsafe { libc::syscall(number, 0, 0, 0, 0, 0, 0) };
                if outcome(result) != libc::EPERM {
                    return 200;
                }
            }
            libc::EPERM
        });
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn unshare_fails_with_eperm() {
        let status = under_filter(|| outcome(unsafe { libc::syscall(libc::SYS_unshare, 0) }));
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn clone_with_a_new_user_namespace_fails_with_eperm() {
        let status = under_filter(|| clone_with(libc::CLONE_NEWUSER as c_long));
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn clone_with_any_namespace_flag_fails_with_eperm() {
        let status = under_filter(|| {
            let refused = NAMESPACE_FLAGS
                .iter()
                .all(|&flag| clone_with(flag as c_long) == libc::EPERM);
            if refused {
                libc::EPERM
            } else {
                200
            }
        });
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn clone_as_fork_does_still_works() {
        let status = under_filter(|| clone_with(0));
        assert!(exited(0)(status), "{status:?}");
    }

    /// A uid no process runs as: `PRIO_USER` aimed at it changes nothing even unfiltered.
    const UNUSED_UID: c_long = 0x7fff_fff0;
    /// `ioprio_set`'s `which` for a process group and for a user (linux/ioprio.h).
    const IOPRIO_WHO_PGRP: c_long = 2;
    const IOPRIO_WHO_USER: c_long = 3;
    /// `ioprio_set`'s best-effort class at level 4 (linux/ioprio.h).
    const IOPRIO_BEST_EFFORT_4: c_long = (2 << 13) | 4;

    /// The first non-zero of `outcomes`, as `200 + its index`; 0 when all are 0.
    fn all_succeeded(outcomes: &[i32]) -> i32 {
        outcomes
            .iter()
            .position(|&outcome| outcome != 0)
            .map_or(0, |index| 200 + index as i32)
    }

    /// The first of `outcomes` that is not EPERM, as `200 + its index`; EPERM when all are.
    fn all_refused(outcomes: &[i32]) -> i32 {
        outcomes
            .iter()
            .position(|&outcome| outcome != libc::EPERM)
            .map_or(libc::EPERM, |index| 200 + index as i32)
    }

    #[test]
    fn every_self_only_call_naming_a_pid_fails_with_eperm_even_the_callers_own() {
        let status = under_filter(|| {
            // Unfiltered these act on the caller, or fail on the null arguments, but not with
            // EPERM.
            let own = c_long::from(unsafe { libc::getpid() });
            for (index, call) in SELF_ONLY.iter().enumerate() {
                let mut args: [c_long; 4] = [0; 4];
                args[usize::from(call.target)] = own;
                if let Some((argument, one_process)) = call.kind {
                    args[usize::from(argument)] = c_long::from(one_process);
                }
                // SAFETY: null pointers; under the filter the call never reaches the kernel.
                let result =
                    unsafe { libc::syscall(call.number, args[0], args[1], args[2], args[3]) };
                if outcome(result) != libc::EPERM {
                    return 200 + index as i32;
                }
            }
            libc::EPERM
        });
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn reading_another_processs_resource_limits_fails_with_eperm() {
        let status = under_filter(|| {
            let mut old = libc::rlimit64 {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: reads the parent's (the test process's) limit into `old`, sets nothing.
            outcome(unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    libc::getppid(),
                    libc::RLIMIT_NOFILE,
                    std::ptr::null::<libc::rlimit64>(),
                    &mut old as *mut libc::rlimit64,
                )
            })
        });
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn setpriority_and_ioprio_set_on_a_process_group_or_a_user_fail_with_eperm() {
        let status = under_filter(|| {
            // SAFETY: plain system calls. Unfiltered they would act on the caller's own group
            // (after `setsid`, the caller alone, at its current values) or on a uid without
            // processes.
            let outcomes = unsafe {
                let nice = libc::getpriority(libc::PRIO_PGRP, 0);
                [
                    outcome(libc::setpriority(libc::PRIO_PGRP, 0, nice).into()),
                    outcome(libc::setpriority(libc::PRIO_USER, UNUSED_UID as u32, nice).into()),
                    outcome(libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PGRP, 0, 0)),
                    outcome(libc::syscall(
                        libc::SYS_ioprio_set,
                        IOPRIO_WHO_USER,
                        UNUSED_UID,
                        0,
                    )),
                ]
            };
            all_refused(&outcomes)
        });
        assert!(exited(libc::EPERM)(status), "{status:?}");
    }

    #[test]
    fn the_caller_may_still_set_its_own_resource_limits() {
        let status = under_filter(|| {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: reads the caller's limit, then lowers its soft limit (the C library calls
            // prlimit64 on pid 0).
            let outcomes = unsafe {
                let read = outcome(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit).into());
                limit.rlim_cur = limit.rlim_cur.min(64);
                [
                    read,
                    outcome(libc::setrlimit(libc::RLIMIT_NOFILE, &limit).into()),
                ]
            };
            all_succeeded(&outcomes)
        });
        assert!(exited(0)(status), "{status:?}");
    }

    #[test]
    fn the_caller_may_still_raise_its_own_nice_value() {
        let status = under_filter(|| {
            // SAFETY: plain system calls on the caller (`nice` is setpriority on pid 0).
            unsafe {
                let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
                outcome(libc::setpriority(libc::PRIO_PROCESS, 0, nice + 1).into())
            }
        });
        assert!(exited(0)(status), "{status:?}");
    }

    #[test]
    fn the_caller_may_still_set_its_own_cpu_affinity_scheduling_and_io_priority() {
        let status = under_filter(|| {
            // SAFETY: plain system calls on the caller, with its current affinity, the default
            // policy and an unprivileged I/O class.
            let outcomes = unsafe {
                let mut cpus: libc::cpu_set_t = std::mem::zeroed();
                let size = std::mem::size_of::<libc::cpu_set_t>();
                let param = libc::sched_param { sched_priority: 0 };
                [
                    outcome(libc::sched_getaffinity(0, size, &mut cpus).into()),
                    outcome(libc::sched_setaffinity(0, size, &cpus).into()),
                    outcome(libc::sched_setscheduler(0, libc::SCHED_OTHER, &param).into()),
                    outcome(libc::sched_setparam(0, &param).into()),
                    outcome(libc::syscall(
                        libc::SYS_ioprio_set,
                        c_long::from(IOPRIO_WHO_PROCESS),
                        0,
                        IOPRIO_BEST_EFFORT_4,
                    )),
                ]
            };
            all_succeeded(&outcomes)
        });
        assert!(exited(0)(status), "{status:?}");
    }

    #[test]
    fn clone3_fails_with_enosys() {
        // Unfiltered, a null clone_args of size 0 is EINVAL.
        let status = under_filter(|| outcome(unsafe { libc::syscall(libc::SYS_clone3, 0, 0) }));
        assert!(exited(libc::ENOSYS)(status), "{status:?}");
    }

    #[test]
    fn a_system_call_through_the_x32_abi_kills_the_process() {
        const X32_GETPID: c_long = X32_SYSCALL_BIT as c_long | libc::SYS_getpid;
        let status = under_filter(|| outcome(unsafe { libc::syscall(X32_GETPID) }));
        assert!(killed_by_sigsys(status), "{status:?}");
    }

    #[test]
    fn a_system_call_through_int_0x80_kills_the_process() {
        let status = under_filter(|| {
            const I386_GETPID: u32 = 20;
            let result: u32;
            // SAFETY: the i386 getpid takes no arguments and touches no memory.
            unsafe {
                std::arch::asm!("int 0x80", inlateout("eax") I386_GETPID => result);
            }
            if (result as i32) < 0 {
                -(result as i32)
            } else {
                0
            }
        });
        assert!(killed_by_sigsys(status), "{status:?}");
    }
}
