//! The bounded queue between ended executions and the alerts' delivery task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use metrics::Label;
use tokio::sync::mpsc;

use super::{AlertJob, ALERTS_DROPPED};

pub struct AlertQueue {
    sender: mpsc::Sender<AlertJob>,
    /// Taken by the delivery task when it starts.
    receiver: Mutex<Option<mpsc::Receiver<AlertJob>>>,
    dropped: AtomicU64,
}

impl AlertQueue {
    pub fn new(capacity: usize) -> AlertQueue {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        AlertQueue {
            sender,
            receiver: Mutex::new(Some(receiver)),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `job` if there is room; else counts and logs it as dropped.
    pub(crate) fn push(&self, job: AlertJob, team: &str, workflow: &str) {
        if let Err(error) = self.sender.try_send(job) {
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "the alert queue is full",
                mpsc::error::TrySendError::Closed(_) => "no alert delivery task is running",
            };
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let labels = vec![
                Label::new("team", team.to_string()),
                Label::new("workflow", workflow.to_string()),
            ];
            metrics::counter!(ALERTS_DROPPED, labels).increment(1);
            tracing::warn!(team, workflow, "alert dropped: {reason}");
        }
    }

    /// The receiving end, once.
    pub(crate) fn take_receiver(&self) -> Option<mpsc::Receiver<AlertJob>> {
        self.receiver.lock().ok()?.take()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
