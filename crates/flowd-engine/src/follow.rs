//! Following the changes other nodes make to a shared store: each workflow change they publish
//! drops this node's cached copy of that workflow (the next call reads it again) and wakes the
//! scheduler (its schedule may have changed); a key or team change drops the API keys and team
//! names kept in memory; missed changes drop all of it. No read of the store happens per call: a
//! node reads a workflow or a key again only once it changed.

use std::sync::Arc;

use flowd_store::{ChangeFeed, StoreChange, WorkflowChange};
use tokio::sync::Notify;

use crate::hot::HotCache;
use crate::key_cache::KeyCache;

/// What a node keeps about workflows that a change can make stale.
trait Cached {
    /// Drops what is kept about one workflow (it is read again on its next use).
    fn invalidate(&self, workflow_id: &str);
    /// Forgets a deleted workflow.
    fn remove(&self, workflow_id: &str);
    /// Drops what is kept about every workflow (team names included).
    fn invalidate_all(&self);
    /// Drops the API keys looked up (they are looked up again on their next use).
    fn invalidate_keys(&self);
}

/// What this node keeps in memory: workflows and team names, and API keys.
struct NodeMemory {
    workflows: Arc<HotCache>,
    keys: Arc<KeyCache>,
}

impl Cached for NodeMemory {
    fn invalidate(&self, workflow_id: &str) {
        self.workflows.invalidate(workflow_id);
    }

    fn remove(&self, workflow_id: &str) {
        self.workflows.remove(workflow_id);
    }

    fn invalidate_all(&self) {
        self.workflows.invalidate_all();
    }

    fn invalidate_keys(&self) {
        self.keys.invalidate();
    }
}

/// Follows `feed` on a task of its own until the store is closed (at once for a store no other
/// node writes).
pub(crate) fn spawn(
    mut feed: ChangeFeed,
    workflows: Arc<HotCache>,
    keys: Arc<KeyCache>,
    schedule_changed: Arc<Notify>,
) {
    let memory = NodeMemory { workflows, keys };
    tokio::spawn(async move {
        while let Some(change) = feed.next().await {
            apply(&memory, &schedule_changed, change);
        }
    });
}

/// What this node does about one change.
fn apply(cache: &impl Cached, schedule_changed: &Notify, change: StoreChange) {
    match change {
        StoreChange::Workflow {
            workflow_id,
            change: WorkflowChange::Deleted,
        } => cache.remove(&workflow_id),
        StoreChange::Workflow {
            workflow_id,
            change: WorkflowChange::Created | WorkflowChange::Updated,
        } => cache.invalidate(&workflow_id),
        StoreChange::Access => {
            // A team renamed changes its hook URLs: the workflows' names are read again too.
            cache.invalidate_keys();
            cache.invalidate_all();
        }
        StoreChange::Missed => {
            tracing::info!(
                "changes by other nodes may have been missed: every cached workflow and key is read again"
            );
            cache.invalidate_keys();
            cache.invalidate_all();
        }
    }
    schedule_changed.notify_one();
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Records what it was asked to drop.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn record(&self, what: String) {
            self.0.lock().unwrap().push(what);
        }

        fn asked(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Cached for Recorder {
        fn invalidate(&self, workflow_id: &str) {
            self.record(format!("invalidate {workflow_id}"));
        }

        fn remove(&self, workflow_id: &str) {
            self.record(format!("remove {workflow_id}"));
        }

        fn invalidate_all(&self) {
            self.record("invalidate all".into());
        }

        fn invalidate_keys(&self) {
            self.record("invalidate keys".into());
        }
    }

    fn workflow(change: WorkflowChange) -> StoreChange {
        StoreChange::Workflow {
            workflow_id: "wf".into(),
            change,
        }
    }

    /// Applies `change`, answering what the cache was asked and whether the scheduler was woken.
    async fn applied(change: StoreChange) -> (Vec<String>, bool) {
        let cache = Recorder::default();
        let schedule_changed = Notify::new();
        apply(&cache, &schedule_changed, change);
        let woken = tokio::time::timeout(Duration::ZERO, schedule_changed.notified())
            .await
            .is_ok();
        (cache.asked(), woken)
    }

    #[tokio::test]
    async fn a_created_or_updated_workflow_is_read_again_and_the_scheduler_woken() {
        for change in [WorkflowChange::Created, WorkflowChange::Updated] {
            assert_eq!(
                applied(workflow(change)).await,
                (vec!["invalidate wf".to_string()], true)
            );
        }
    }

    #[tokio::test]
    async fn a_deleted_workflow_is_forgotten_and_the_scheduler_woken() {
        assert_eq!(
            applied(workflow(WorkflowChange::Deleted)).await,
            (vec!["remove wf".to_string()], true)
        );
    }

    #[tokio::test]
    async fn missed_changes_drop_every_cached_workflow_and_wake_the_scheduler() {
        assert_eq!(
            applied(StoreChange::Missed).await,
            (
                vec!["invalidate keys".to_string(), "invalidate all".to_string()],
                true
            )
        );
    }

    #[tokio::test]
    async fn a_key_or_team_change_drops_the_keys_and_team_names_kept() {
        assert_eq!(
            applied(StoreChange::Access).await,
            (
                vec!["invalidate keys".to_string(), "invalidate all".to_string()],
                true
            )
        );
    }
}
