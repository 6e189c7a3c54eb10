//! Base processes: one per environment in use — the runtime's own environment, and one per
//! requirement set a deployed version needs — each importing its libraries from its own
//! environment, so that a package preloaded for one never shadows the version another pins.
//! Started on first need, restarted when they die: each start bounded by the zygote's deadline,
//! tried a few times with a growing pause between tries, then reported failed (and tried again,
//! the same way, once [`RETRY_FAILED_AFTER`] has passed). What happened is logged and kept in a
//! [`BaseStatus`] the server shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::RuntimeError;
use crate::sync::lock;
use crate::zygote::{StartError, Zygote, ZygoteSpec};

/// Tries to start a base process before giving up (until [`RETRY_FAILED_AFTER`]).
pub const START_ATTEMPTS: u32 = 3;
/// The pause after the first failed try; doubled after each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How long a base process that failed every try is left failed: uses meanwhile fail at once.
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(30);
/// How often a base process is checked, and started again if it died.
const SUPERVISION_INTERVAL: Duration = Duration::from_secs(1);

/// Where a base process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseState {
    /// Not started yet (a requirement set's, before its first use).
    NotStarted,
    Up,
    /// It died (or never answered) and is being started again.
    Restarting,
    /// Every try failed: see the last error.
    Failed,
}

impl BaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            BaseState::NotStarted => "not_started",
            BaseState::Up => "up",
            BaseState::Restarting => "restarting",
            BaseState::Failed => "failed",
        }
    }
}

/// What a base process is doing, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseStatus {
    /// The environment's content address (`None`: the runtime's own environment).
    pub environment: Option<String>,
    pub state: BaseState,
    /// Its process id, while it is up.
    pub pid: Option<u32>,
    /// Tries to start it again after it first came up or first failed.
    pub restarts: u64,
    /// Why it last died or failed to start.
    pub last_error: Option<String>,
}

struct Health {
    state: BaseState,
    pid: Option<u32>,
    restarts: u64,
    last_error: Option<String>,
    failed_at: Option<Instant>,
}

pub struct BaseProcess {
    /// The environment's content address (`None`: the runtime's own environment).
    pub environment: Option<String>,
    spec: ZygoteSpec,
    process: tokio::sync::Mutex<Option<Zygote>>,
    health: Mutex<Health>,
    /// Its private memory when it last started, in KiB.
    memory_kb: AtomicU64,
}

impl BaseProcess {
    /// A base process that starts on first use.
    pub fn new(environment: Option<String>, spec: ZygoteSpec) -> BaseProcess {
        BaseProcess {
            environment,
            spec,
            process: tokio::sync::Mutex::new(None),
            health: Mutex::new(Health {
                state: BaseState::NotStarted,
                pid: None,
                restarts: 0,
                last_error: None,
                failed_at: None,
            }),
            memory_kb: AtomicU64::new(0),
        }
    }

    /// The runtime's own base process, started now (with its tries): it probes the isolation
    /// layers, which the runtime needs before it serves.
    pub async fn start_now(spec: ZygoteSpec) -> Result<BaseProcess, RuntimeError> {
        let base = BaseProcess::new(None, spec);
        {
            let mut guard = base.lock().await;
            base.live(&mut guard).await?;
        }
        Ok(base)
    }

    /// Exclusive use of the process: requests to a base process are answered one at a time.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Option<Zygote>> {
        self.process.lock().await
    }

    /// The running process behind `guard`, started (again) if it is not running: up to
    /// [`START_ATTEMPTS`] tries, each bounded, with a pause between them. Fails at once while a
    /// base process that failed every try waits for [`RETRY_FAILED_AFTER`] to pass.
    pub async fn live<'a>(
        &self,
        guard: &'a mut Option<Zygote>,
    ) -> Result<&'a mut Zygote, RuntimeError> {
        if !guard.as_mut().is_some_and(Zygote::is_alive) {
            if let Some(dead) = guard.take() {
                self.record_death(dead).await;
            }
            *guard = Some(self.start_with_retries().await?);
        }
        match guard.as_mut() {
            Some(zygote) => Ok(zygote),
            None => Err(self.failed_error()),
        }
    }

    async fn record_death(&self, dead: Zygote) {
        let pid = dead.pid();
        let unanswered = dead.is_out_of_step();
        let end = dead.end().await;
        let what = if unanswered {
            format!("it {end} (a request to it went unanswered)")
        } else {
            format!("it {end}")
        };
        tracing::warn!(
            environment = self.environment.as_deref().unwrap_or("(runtime)"),
            pid,
            "a Python base process is gone: {what}; starting another"
        );
        let mut health = lock(&self.health);
        health.state = BaseState::Restarting;
        health.pid = None;
        health.last_error = Some(what);
    }

    async fn start_with_retries(&self) -> Result<Zygote, RuntimeError> {
        let recently_failed = {
            let health = lock(&self.health);
            health.state == BaseState::Failed
                && health
                    .failed_at
                    .is_some_and(|at| at.elapsed() < RETRY_FAILED_AFTER)
        };
        if recently_failed {
            return Err(self.failed_error());
        }
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            {
                let mut health = lock(&self.health);
                if health.state != BaseState::NotStarted {
                    health.state = BaseState::Restarting;
                    health.restarts += 1;
                }
            }
            match Zygote::start(&self.spec).await {
                Ok(zygote) => {
                    self.record_up(&zygote);
                    return Ok(zygote);
                }
                Err(error) => {
                    tracing::warn!(
                        environment = self.environment.as_deref().unwrap_or("(runtime)"),
                        attempt,
                        of = START_ATTEMPTS,
                        "a Python base process did not start: {error}"
                    );
                    self.record_failed_try(&error, attempt == START_ATTEMPTS);
                    if attempt == START_ATTEMPTS {
                        return Err(RuntimeError::BaseProcess {
                            attempts: START_ATTEMPTS,
                            source: error,
                        });
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    fn record_up(&self, zygote: &Zygote) {
        let pid = zygote.pid();
        self.memory_kb
            .store(pid.map_or(0, crate::memory::private_kb), Ordering::Relaxed);
        let mut health = lock(&self.health);
        if health.state != BaseState::NotStarted {
            tracing::info!(
                environment = self.environment.as_deref().unwrap_or("(runtime)"),
                pid,
                "a Python base process is up again"
            );
        }
        health.state = BaseState::Up;
        health.pid = pid;
        health.failed_at = None;
    }

    fn record_failed_try(&self, error: &StartError, last: bool) {
        let mut health = lock(&self.health);
        health.last_error = Some(error.to_string());
        if last {
            health.state = BaseState::Failed;
            health.failed_at = Some(Instant::now());
        }
    }

    fn failed_error(&self) -> RuntimeError {
        RuntimeError::BaseProcessFailed {
            last_error: lock(&self.health)
                .last_error
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
        }
    }

    /// What the process is doing now. A process found dead here is reported as restarting:
    /// its next use (or the supervision of the runtime's own) starts another.
    pub fn status(&self) -> BaseStatus {
        let dead = self
            .process
            .try_lock()
            .is_ok_and(|mut guard| guard.as_mut().is_some_and(|zygote| !zygote.is_alive()));
        let health = lock(&self.health);
        BaseStatus {
            environment: self.environment.clone(),
            state: if dead && health.state == BaseState::Up {
                BaseState::Restarting
            } else {
                health.state
            },
            pid: health.pid.filter(|_| !dead),
            restarts: health.restarts,
            last_error: health.last_error.clone(),
        }
    }

    /// Private memory of the process when it started, in KiB (0 before it ever started).
    pub fn memory_kb(&self) -> u64 {
        self.memory_kb.load(Ordering::Relaxed)
    }
}

/// Keeps `base` running while it exists: checks it every [`SUPERVISION_INTERVAL`] and starts it
/// again when it died, so that a death is repaired before the next call needs the process.
pub fn supervise(base: &Arc<BaseProcess>) {
    let base: Weak<BaseProcess> = Arc::downgrade(base);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SUPERVISION_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(base) = base.upgrade() else {
                return;
            };
            // In use: whoever holds it restarts it if it must.
            let Ok(mut guard) = base.process.try_lock() else {
                continue;
            };
            if guard.as_mut().is_some_and(Zygote::is_alive) {
                continue;
            }
            // Logged and recorded by `live`.
            let _ = base.live(&mut guard).await;
        }
    });
}
