//! Base processes: one per environment in use — the runtime's own environment, and one per
//! requirement set a deployed version needs — each importing its libraries from its own
//! environment, so that a package preloaded for one never shadows the version another pins.
//! Started on first need, restarted when they die.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::RuntimeError;
use crate::protocol::ProtocolError;
use crate::zygote::{Zygote, ZygoteSpec};

pub struct BaseProcess {
    /// The environment's content address (`None`: the runtime's own environment).
    pub environment: Option<String>,
    spec: ZygoteSpec,
    process: tokio::sync::Mutex<Option<Zygote>>,
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
            memory_kb: AtomicU64::new(0),
        }
    }

    /// One already started (the runtime's own, which probes the isolation layers at start).
    pub fn running(spec: ZygoteSpec, zygote: Zygote) -> BaseProcess {
        let memory_kb = AtomicU64::new(zygote.pid().map_or(0, crate::memory::private_kb));
        BaseProcess {
            environment: None,
            spec,
            process: tokio::sync::Mutex::new(Some(zygote)),
            memory_kb,
        }
    }

    /// Exclusive use of the process: requests to a base process are answered one at a time.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Option<Zygote>> {
        self.process.lock().await
    }

    /// The running process behind `guard`, started (again) if it is not running.
    pub async fn live<'a>(
        &self,
        guard: &'a mut Option<Zygote>,
    ) -> Result<&'a mut Zygote, RuntimeError> {
        let alive = guard.as_mut().is_some_and(Zygote::is_alive);
        if !alive {
            if guard.is_some() {
                tracing::warn!(environment = ?self.environment, "restarting a Python base process");
            }
            let zygote = Zygote::start(&self.spec)
                .await
                .map_err(RuntimeError::Zygote)?;
            self.memory_kb.store(
                zygote.pid().map_or(0, crate::memory::private_kb),
                Ordering::Relaxed,
            );
            *guard = Some(zygote);
        }
        guard
            .as_mut()
            .ok_or(RuntimeError::Zygote(ProtocolError::Closed))
    }

    /// Private memory of the process when it started, in KiB (0 before it ever started).
    pub fn memory_kb(&self) -> u64 {
        self.memory_kb.load(Ordering::Relaxed)
    }
}
