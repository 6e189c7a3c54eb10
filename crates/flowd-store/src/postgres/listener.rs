//! The node's ear on the database: one connection of its own that `LISTEN`s on
//! `flowd_changes` (published by the schema's triggers, see migration 0004) and hands each change
//! to the store's feeds. When the connection is lost the changes meanwhile are lost with it, so
//! once it listens again it tells the feeds [`StoreChange::Missed`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::changes::{ChangePublisher, StoreChange};
use crate::Result;

/// The channel the schema publishes changes on.
const CHANNEL: &str = "flowd_changes";
/// The listening connection's `application_name`, to tell it apart in `pg_stat_activity`.
pub(crate) const APPLICATION_NAME: &str = "flowd-listener";
/// How long to wait before listening again after a failure, at first…
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// …and at most, doubling in between.
const LAST_RETRY: Duration = Duration::from_secs(5);

/// The task listening for changes; stops with it.
pub(super) struct ChangeListener {
    task: JoinHandle<()>,
}

impl ChangeListener {
    /// Listens on the database at `url` before answering (a change committed once this returns
    /// is heard), then hands the changes to `publisher` on a task of its own.
    pub(super) async fn start(url: &str, publisher: ChangePublisher) -> Result<ChangeListener> {
        let options = PgConnectOptions::from_str(url)?.application_name(APPLICATION_NAME);
        let listener = listen(&options).await?;
        let task = tokio::spawn(follow(options, listener, publisher));
        Ok(ChangeListener { task })
    }

    pub(super) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ChangeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener on its own connection (a pool of one, which reconnects it), listening.
async fn listen(options: &PgConnectOptions) -> Result<PgListener> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(super::ACQUIRE_TIMEOUT)
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection is replaced by `follow`, which publishes the loss once it listens again.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Publishes what `listener` hears until its connection is lost, then listens again (with
/// backoff while the database cannot be reached) and publishes that changes were missed.
async fn follow(options: PgConnectOptions, mut listener: PgListener, publisher: ChangePublisher) {
    loop {
        hear(&mut listener, &publisher).await;
        listener = relisten(&options).await;
        publisher.publish(StoreChange::Missed);
    }
}

/// Publishes each change heard, until the connection is lost.
async fn hear(listener: &mut PgListener, publisher: &ChangePublisher) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => publisher.publish(StoreChange::parse(notification.payload())),
            Ok(None) => {
                tracing::warn!("the connection listening for other nodes' changes was lost");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "listening for other nodes' changes failed");
                return;
            }
        }
    }
}

/// A new listener, trying until the database answers.
async fn relisten(options: &PgConnectOptions) -> PgListener {
    let mut wait = FIRST_RETRY;
    loop {
        match listen(options).await {
            Ok(listener) => {
                tracing::info!("listening for other nodes' changes again");
                return listener;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "cannot listen for other nodes' changes");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LAST_RETRY);
            }
        }
    }
}
