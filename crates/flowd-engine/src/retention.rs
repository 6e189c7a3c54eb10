//! Bounded history: a background task deletes the executions that fell out of their workflow's
//! retention (its own `retention`, else the server's `--retention-days` and
//! `--retention-per-workflow`), a small batch at a time with a pause in between, so that the
//! executions' commits never wait behind it for longer than one batch. `running` executions
//! are never deleted (the store's [`prune_executions`](flowd_store::Store::prune_executions)
//! leaves them).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flowd_core::retention::{RetentionCut, RetentionDefaults};
use flowd_store::{Store, WorkflowRetention};

use crate::clock::now_ms;
use crate::error::Result;

/// How the retention task works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// The server's limits, for workflows that set none of their own.
    pub defaults: RetentionDefaults,
    /// How long the task sleeps after a pass over every workflow.
    pub interval: Duration,
    /// Most executions deleted by one statement (one short transaction).
    pub batch: u32,
    /// The pause after each full batch, which lets the executions' commits in.
    pub pause: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            defaults: RetentionDefaults::default(),
            interval: Duration::from_secs(60),
            batch: 100,
            pause: Duration::from_millis(10),
        }
    }
}

/// The retention task of one store.
pub struct Pruner {
    store: Arc<dyn Store>,
    config: RetentionConfig,
}

impl Pruner {
    pub fn new(store: Arc<dyn Store>, config: RetentionConfig) -> Pruner {
        Pruner { store, config }
    }

    /// Passes over every workflow, then sleeps [`RetentionConfig::interval`], until `shutdown`
    /// completes. A failed pass is logged and tried again at the next one.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                outcome = self.pass() => match outcome {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "retention: deleted old executions"),
                    Err(error) => tracing::warn!(%error, "retention pass failed"),
                },
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }

    /// One pass: deletes, workflow by workflow, what falls out of its retention now. Answers
    /// how many executions it deleted.
    pub async fn pass(&self) -> Result<u64> {
        let mut deleted = 0;
        for workflow in self.store.workflow_retentions().await? {
            deleted += self.prune(&workflow).await?;
        }
        Ok(deleted)
    }

    async fn prune(&self, workflow: &WorkflowRetention) -> Result<u64> {
        let cut = RetentionCut::at(now_ms(), workflow.retention.as_ref(), self.config.defaults);
        let mut deleted = 0;
        loop {
            let batch = self
                .store
                .prune_executions(&workflow.workflow_id, &cut, self.config.batch)
                .await?;
            deleted += batch;
            if batch < u64::from(self.config.batch) {
                return Ok(deleted);
            }
            tokio::time::sleep(self.config.pause).await;
        }
    }
}
