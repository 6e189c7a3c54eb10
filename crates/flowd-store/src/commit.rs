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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pending_ticket_resolves_to_what_its_completer_answers() {
        let (completer, ticket) = CommitTicket::pending();
        completer.complete(Err(StoreError::Conflict("taken".into())));
        assert!(matches!(ticket.wait().await, Err(StoreError::Conflict(_))));
    }

    #[tokio::test]
    async fn a_ticket_whose_completer_is_dropped_resolves_to_stopped() {
        let (completer, ticket) = CommitTicket::pending();
        drop(completer);
        assert!(matches!(ticket.wait().await, Err(StoreError::Stopped)));
    }

    #[tokio::test]
    async fn a_done_ticket_resolves_to_its_result() {
        assert!(CommitTicket::done(Ok(())).wait().await.is_ok());
    }
}
