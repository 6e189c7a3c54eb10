//! The runtimes of a server: one per interpreter found (or given), each with its environment and
//! base process; one of them is the default for workflows that do not pick one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::RuntimeConfig;
use crate::egress::EgressLayer;
use crate::error::RuntimeError;
use crate::layers::IsolationLayer;
use crate::provision;
use crate::runtime::Runtime;
use crate::sandbox;

pub struct Runtimes {
    /// In the order found: the system's `python3` first.
    all: Vec<Arc<Runtime>>,
    default: usize,
    /// The egress policy of the sandbox's uid, shared by every runtime; removed when dropped.
    egress: EgressLayer,
}

impl Runtimes {
    /// Finds the interpreters (`pythons`, or every usable one on the machine when empty),
    /// provisions each one's environment and starts its base process. `default` names the
    /// runtime of workflows that pick none (`python3.11`); the first found when `None`.
    pub async fn start(
        config: RuntimeConfig,
        pythons: &[PathBuf],
        default: Option<&str>,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Runtimes, RuntimeError> {
        let user = sandbox::choose_user(config.sandbox_user);
        let interpreters = provision::find_interpreters(pythons, user.is_some()).await?;
        if let Some(name) = default {
            if !interpreters.iter().any(|i| i.runtime_name == name) {
                return Err(RuntimeError::UnknownDefault {
                    name: name.to_string(),
                    available: interpreters
                        .iter()
                        .map(|i| format!("{} ({})", i.runtime_name, i.executable.display()))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let egress = EgressLayer::install(&config.egress, user)?;
        let mut all = Vec::new();
        for interpreter in interpreters {
            let runtime = Runtime::start_with(config.clone(), interpreter, progress).await?;
            all.push(Arc::new(runtime));
        }
        let default = default
            .and_then(|name| all.iter().position(|r| r.name() == name))
            .unwrap_or(0);
        Ok(Runtimes {
            all,
            default,
            egress,
        })
    }

    /// One runtime as the only one (a local run, a test).
    pub fn single(runtime: Arc<Runtime>) -> Runtimes {
        Runtimes {
            all: vec![runtime],
            default: 0,
            egress: EgressLayer::not_installed(),
        }
    }

    /// The runtime named `name` (`python3.11`), if this server has it.
    pub fn get(&self, name: &str) -> Option<&Arc<Runtime>> {
        self.all.iter().find(|runtime| runtime.name() == name)
    }

    /// The egress layer: in force, or why not.
    pub fn egress_layer(&self) -> &IsolationLayer {
        &self.egress.layer
    }

    pub fn default_runtime(&self) -> &Arc<Runtime> {
        &self.all[self.default]
    }

    /// Every runtime, the default first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Runtime>> {
        std::iter::once(self.default_runtime()).chain(
            self.all
                .iter()
                .enumerate()
                .filter(move |(i, _)| *i != self.default)
                .map(|(_, runtime)| runtime),
        )
    }

    /// `python3.11, python3.12`
    pub fn names(&self) -> String {
        self.all()
            .map(|runtime| runtime.name().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
