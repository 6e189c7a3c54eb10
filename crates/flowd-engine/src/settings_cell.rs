//! The current settings of one workflow, kept in memory, and the commits of their changes.
//!
//! Executions read the settings from memory (changes not yet committed included) and change them
//! there before their commit, so the cell keeps two copies: `current`, what executions see, and
//! `stored`, what the store is known to hold. A change is applied to `current` at once, then
//! committed to the store after the changes applied before it, one at a time per workflow, so
//! that the store sees them in the order memory did. When a commit fails, `current` goes back to
//! `stored` and every change made on top of the lost one fails with it: its execution built on
//! settings that were never saved. Later executions see the stored settings again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use flowd_core::settings::{self, Settings, SettingsChange};
use flowd_store::{StoreError, StoreWrite};
use tokio::sync::oneshot;

use crate::writer::Writer;

/// Why a settings change was not saved (nothing of it was, in memory either).
#[derive(Debug, thiserror::Error)]
pub enum NotSaved {
    /// Its commit failed.
    #[error("{0}")]
    Store(#[source] StoreError),
    /// A change made before it, which it built on, could not be saved.
    #[error("a settings change it built on, made before it, could not be saved")]
    BasisLost,
}

impl NotSaved {
    /// Whether the store refused the change because its workflow no longer exists (deleted while
    /// the execution ran), rather than because it could not write.
    pub fn workflow_gone(&self) -> bool {
        matches!(self, NotSaved::Store(StoreError::NotFound(_)))
    }
}

/// The settings an execution starts from.
pub struct Snapshot {
    pub settings: Settings,
    /// Texts to mask in the execution's output.
    pub secrets: Vec<String>,
    /// Which generation of a cell's settings it was taken from: a change built on it is refused
    /// once a failed commit has rolled that generation back. `None`: read from the store.
    generation: Option<u64>,
}

impl Snapshot {
    /// A snapshot of `settings` as the store holds them (no cell keeps them ahead of it).
    pub fn stored(
        settings: Settings,
        secret_keys: &[String],
        env: &BTreeMap<String, String>,
    ) -> Snapshot {
        Snapshot {
            secrets: settings::secret_texts_with_env(&settings, env, secret_keys),
            settings,
            generation: None,
        }
    }
}

pub struct SettingsCell {
    state: Mutex<CellState>,
}

struct CellState {
    /// What executions see: `stored` with the changes being committed.
    current: Settings,
    /// What the store holds.
    stored: Settings,
    /// Moves on each time `current` is rolled back to `stored`.
    generation: u64,
    /// The outcome of the last change applied in this generation, for the next one to wait for.
    last: Option<oneshot::Receiver<bool>>,
}

impl SettingsCell {
    /// A cell holding `stored`, the settings the store has.
    pub fn new(stored: Settings) -> SettingsCell {
        SettingsCell {
            state: Mutex::new(CellState {
                current: stored.clone(),
                stored,
                generation: 0,
                last: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CellState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy for one execution, and the secret texts to mask in its output: the secret settings'
    /// values and those of the secret variables of `env`.
    pub fn snapshot(&self, secret_keys: &[String], env: &BTreeMap<String, String>) -> Snapshot {
        let state = self.lock();
        Snapshot {
            secrets: settings::secret_texts_with_env(&state.current, env, secret_keys),
            settings: state.current.clone(),
            generation: Some(state.generation),
        }
    }

    pub fn current(&self) -> Settings {
        self.lock().current.clone()
    }

    /// The current value of one key.
    pub fn value(&self, key: &str) -> Option<serde_json::Value> {
        self.lock().current.get(key).cloned()
    }

    /// Applies `change`, made by an execution from `basis`, and commits it with the writes
    /// `writes` builds from it. Refused at once, with nothing applied, when `basis` was rolled
    /// back meanwhile.
    pub fn commit_change(
        self: &Arc<Self>,
        writer: &Writer,
        basis: &Snapshot,
        change: SettingsChange,
        writes: impl FnOnce(&SettingsChange) -> Vec<StoreWrite>,
    ) -> Result<PendingCommit, NotSaved> {
        let mut state = self.lock();
        if basis.generation != Some(state.generation) {
            return Err(NotSaved::BasisLost);
        }
        change.apply_to(&mut state.current);
        let writes = writes(&change);
        Ok(self.chain(state, writer, change, writes))
    }

    /// Applies `change` to the current settings (not built on a snapshot: an API patch) and
    /// commits it with `writes`.
    pub fn commit_patch(
        self: &Arc<Self>,
        writer: &Writer,
        change: SettingsChange,
        writes: impl FnOnce(&SettingsChange) -> Vec<StoreWrite>,
    ) -> PendingCommit {
        let mut state = self.lock();
        change.apply_to(&mut state.current);
        let writes = writes(&change);
        self.chain(state, writer, change, writes)
    }

    /// Replaces the current settings with `new` and commits the change this makes, built by
    /// `writes`.
    pub fn commit_replacement(
        self: &Arc<Self>,
        writer: &Writer,
        new: Settings,
        writes: impl FnOnce(&SettingsChange) -> Vec<StoreWrite>,
    ) -> PendingCommit {
        let mut state = self.lock();
        let change = SettingsChange::between(&state.current, &new);
        state.current = new;
        let writes = writes(&change);
        self.chain(state, writer, change, writes)
    }

    /// Puts an applied change in line behind the one before it and commits it on a task of its
    /// own, which settles the cell whether or not anyone waits for it.
    fn chain(
        self: &Arc<Self>,
        mut state: MutexGuard<'_, CellState>,
        writer: &Writer,
        change: SettingsChange,
        writes: Vec<StoreWrite>,
    ) -> PendingCommit {
        let (outcome, next) = oneshot::channel();
        let before = state.last.replace(next);
        let generation = state.generation;
        drop(state);
        let link = Link {
            cell: self.clone(),
            change,
            generation,
            outcome: Some(outcome),
        };
        let writer = writer.clone();
        let task = tokio::spawn(async move {
            if let Some(before) = before {
                // A sender dropped unanswered is a change that was not saved.
                if before.await != Ok(true) {
                    link.fail();
                    return Err(NotSaved::BasisLost);
                }
            }
            match writer.commit(writes).await {
                Ok(()) => {
                    link.succeed();
                    Ok(())
                }
                Err(error) => {
                    link.fail();
                    Err(NotSaved::Store(error))
                }
            }
        });
        PendingCommit(task)
    }
}

/// A change applied in memory whose commit is under way.
pub struct PendingCommit(tokio::task::JoinHandle<Result<(), NotSaved>>);

impl PendingCommit {
    /// Waits for the commit. Dropping the commit does not stop it.
    pub async fn wait(self) -> Result<(), NotSaved> {
        match self.0.await {
            Ok(result) => result,
            // The task ends only by returning (the runtime shutting down aside).
            Err(_) => Err(NotSaved::Store(StoreError::Stopped)),
        }
    }
}

/// A change's place in its cell's line: settles the cell when its commit ends, and tells the
/// next change. Dropped unsettled (its task cancelled), it counts as failed.
struct Link {
    cell: Arc<SettingsCell>,
    change: SettingsChange,
    generation: u64,
    outcome: Option<oneshot::Sender<bool>>,
}

impl Link {
    fn succeed(mut self) {
        self.change.apply_to(&mut self.cell.lock().stored);
        if let Some(outcome) = self.outcome.take() {
            let _ = outcome.send(true);
        }
    }

    fn fail(mut self) {
        self.settle_failed();
    }

    /// Rolls memory back to the store, unless a change before this one already did (then this
    /// change went with it, and what was applied since belongs to a new generation).
    fn settle_failed(&mut self) {
        let Some(outcome) = self.outcome.take() else {
            return;
        };
        let mut state = self.cell.lock();
        if state.generation == self.generation {
            state.current = state.stored.clone();
            state.generation += 1;
            state.last = None;
        }
        drop(state);
        let _ = outcome.send(false);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.settle_failed();
    }
}

#[cfg(test)]
mod tests {
    use flowd_store::SqliteStore;
    use serde_json::json;

    use super::*;

    async fn writer() -> Writer {
        let store = SqliteStore::open_in_memory().await.expect("a store");
        Writer::new(Arc::new(store))
    }

    fn settings(value: serde_json::Value) -> Settings {
        match value {
            serde_json::Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn set_n(n: i64) -> SettingsChange {
        SettingsChange {
            changed: settings(json!({ "n": n })),
            ..SettingsChange::default()
        }
    }

    /// A write the store refuses: the workflow does not exist.
    fn refused_write(change: &SettingsChange) -> Vec<StoreWrite> {
        vec![StoreWrite::ApplySettingsChange {
            workflow_id: "no-such-workflow".into(),
            change: change.clone(),
        }]
    }

    fn commit(
        cell: &Arc<SettingsCell>,
        writer: &Writer,
        change: SettingsChange,
        writes: impl FnOnce(&SettingsChange) -> Vec<StoreWrite>,
    ) -> PendingCommit {
        let basis = cell.snapshot(&[], &BTreeMap::new());
        match cell.commit_change(writer, &basis, change, writes) {
            Ok(pending) => pending,
            Err(error) => panic!("refused at once: {error}"),
        }
    }

    #[tokio::test]
    async fn a_committed_change_is_what_memory_goes_back_to() {
        let writer = writer().await;
        let cell = Arc::new(SettingsCell::new(settings(json!({"n": 0}))));
        let saved = commit(&cell, &writer, set_n(1), |_| Vec::new());
        assert!(saved.wait().await.is_ok());

        let lost = commit(&cell, &writer, set_n(2), refused_write);
        assert!(matches!(lost.wait().await, Err(NotSaved::Store(_))));
        assert_eq!(cell.current(), settings(json!({"n": 1})));
    }

    #[tokio::test]
    async fn a_change_made_on_top_of_a_lost_one_is_lost_with_it_unsubmitted() {
        let writer = writer().await;
        let cell = Arc::new(SettingsCell::new(settings(json!({"n": 0}))));
        let first = commit(&cell, &writer, set_n(1), refused_write);
        // Would be committed on its own (it writes nothing).
        let second = commit(&cell, &writer, set_n(2), |_| Vec::new());

        assert!(matches!(first.wait().await, Err(NotSaved::Store(_))));
        assert!(matches!(second.wait().await, Err(NotSaved::BasisLost)));
        assert_eq!(cell.current(), settings(json!({"n": 0})));
    }

    #[tokio::test]
    async fn a_change_built_on_settings_rolled_back_since_is_refused_at_once() {
        let writer = writer().await;
        let cell = Arc::new(SettingsCell::new(settings(json!({"n": 0}))));
        let stale = cell.snapshot(&[], &BTreeMap::new());
        let lost = commit(&cell, &writer, set_n(1), refused_write);
        assert!(lost.wait().await.is_err());

        let refused = cell.commit_change(&writer, &stale, set_n(5), |_| Vec::new());
        assert!(matches!(refused, Err(NotSaved::BasisLost)));
        assert_eq!(cell.current(), settings(json!({"n": 0})));
    }

    #[tokio::test]
    async fn changes_after_a_rollback_are_committed_again() {
        let writer = writer().await;
        let cell = Arc::new(SettingsCell::new(settings(json!({"n": 0}))));
        let lost = commit(&cell, &writer, set_n(1), refused_write);
        assert!(lost.wait().await.is_err());

        let saved = commit(&cell, &writer, set_n(2), |_| Vec::new());
        assert!(saved.wait().await.is_ok());
        assert_eq!(cell.current(), settings(json!({"n": 2})));
    }
}
