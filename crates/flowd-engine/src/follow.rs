//! Following the changes other nodes make to a shared store: each workflow change they publish
//! drops this node's cached copy of that workflow (the next call reads it again) and wakes the
//! scheduler (its schedule may have changed); missed changes drop every cached workflow. No read
//! of the store happens per call: a node reads a workflow again only once it changed.

use std::sync::Arc;

use flowd_store::{ChangeFeed, StoreChange, WorkflowChange};
use tokio::sync::Notify;

use crate::hot::HotCache;

/// Follows `feed` on a task of its own until the store is closed (at once for a store no other
/// node writes).
pub(crate) fn spawn(mut feed: ChangeFeed, cache: Arc<HotCache>, schedule_changed: Arc<Notify>) {
    tokio::spawn(async move {
        while let Some(change) = feed.next().await {
            apply(&cache, &schedule_changed, change);
        }
    });
}

/// What this node does about one change.
fn apply(cache: &HotCache, schedule_changed: &Notify, change: StoreChange) {
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
