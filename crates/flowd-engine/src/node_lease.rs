//! This process as a node of the store: registered at start (its id, address, host name, start
//! time and lease), its lease renewed about three times per lease by a task of its own, which also
//! reaps the nodes whose lease has expired (their `running` executions become `interrupted`, their
//! `max_concurrency` slots are freed). The store makes sure one node reaps each dead one. On a
//! store that is not shared (SQLite), registering ends the lease of the process before, so its
//! executions are interrupted at once.

use std::sync::Arc;
use std::time::Duration;

use flowd_store::{NodeRecord, ReapedNode, Store};
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::error::Result;

/// The shortest time between two renewals of the lease, whatever its length.
const MIN_RENEWAL_PERIOD: Duration = Duration::from_millis(100);
/// Where the node's host name is read from.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// What a node says about itself, and how long its lease lasts.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where it listens (`--listen`), recorded for operators.
    pub address: String,
    /// How long the node counts as alive after each renewal (`--node-lease-s`).
    pub lease: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            address: String::new(),
            lease: Duration::from_secs(30),
        }
    }
}

/// The registered node; its heartbeat stops when this is dropped or [`NodeLease::end`]ed.
pub(crate) struct NodeLease {
    store: Arc<dyn Store>,
    heartbeat: JoinHandle<()>,
}

impl NodeLease {
    /// Registers the node, reaps the dead ones (on a single node: the process before), and
    /// starts the heartbeat.
    pub(crate) async fn start(store: Arc<dyn Store>, config: NodeConfig) -> Result<NodeLease> {
        let record = Registration::new(store.node_id(), &config);
        store.register_node(&record.at(now_ms())).await?;
        report(store.node_id(), &store.reap_expired_nodes(now_ms()).await?);
        tracing::info!(
            node = store.node_id(),
            lease_s = config.lease.as_secs_f64(),
            "registered as a node of the store"
        );
        let heartbeat = tokio::spawn(heartbeat(store.clone(), record));
        Ok(NodeLease { store, heartbeat })
    }

    /// Stops the heartbeat and ends the lease now, reaping this node: what it still holds is
    /// released (for a graceful shutdown, once executions are done).
    pub(crate) async fn end(&self) {
        self.heartbeat.abort();
        let now = now_ms();
        let ended = match self.store.renew_node_lease(now - 1).await {
            Ok(_) => self
                .store
                .reap_expired_nodes(now)
                .await
                .map(|reaped| report(self.store.node_id(), &reaped)),
            Err(error) => Err(error),
        };
        if let Err(error) = ended {
            tracing::warn!(%error, "could not end this node's lease: other nodes will when it expires");
        }
    }
}

impl Drop for NodeLease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// The node's record but for its lease, which each registration sets from its time.
struct Registration {
    record: NodeRecord,
    lease: Duration,
}

impl Registration {
    fn new(node_id: &str, config: &NodeConfig) -> Registration {
        let now = now_ms();
        Registration {
            record: NodeRecord {
                id: node_id.to_string(),
                address: config.address.clone(),
                host: host_name(),
                started_at: now,
                lease_expires_at: now,
            },
            lease: config.lease,
        }
    }

    /// The lease's expiry for a renewal at `now`.
    fn expiry(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
    }

    fn at(&self, now: i64) -> NodeRecord {
        NodeRecord {
            lease_expires_at: self.expiry(now),
            ..self.record.clone()
        }
    }
}

/// Renews the lease every third of it and reaps dead nodes, until aborted. A node found reaped
/// (it could not renew in time: the store was out of reach) registers again; what it held was
/// released meanwhile.
async fn heartbeat(store: Arc<dyn Store>, registration: Registration) {
    let mut ticks = tokio::time::interval((registration.lease / 3).max(MIN_RENEWAL_PERIOD));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = now_ms();
        match store.renew_node_lease(registration.expiry(now)).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    node = store.node_id(),
                    "this node's lease had expired and another node reaped it (its running \
                     executions were marked interrupted, its slots freed); registering again"
                );
                if let Err(error) = store.register_node(&registration.at(now)).await {
                    tracing::warn!(%error, "could not register this node again; will retry");
                }
            }
            Err(error) => tracing::warn!(%error, "could not renew this node's lease; will retry"),
        }
        match store.reap_expired_nodes(now).await {
            Ok(reaped) => report(store.node_id(), &reaped),
            Err(error) => tracing::warn!(%error, "could not reap dead nodes; will retry"),
        }
    }
}

/// Logs what a reap did; `own` is this node's id (reaped when its lease is ended on purpose).
fn report(own: &str, reaped: &[ReapedNode]) {
    for node in reaped {
        match &node.node_id {
            Some(id) if id == own => tracing::info!(
                node = %id,
                interrupted = node.interrupted,
                released_slots = node.released_slots,
                released_async_calls = node.released_async_calls,
                "this node left the store's nodes"
            ),
            Some(id) => tracing::warn!(
                node = %id,
                interrupted = node.interrupted,
                released_slots = node.released_slots,
                released_async_calls = node.released_async_calls,
                "a node's lease expired: its running executions were marked interrupted, its \
                 asynchronous calls queued again"
            ),
            None => tracing::warn!(
                interrupted = node.interrupted,
                released_async_calls = node.released_async_calls,
                "executions left running (asynchronous calls left claimed) by no live node were \
                 marked interrupted (queued again)"
            ),
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string(HOSTNAME_FILE)
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}
