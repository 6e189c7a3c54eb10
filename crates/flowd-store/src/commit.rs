//! The ticket [`Store::submit`](crate::Store::submit) answers with: any backend completes it,
//! right away or later from wherever it commits (a thread, a task).

use tokio::sync::oneshot;

use crate::error::{Result, StoreError};

/// Waits for the commit of writes queued with [`Store::submit`](crate::Store::submit).
#[must_use = "a ticket does nothing unless awaited; drop it to not wait"]
pub struct CommitTicket {
    outcome: Outcome,
}

enum Outcome {
    Done(Result<()>),
    Pending(oneshot::Receiver<Result<()>>),
}

impl CommitTicket {
    /// A ticket for writes whose outcome is already known (committed inline, or refused).
    pub fn done(result: Result<()>) -> CommitTicket {
        CommitTicket {
            outcome: Outcome::Done(result),
        }
    }

    /// A ticket for writes committed later, and the handle that completes it.
    pub fn pending() -> (CommitCompleter, CommitTicket) {
        let (completer, outcome) = oneshot::channel();
        let ticket = CommitTicket {
            outcome: Outcome::Pending(outcome),
        };
        (CommitCompleter(completer), ticket)
    }

    /// Resolves once the writes are committed (all of them) or failed (none of them). A ticket
    /// whose completer was dropped unanswered resolves to [`StoreError::Stopped`].
    pub async fn wait(self) -> Result<()> {
        match self.outcome {
            Outcome::Done(result) => result,
            Outcome::Pending(outcome) => outcome.await.map_err(|_| StoreError::Stopped)?,
        }
    }
}

/// Completes a [`CommitTicket`] made with [`CommitTicket::pending`].
#[derive(Debug)]
pub struct CommitCompleter(oneshot::Sender<Result<()>>);

impl CommitCompleter {
    /// Answers the ticket; nothing happens if it was dropped (nobody waits any more).
    pub fn complete(self, result: Result<()>) {
        let _ = self.0.send(result);
    }
}
