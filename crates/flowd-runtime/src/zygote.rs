//! The base process of a runtime: started by flowd, it preloads libraries, parses code for
//! validation and forks warm instances. It never runs user code.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use flowd_core::PyValue;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::protocol::{self, message, read_frame, str_value, MessageExt, ProtocolError};
use crate::sandbox::SandboxUser;

/// Largest reply the zygote sends (replies are small).
const REPLY_LIMIT: usize = 1 << 20;

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
    /// The isolation layers the base process found: name → detail, `None` when missing.
    pub layers: Vec<(String, Option<String>)>,
}

impl Zygote {
    pub async fn start(spec: &ZygoteSpec) -> Result<Zygote, ProtocolError> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        ours.set_nonblocking(true)?;
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
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(target: "flowd::python", "{line}");
                }
            });
        }
        let mut control = UnixStream::from_std(ours)?;
        let hello = read_frame(&mut control, REPLY_LIMIT).await?;
        if hello.str_field("t") != Some("ready") {
            return Err(ProtocolError::Unexpected(format!("zygote said {hello:?}")));
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
            layers,
        })
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a request (with `fds` attached) and reads the reply.
    pub async fn request(
        &mut self,
        request: &PyValue,
        fds: &[OwnedFd],
    ) -> Result<PyValue, ProtocolError> {
        let raw: Vec<_> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        protocol::send_frame_with_fds(&self.control, request, &raw).await?;
        read_frame(&mut self.control, REPLY_LIMIT).await
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
