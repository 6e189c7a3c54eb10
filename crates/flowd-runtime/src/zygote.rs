//! The base process of a runtime: started by flowd, it preloads libraries, parses code for
//! validation and forks warm instances. It never runs user code.
//!
//! Every wait on it has a deadline: its start (up to its `ready` hello) and each request.
//! A request that did not get its reply (timed out, or the caller gave up) leaves the process
//! out of step, so it counts as dead from then on and is started again on its next use.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use flowd_core::PyValue;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::protocol::{self, message, read_frame, str_value, MessageExt, ProtocolError};
use crate::sandbox::SandboxUser;

/// Largest reply the zygote sends (replies are small).
const REPLY_LIMIT: usize = 1 << 20;
/// How long a base process may take from its launch to its `ready` hello (importing the runner
/// and the preloaded modules: well under a second on an idle machine).
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a request (parse some code, fork an instance) may wait for its reply.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long to wait for the exit status of a base process that failed to start.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(2);

/// Why a base process did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("it could not be launched: {0}")]
    Launch(#[source] std::io::Error),
    #[error("it {0} before it was ready")]
    Died(ProcessEnd),
    #[error("it was not ready within {} s (killed)", .0.as_secs())]
    NoHello(Duration),
    #[error("its hello could not be read: {0}")]
    Hello(#[source] ProtocolError),
}

/// How a process flowd started ended, as its exit status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    Exited(i32),
    Signalled(i32),
    /// Its status could not be read.
    Unknown,
}

impl ProcessEnd {
    fn from_status(status: ExitStatus) -> ProcessEnd {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ProcessEnd::Exited(code),
            (None, Some(signal)) => ProcessEnd::Signalled(signal),
            (None, None) => ProcessEnd::Unknown,
        }
    }
}

impl std::fmt::Display for ProcessEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessEnd::Exited(code) => write!(f, "exited with code {code}"),
            ProcessEnd::Signalled(signal) => match nix::sys::signal::Signal::try_from(*signal) {
                Ok(name) => write!(f, "was killed by {}", name.as_str()),
                Err(_) => write!(f, "was killed by signal {signal}"),
            },
            ProcessEnd::Unknown => write!(f, "ended"),
        }
    }
}

/// How to start a zygote.
#[derive(Debug, Clone)]
pub struct ZygoteSpec {
    pub python: PathBuf,
    pub runner: PathBuf,
    pub preload: Vec<String>,
    pub user: Option<SandboxUser>,
    /// The egress proxy user code is told to use.
    pub proxy: Option<crate::egress::EgressProxy>,
}

pub struct Zygote {
    control: UnixStream,
    child: Child,
    /// A request was sent whose reply was not read: the next reply would be that one.
    out_of_step: bool,
    /// The isolation layers the base process found: name → detail, `None` when missing.
    pub layers: Vec<(String, Option<String>)>,
}

impl Zygote {
    /// Launches a base process and waits, up to [`START_DEADLINE`], for its hello.
    pub async fn start(spec: &ZygoteSpec) -> Result<Zygote, StartError> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(StartError::Launch)?;
        ours.set_nonblocking(true).map_err(StartError::Launch)?;
        let mut child = launch(spec, theirs).map_err(StartError::Launch)?;
        let mut control = UnixStream::from_std(ours).map_err(StartError::Launch)?;
        let hello =
            match tokio::time::timeout(START_DEADLINE, read_frame(&mut control, REPLY_LIMIT)).await
            {
                Ok(Ok(hello)) => hello,
                Ok(Err(ProtocolError::Closed)) => {
                    return Err(StartError::Died(ended(&mut child).await))
                }
                Ok(Err(error)) => return Err(StartError::Hello(error)),
                Err(_) => return Err(StartError::NoHello(START_DEADLINE)),
            };
        if hello.str_field("t") != Some("ready") {
            return Err(StartError::Hello(ProtocolError::Unexpected(format!(
                "zygote said {hello:?}"
            ))));
        }
        let layers = match hello.field("layers") {
            Some(PyValue::Dict(items)) => items
                .iter()
                .filter_map(|(name, detail)| {
                    Some((
                        name.as_str()?.to_string(),
                        detail.as_str().map(str::to_string),
                    ))
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Zygote {
            control,
            child,
            out_of_step: false,
            layers,
        })
    }

    /// Whether a request went unanswered (timed out, abandoned, or the process died meanwhile).
    pub fn is_out_of_step(&self) -> bool {
        self.out_of_step
    }

    /// How the process ended, once it has (killing it first if it still runs).
    pub async fn end(mut self) -> ProcessEnd {
        ended(&mut self.child).await
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process is still running and in step with flowd.
    pub fn is_alive(&mut self) -> bool {
        !self.out_of_step && matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a request (with `fds` attached) and reads the reply, within [`REQUEST_DEADLINE`].
    /// Unless the reply was read, the process is out of step from then on (see the module).
    pub async fn request(
        &mut self,
        request: &PyValue,
        fds: &[OwnedFd],
    ) -> Result<PyValue, ProtocolError> {
        let raw: Vec<_> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        self.out_of_step = true;
        let exchange = async {
            protocol::send_frame_with_fds(&self.control, request, &raw).await?;
            read_frame(&mut self.control, REPLY_LIMIT).await
        };
        let reply = tokio::time::timeout(REQUEST_DEADLINE, exchange)
            .await
            .map_err(|_| ProtocolError::NoReply(REQUEST_DEADLINE))??;
        self.out_of_step = false;
        Ok(reply)
    }

    /// Asks the zygote to parse `code` and check its `workflow` signature.
    pub async fn validate(
        &mut self,
        code: &str,
        arity: usize,
    ) -> Result<Result<(), crate::error::CodeError>, ProtocolError> {
        let reply = self
            .request(
                &message([
                    ("op", str_value("validate")),
                    ("code", str_value(code)),
                    ("arity", PyValue::Int(arity as i64)),
                ]),
                &[],
            )
            .await?;
        if matches!(reply.field("ok"), Some(PyValue::Bool(true))) {
            return Ok(Ok(()));
        }
        Ok(Err(crate::error::CodeError {
            message: reply
                .str_field("message")
                .unwrap_or("the code was refused")
                .to_string(),
            line: reply.int_field("line").unwrap_or(1).max(1) as u32,
            column: reply.int_field("column").unwrap_or(1).max(1) as u32,
        }))
    }
}

/// Starts the process, its end of the control socket as its stdin.
fn launch(spec: &ZygoteSpec, theirs: std::os::unix::net::UnixStream) -> std::io::Result<Child> {
    let config = serde_json::json!({ "preload": spec.preload }).to_string();
    let mut command = Command::new(&spec.python);
    command
        .args(["-I", "-B"])
        .arg(&spec.runner)
        .arg("zygote")
        .arg(config)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("PYTHONHASHSEED", "random")
        .current_dir("/")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(user) = &spec.user {
        command.uid(user.uid).gid(user.gid);
        command
            .env("HOME", "/nonexistent")
            .env("USER", "flowd-sandbox");
    }
    if let Some(proxy) = &spec.proxy {
        command.envs(proxy.environment());
    }
    let mut child = command.spawn()?;
    // `command` (dropped on return) holds a copy of the process's end of the socket: while it
    // is open, the process's death would not close the socket, and the wait for its hello would
    // not end.
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::warn!(target: "flowd::python", "{line}");
            }
        });
    }
    Ok(child)
}

/// How `child` ended: killed first if it still runs, its status awaited a bounded time.
async fn ended(child: &mut Child) -> ProcessEnd {
    if let Ok(Some(status)) = child.try_wait() {
        return ProcessEnd::from_status(status);
    }
    let _ = child.start_kill();
    match tokio::time::timeout(EXIT_STATUS_WAIT, child.wait()).await {
        Ok(Ok(status)) => ProcessEnd::from_status(status),
        _ => ProcessEnd::Unknown,
    }
}
