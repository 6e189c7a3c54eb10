//! A request body that fails when the client sends nothing for too long: a per-read idle
//! timeout, so a body trickled in slowly still arrives, and one that stalls is given up on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The client sent no part of the body for [`IdleTimeoutBody`]'s whole idle time.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing of the request body for {0:?}")]
pub struct BodyReadTimeout(pub Duration);

impl BodyReadTimeout {
    /// Whether `error` (an error read from a request body, with its source chain) is this one.
    pub fn is_cause_of(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(error);
        while let Some(error) = cause {
            if error.is::<BodyReadTimeout>() {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

/// `inner`, failing with [`BodyReadTimeout`] when a read waits longer than `idle`.
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    /// Whether `deadline` runs for the read being waited on (it is set when a read starts).
    waiting: bool,
}

impl<B> IdleTimeoutBody<B> {
    pub fn new(inner: B, idle: Duration) -> IdleTimeoutBody<B> {
        IdleTimeoutBody {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
        }
    }
}

/// A request body as the router reads it, with the idle timeout.
pub fn with_idle_timeout<B>(body: B, idle: Duration) -> Body
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    Body::new(IdleTimeoutBody::new(body, idle).map_err(axum::Error::new))
}

#[derive(Debug, thiserror::Error)]
pub enum IdleBodyError<E: std::error::Error + 'static> {
    #[error("the request body stalled")]
    TimedOut(#[from] BodyReadTimeout),
    #[error("cannot read the request body: {0}")]
    Read(#[source] E),
}

impl<B> HttpBody for IdleTimeoutBody<B>
where
    B: HttpBody + Unpin,
    B::Error: std::error::Error + 'static,
{
    type Data = B::Data;
    type Error = IdleBodyError<B::Error>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|frame| frame.map_err(IdleBodyError::Read)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.idle;
                    this.deadline.as_mut().reset(deadline);
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyReadTimeout(this.idle).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    type Frames = Pin<Box<dyn futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>;

    fn stream_body(
        chunks: impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static,
    ) -> http_body_util::StreamBody<Frames> {
        http_body_util::StreamBody::new(Box::pin(chunks))
    }

    #[tokio::test]
    async fn body_that_keeps_coming_is_read_whole() {
        let chunks = futures::stream::unfold(0, |sent| async move {
            (sent < 10).then_some(())?;
            tokio::time::sleep(Duration::from_millis(40)).await;
            Some((Ok(Frame::data(Bytes::from_static(b"ab"))), sent + 1))
        });
        // Slower than the idle time in all, each read within it.
        let body = with_idle_timeout(stream_body(chunks), Duration::from_millis(300));
        let bytes = body.collect().await.expect("read whole").to_bytes();
        assert_eq!(bytes, "ab".repeat(10).as_bytes());
    }

    #[tokio::test]
    async fn body_that_stalls_fails_with_body_read_timeout() {
        let chunks = futures::stream::once(async { Ok(Frame::data(Bytes::from_static(b"ab"))) })
            .chain(futures::stream::pending());
        let body = with_idle_timeout(stream_body(chunks), Duration::from_millis(50));
        let error = body.collect().await.expect_err("stalls");
        assert!(BodyReadTimeout::is_cause_of(&error), "{error}");
    }

    use futures::StreamExt;
}
