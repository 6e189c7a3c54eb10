//! Executions that run to their end whoever waits for them: a hook call's execution runs on a
//! task of its own, so a caller that hangs up changes nothing but who reads the answer — the
//! execution keeps its slot until it ends, stops at its time limit, and is recorded with its
//! settings change, and a warning says that the caller left.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flowd_core::workflow::Trigger;
use flowd_core::PyValue;
use flowd_store::ExecutionRecord;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::delivery::CallDetails;
use crate::executor::Report;
use crate::hot::HotWorkflow;
use crate::{Engine, EngineError};

/// The warning an execution's record gets when its caller left before the answer was sent.
pub const CALLER_LEFT_WARNING: &str =
    "the caller closed the connection before the response was sent";

/// Whether whoever waits for an execution's answer is still there.
#[derive(Clone, Default)]
pub struct Caller(Arc<AtomicBool>);

impl Caller {
    /// Nobody waits any more.
    fn leave(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn has_left(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// An execution running on its own task. Dropping it before its report is read (the caller hung
/// up) leaves the execution running; its record gets [`CALLER_LEFT_WARNING`].
pub struct Detached {
    task: Option<JoinHandle<Report>>,
    caller: Caller,
}

impl Engine {
    /// Starts running `hot` once, on a task of its own (admission included: a caller who leaves
    /// while the call waits for a slot does not take it out of the line). `held` is kept until the execution ends, whether or not its caller waits: what the
    /// execution's request still occupies (the server's reservation of memory for its body).
    pub fn execute_detached<Held: Send + 'static>(
        self: &Arc<Self>,
        hot: Arc<HotWorkflow>,
        trigger: Trigger,
        request: Option<PyValue>,
        held: Held,
    ) -> Detached {
        let call = CallDetails {
            request,
            ..CallDetails::default()
        };
        self.execute_call_detached(hot, trigger, call, held)
    }

    /// [`Engine::execute_detached`] for a hook call with its details (the request as received,
    /// the idempotency key it claimed).
    pub fn execute_call_detached<Held: Send + 'static>(
        self: &Arc<Self>,
        hot: Arc<HotWorkflow>,
        trigger: Trigger,
        call: CallDetails,
        held: Held,
    ) -> Detached {
        self.detach(move |engine, caller| async move {
            let report = engine.execute_for(hot, trigger, call, &caller).await;
            drop(held);
            report
        })
    }

    /// [`Engine::run_claimed`] on a task of its own.
    pub(crate) fn run_claimed_detached(
        self: &Arc<Self>,
        hot: Arc<HotWorkflow>,
        record: ExecutionRecord,
    ) -> Detached {
        self.detach(move |engine, caller| async move {
            engine.run_claimed_for(hot, record, &caller).await
        })
    }

    fn detach<F, Run>(self: &Arc<Self>, run: F) -> Detached
    where
        F: FnOnce(Arc<Engine>, Caller) -> Run,
        Run: Future<Output = Report> + Send + 'static,
    {
        let caller = Caller::default();
        // The caller's span (the HTTP request's) goes on with the execution's task.
        let task =
            tokio::spawn(run(self.clone(), caller.clone()).instrument(tracing::Span::current()));
        Detached {
            task: Some(task),
            caller,
        }
    }
}

impl Detached {
    /// Waits for the execution's end (its record committed, or its failure to commit reported).
    pub async fn report(mut self) -> Result<Report, EngineError> {
        let Some(task) = self.task.as_mut() else {
            return Err(stopped());
        };
        let report = match task.await {
            Ok(report) => report,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => return Err(stopped()),
        };
        self.task = None;
        Ok(report)
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.caller.leave();
        }
    }
}

/// The task was cancelled: only the runtime shutting down does that.
fn stopped() -> EngineError {
    EngineError::Runtime("the execution was stopped: the server is shutting down".into())
}
