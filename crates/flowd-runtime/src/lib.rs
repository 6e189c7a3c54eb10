//! flowd's Python side: provisioning the interpreter environments, the warm fork-server, the wire
//! protocol and the sandbox.
//!
//! A [`Runtime`] is one interpreter (named like `python3.11`) with its environment and its base
//! process; [`Runtimes`] are those of a server, one of them the default. [`Runtime::execute`] runs
//! a [`Job`] in a fork of the warm instance of the job's code version, starting that instance on
//! first use, and answers an [`Execution`] whose [`Outcome`] says how it ended.
//!
//! The parts, from the top down:
//!
//! - [`runtime`](Runtime): starting a runtime, warming versions up, running jobs, stopping what
//!   is no longer used; configured by a [`RuntimeConfig`] (`config`), failing with the types of
//!   `error`.
//! - `slots`: one slot per code version holding its warm instances, the reservations pre-warms
//!   make for coming runs, and the LRU that stops instances beyond the runtime's capacity.
//! - `job` and `outcome`: what is run, and how it ended.
//! - `bases` (one base process per environment in use, each a `zygote`; started, restarted and
//!   supervised with deadlines and bounded tries, their state a [`BaseStatus`]), `instance` (a warm
//!   instance and its execution forks), `instance_egress` (an instance's own egress exceptions,
//!   opened for its cgroup), [`protocol`] (the framed wire format), `memory` (what a process holds
//!   alone).
//! - [`provision`] (finding interpreters, building the runtime's own environment) and [`envs`]
//!   (the environments of requirement sets, built with uv or pip).
//! - [`sandbox`] (the user code runs as, where it may write), `cgroup` (an instance's cgroup:
//!   its processes, memory and CPU weight), `layers` (which isolation layers are in force on
//!   this host), [`egress`] (where user code may connect: an nftables table on the sandbox's
//!   uid).
//!
//! `python/flowd_runner.py` is the Python half of every process.

// No unsafe code in the library; its unit tests may fork a child to try a sandbox layer in.
#![cfg_attr(not(test), forbid(unsafe_code))]

mod bases;
mod cgroup;
mod config;
pub mod egress;
pub mod envs;
mod error;
mod instance;
mod instance_egress;
mod job;
mod layers;
mod memory;
pub mod metrics;
mod outcome;
pub mod protocol;
pub mod provision;
mod runtime;
mod runtimes;
pub mod sandbox;
mod seccomp;
mod settings_error;
mod slots;
mod sync;
mod zygote;

pub use bases::{BaseState, BaseStatus};
pub use config::{OutputLimits, RuntimeConfig, SandboxLimits};
pub use egress::{EgressConfig, EgressProxy};
pub use envs::{BuildConfig, BuildError, BuildFailure, BuiltEnv, InstallerChoice};
pub use error::{CodeError, RuntimeError, WarmUpFailure};
pub use instance::{ChildExit, InitFailure};
pub use job::{Job, JobContext};
pub use layers::IsolationLayer;
pub use outcome::{ErrorInfo, Execution, Outcome};
pub use provision::{Environment, Interpreter, ProvisionError};
pub use runtime::{Runtime, CALL_MARGIN};
pub use runtimes::Runtimes;
pub use sandbox::SandboxUser;
pub use settings_error::SettingsError;
pub use slots::Reservation;
