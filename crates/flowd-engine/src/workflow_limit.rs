//! A workflow's `max_concurrency`, enforced across every node of the store: the gate in this
//! process (its queue bounds the callers waiting here), then, when the store is shared by several
//! nodes, a slot in the store, held under this node's lease — a dead node's slots come back when
//! its lease expires. A store that is not shared has one node: its gate is the whole truth, and
//! no slot is taken in the store (no round trip). Workflows without a limit take neither.
//!
//! A slot the store refuses (all taken on other nodes) is asked for again every 5–15 ms (at
//! random, so nodes waiting at once take turns) until the caller's wait ends; a slot is given back
//! by a task of its own when its permit is dropped, after the execution's commit.

use std::sync::Arc;
use std::time::Duration;

use flowd_store::Store;
use rand::Rng;
use tokio::time::Instant;

use crate::admission::{Gate, Slot};
use crate::clock::now_ms;

/// The shortest and longest pause between two asks for a slot in the store.
const ASK_AGAIN_AFTER: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(15));
/// How often, and how far apart, giving a slot back is tried before it is left to the node's
/// lease (it is freed when the node stops or dies).
const RELEASE_TRIES: u32 = 10;
const RELEASE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The right to run one execution of a workflow under its limit; given back when dropped.
pub(crate) struct WorkflowPermit {
    _local: Slot,
    _shared: Option<StoreSlot>,
}

/// A workflow with a `max_concurrency`, as the executor admits its executions.
pub(crate) struct LimitedWorkflow<'a> {
    pub gate: &'a Gate,
    pub workflow_id: &'a str,
    pub limit: u32,
}

impl LimitedWorkflow<'_> {
    /// A permit for the execution `holder`, waiting at most until `deadline`; `None` when the
    /// wait is over first (or the gate's queue is full).
    pub(crate) async fn enter(
        &self,
        store: &Arc<dyn Store>,
        holder: &str,
        deadline: Instant,
    ) -> Option<WorkflowPermit> {
        let local = self.gate.enter().await?;
        if !store.is_shared() {
            return Some(WorkflowPermit {
                _local: local,
                _shared: None,
            });
        }
        let shared = self.take_store_slot(store, holder, deadline).await?;
        Some(WorkflowPermit {
            _local: local,
            _shared: Some(shared),
        })
    }

    async fn take_store_slot(
        &self,
        store: &Arc<dyn Store>,
        holder: &str,
        deadline: Instant,
    ) -> Option<StoreSlot> {
        let mut failures = 0u32;
        loop {
            match store
                .acquire_slot(self.workflow_id, self.limit, holder, now_ms())
                .await
            {
                Ok(true) => {
                    return Some(StoreSlot {
                        store: store.clone(),
                        workflow_id: self.workflow_id.to_string(),
                        holder: holder.to_string(),
                    })
                }
                Ok(false) => {}
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(
                            workflow = self.workflow_id,
                            %error,
                            "cannot take a max_concurrency slot in the store; trying again"
                        );
                    }
                }
            }
            let pause = rand::thread_rng().gen_range(ASK_AGAIN_AFTER.0..=ASK_AGAIN_AFTER.1);
            if Instant::now() + pause > deadline {
                return None;
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// A slot taken in the store, given back by a task when dropped.
struct StoreSlot {
    store: Arc<dyn Store>,
    workflow_id: String,
    holder: String,
}

impl Drop for StoreSlot {
    fn drop(&mut self) {
        let store = self.store.clone();
        let workflow_id = std::mem::take(&mut self.workflow_id);
        let holder = std::mem::take(&mut self.holder);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release(store, workflow_id, holder));
            }
            Err(_) => tracing::error!(
                workflow = %workflow_id,
                "a max_concurrency slot was dropped outside the runtime: it stays taken until \
                 this node stops"
            ),
        }
    }
}

async fn release(store: Arc<dyn Store>, workflow_id: String, holder: String) {
    for _ in 0..RELEASE_TRIES {
        match store.release_slot(&workflow_id, &holder).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(workflow = %workflow_id, %error, "cannot give a max_concurrency slot back; trying again");
                tokio::time::sleep(RELEASE_RETRY_AFTER).await;
            }
        }
    }
    tracing::error!(
        workflow = %workflow_id,
        "a max_concurrency slot could not be given back: it stays taken until this node stops"
    );
}
