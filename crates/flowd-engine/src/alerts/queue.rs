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

#[cfg(test)]
mod tests {
    use flowd_core::alerts::EndedExecution;
    use flowd_core::workflow::ExecutionStatus;

    use super::*;

    fn job() -> AlertJob {
        AlertJob {
            ended: EndedExecution {
                workflow_id: "w1".into(),
                workflow_name: "payroll".into(),
                execution_id: "e1".into(),
                status: ExecutionStatus::Error,
                trigger: "catch".into(),
                error_type: None,
                error_message: None,
                started_at: 0,
            },
            team_name: "acme".into(),
            policy: None,
            on_failure: Some("handler".into()),
        }
    }

    #[test]
    fn an_alert_finding_the_queue_full_is_dropped_and_counted() {
        let queue = AlertQueue::new(1);
        queue.push(job(), "acme", "payroll");
        queue.push(job(), "acme", "payroll");
        assert_eq!(queue.dropped(), 1);
        let mut receiver = queue.take_receiver().expect("the receiver");
        assert!(receiver.try_recv().is_ok());
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn the_receiver_is_taken_once() {
        let queue = AlertQueue::new(1);
        assert!(queue.take_receiver().is_some());
        assert!(queue.take_receiver().is_none());
    }
}
