//! Following the changes other nodes make to a shared store: each workflow change they publish
//! drops this node's cached copy of that workflow (the next call reads it again) and wakes the
//! scheduler (its schedule may have changed); missed changes drop every cached workflow. No read
//! of the store happens per call: a node reads a workflow again only once it changed.

use std::sync::Arc;

use flowd_store::{ChangeFeed, StoreChange, WorkflowChange};
use tokio::sync::Notify;

use crate::hot::HotCache;

/// What a node keeps about workflows that a change can make stale.
trait Cached {
    /// Drops what is kept about one workflow (it is read again on its next use).
    fn invalidate(&self, workflow_id: &str);
    /// Forgets a deleted workflow.
    fn remove(&self, workflow_id: &str);
    /// Drops what is kept about every workflow.
    fn invalidate_all(&self);
}

impl Cached for HotCache {
    fn invalidate(&self, workflow_id: &str) {
        HotCache::invalidate(self, workflow_id);
    }

    fn remove(&self, workflow_id: &str) {
        HotCache::remove(self, workflow_id);
    }

    fn invalidate_all(&self) {
        HotCache::invalidate_all(self);
    }
}

/// Follows `feed` on a task of its own until the store is closed (at once for a store no other
/// node writes).
pub(crate) fn spawn(mut feed: ChangeFeed, cache: Arc<HotCache>, schedule_changed: Arc<Notify>) {
    tokio::spawn(async move {
        while let Some(change) = feed.next().await {
            apply(&*cache, &schedule_changed, change);
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
        StoreChange::Missed => {
            tracing::info!(
                "changes by other nodes may have been missed: every cached workflow is read again"
            );
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
            (vec!["invalidate all".to_string()], true)
        );
    }
}
