//! The runtimes of a server: one per interpreter found (or given), each with its environment and
//! base process; one of them is the default for workflows that do not pick one.

use std::path::PathBuf;
use std::sync::Arc;

use flowd_core::egress::EgressRule;

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
    /// What a workflow's `egress_allow` may open on this server, or why none can be kept to one
    /// workflow.
    workflow_egress: Result<Vec<EgressRule>, String>,
    /// How workflows' own exceptions are kept, when the server has a ceiling for them.
    workflow_egress_layer: Option<IsolationLayer>,
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
            let runtime = Runtime::start_in(
                config.clone(),
                interpreter,
                progress,
                egress.workflows.clone(),
            )
            .await?;
            all.push(Arc::new(runtime));
        }
        let default = default
            .and_then(|name| all.iter().position(|r| r.name() == name))
            .unwrap_or(0);
        let workflow_egress = workflow_egress_support(&config, &egress, &all);
        let workflow_egress_layer = (!config.egress.workflow_allow.is_empty())
            .then(|| workflow_egress_layer(&workflow_egress));
        Ok(Runtimes {
            all,
            default,
            egress,
            workflow_egress,
            workflow_egress_layer,
        })
    }

    /// One runtime as the only one (a local run, a test).
    pub fn single(runtime: Arc<Runtime>) -> Runtimes {
        Runtimes {
            all: vec![runtime],
            default: 0,
            egress: EgressLayer::not_installed(),
            workflow_egress: Ok(Vec::new()),
            workflow_egress_layer: None,
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

    /// The egress layer, and how workflows' own exceptions are kept when the server has a
    /// ceiling for them.
    pub fn egress_layers(&self) -> impl Iterator<Item = &IsolationLayer> {
        std::iter::once(&self.egress.layer).chain(self.workflow_egress_layer.as_ref())
    }

    /// What a workflow's `egress_allow` may open (`--egress-workflow-allow`, empty when not
    /// given), or why this server cannot keep an exception to one workflow.
    pub fn workflow_egress_ceiling(&self) -> Result<&[EgressRule], &str> {
        self.workflow_egress.as_deref().map_err(String::as_str)
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

/// The ceiling of workflows' own exceptions if every runtime can keep them to a workflow's
/// instances; else why not.
fn workflow_egress_support(
    config: &RuntimeConfig,
    egress: &EgressLayer,
    runtimes: &[Arc<Runtime>],
) -> Result<Vec<EgressRule>, String> {
    if config.egress.workflow_allow.is_empty() {
        return Ok(Vec::new());
    }
    if egress.workflows.is_none() {
        return Err(format!(
            "the egress layer is not in force: {}",
            egress.layer.detail
        ));
    }
    for runtime in runtimes {
        runtime
            .instance_egress()
            .map_err(|why| format!("{}: {why}", runtime.name()))?;
    }
    Ok(config.egress.workflow_allow.clone())
}

fn workflow_egress_layer(support: &Result<Vec<EgressRule>, String>) -> IsolationLayer {
    let (detail, active) = match support {
        Ok(ceiling) => (
            format!(
                "a workflow's egress_allow opens, for its own warm instances only (matched by their cgroup v2 group), destinations within {}",
                ceiling.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            true,
        ),
        Err(why) => (
            format!("workflows' own exceptions cannot be kept to one workflow ({why}): a workflow with egress_allow is refused, and one stored with it runs with it closed"),
            false,
        ),
    };
    IsolationLayer {
        name: "egress_per_workflow",
        detail,
        active,
    }
}
