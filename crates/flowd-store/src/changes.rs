//! What other nodes changed in a shared store, as a stream every node follows: the workflows
//! created, changed or deleted, so that a node drops what it keeps in memory about them.
//!
//! A backend publishes a change in the transaction that makes it, so a node that hears of it
//! reads the change back. A node may miss changes (its connection to the store was lost, or it
//! fell too far behind): it is then told [`StoreChange::Missed`] and must forget everything it
//! keeps about every workflow. A store only one node uses (SQLite) publishes nothing: that node
//! forgets what it changed itself.

use tokio::sync::broadcast;

/// How many changes a follower may fall behind before it is told it missed some.
const FEED_CAPACITY: usize = 1024;

/// What happened to a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowChange {
    Created,
    /// Its record, or the outcome of one of its versions, changed (a deploy, a PATCH, a pause or
    /// resume, a token rotation).
    Updated,
    Deleted,
}

impl WorkflowChange {
    /// The word a change is published with.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowChange::Created => "created",
            WorkflowChange::Updated => "updated",
            WorkflowChange::Deleted => "deleted",
        }
    }

    fn parse(word: &str) -> Option<WorkflowChange> {
        match word {
            "created" => Some(WorkflowChange::Created),
            "updated" => Some(WorkflowChange::Updated),
            "deleted" => Some(WorkflowChange::Deleted),
            _ => None,
        }
    }
}

/// One event of a [`ChangeFeed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    Workflow {
        workflow_id: String,
        change: WorkflowChange,
    },
    /// An API key was changed or revoked, or a team renamed or deleted: the keys (and team
    /// names) a node keeps in memory may be stale.
    Access,
    /// Changes may have been missed: whatever is kept about any workflow may be stale.
    Missed,
}

impl StoreChange {
    /// A change as published (`"<change> <workflow id>"`); anything else reads as
    /// [`StoreChange::Missed`], so that a follower never keeps what it cannot tell is current.
    pub fn parse(published: &str) -> StoreChange {
        if published.starts_with("access ") {
            return StoreChange::Access;
        }
        let parsed = published.split_once(' ').and_then(|(word, workflow_id)| {
            Some(StoreChange::Workflow {
                change: WorkflowChange::parse(word)?,
                workflow_id: workflow_id.to_string(),
            })
        });
        parsed.unwrap_or(StoreChange::Missed)
    }
}

/// The changes of a store from the moment it was asked for, in the order they were committed.
pub struct ChangeFeed {
    changes: broadcast::Receiver<StoreChange>,
}

impl ChangeFeed {
    /// The feed of a store no other node writes to: it ends at once.
    pub fn none() -> ChangeFeed {
        ChangePublisher::new().feed()
    }

    /// The next change; `None` once the store is closed. Falling more than a thousand changes
    /// behind reads as [`StoreChange::Missed`].
    pub async fn next(&mut self) -> Option<StoreChange> {
        match self.changes.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(StoreChange::Missed),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The sending side of a store's feeds, shared by its clones.
#[derive(Clone)]
pub(crate) struct ChangePublisher {
    sender: broadcast::Sender<StoreChange>,
}

impl ChangePublisher {
    pub(crate) fn new() -> ChangePublisher {
        ChangePublisher {
            sender: broadcast::channel(FEED_CAPACITY).0,
        }
    }

    /// A feed of the changes published from now on.
    pub(crate) fn feed(&self) -> ChangeFeed {
        ChangeFeed {
            changes: self.sender.subscribe(),
        }
    }

    /// Hands `change` to every feed (none may be following: nothing to do then).
    pub(crate) fn publish(&self, change: StoreChange) {
        let _ = self.sender.send(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_change_reads_back_as_itself() {
        for change in [
            WorkflowChange::Created,
            WorkflowChange::Updated,
            WorkflowChange::Deleted,
        ] {
            assert_eq!(
                StoreChange::parse(&format!("{} wf-1", change.as_str())),
                StoreChange::Workflow {
                    workflow_id: "wf-1".into(),
                    change
                }
            );
        }
    }

    #[test]
    fn a_key_or_team_change_reads_as_an_access_change() {
        assert_eq!(StoreChange::parse("access key-1"), StoreChange::Access);
        assert_eq!(StoreChange::parse("access team-1"), StoreChange::Access);
    }

    #[test]
    fn an_unknown_payload_reads_as_missed_changes() {
        assert_eq!(StoreChange::parse("renamed wf-1"), StoreChange::Missed);
        assert_eq!(StoreChange::parse("updated"), StoreChange::Missed);
    }

    #[tokio::test]
    async fn a_follower_too_far_behind_is_told_it_missed_changes() {
        let publisher = ChangePublisher::new();
        let mut feed = publisher.feed();
        for n in 0..=FEED_CAPACITY {
            publisher.publish(StoreChange::parse(&format!("updated wf-{n}")));
        }
        assert_eq!(feed.next().await, Some(StoreChange::Missed));
    }

    #[tokio::test]
    async fn the_feed_of_a_store_no_other_node_writes_to_ends_at_once() {
        assert_eq!(ChangeFeed::none().next().await, None);
    }

    #[tokio::test]
    async fn a_feed_ends_when_its_store_is_gone() {
        let publisher = ChangePublisher::new();
        let mut feed = publisher.feed();
        drop(publisher);
        assert_eq!(feed.next().await, None);
    }
}
