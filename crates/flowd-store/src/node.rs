//! The records of cluster membership: the nodes (flowd processes) using a store, each alive while
//! the lease it renews lasts, and what a node's death releases.

/// A flowd process using the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// [`Store::node_id`](crate::Store::node_id) of its store: a new id each time a node starts.
    pub id: String,
    /// Where it listens, as it was told (`--listen`).
    pub address: String,
    /// The name of its machine.
    pub host: String,
    /// Epoch ms.
    pub started_at: i64,
    /// Until when the node counts as alive unless it renews its lease (epoch ms).
    pub lease_expires_at: i64,
}

/// What reaping a dead node (its lease expired) undid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapedNode {
    /// The dead node; `None` for executions left `running` by no registered node (written
    /// before this store recorded nodes, or by a process that never registered).
    pub node_id: Option<String>,
    /// Its executions that were `running`, now `interrupted`.
    pub interrupted: u64,
    /// The `max_concurrency` slots it held, now free.
    pub released_slots: u64,
    /// The asynchronous calls it had claimed, now queued again.
    pub released_async_calls: u64,
}
