//! Request bodies that must keep coming: after a grace period, a body has to have arrived at a
//! least average rate, or its request fails with 408. A client that trickles a byte every few
//! seconds would otherwise hold a connection, and a handler, for as long as it likes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::{Instant, Sleep};

/// How fast bodies must come: nothing is asked for `grace`, then `bytes_per_second` on
/// average since the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub grace: Duration,
    pub bytes_per_second: u64,
}

impl MinRate {
    pub const DEFAULT: Self = Self {
        grace: Duration::from_secs(10),
        bytes_per_second: 1024,
    };

    /// When a body that started at `start` and has sent `received` bytes falls behind.
    pub fn deadline(self, start: Instant, received: u64) -> Instant {
        let rate = self.bytes_per_second.max(1);
        let allowed = Duration::from_secs(received / rate)
            + Duration::from_nanos((received % rate) * 1_000_000_000 / rate);
        start + self.grace + allowed
    }
}

/// The error a body that fell behind ends with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived too slowly (less than {bytes_per_second} bytes a second after {}s)",
    grace.as_secs()
)]
pub struct TooSlow {
    grace: Duration,
    bytes_per_second: u64,
}

/// Middleware: every request body is held to `rate`.
pub async fn hold_to_rate(rate: MinRate, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = Body::new(Timed {
        inner: body,
        rate,
        start: Instant::now(),
        received: 0,
        timer: Box::pin(tokio::time::sleep_until(rate.deadline(Instant::now(), 0))),
    });
    next.run(Request::from_parts(parts, body)).await
}

struct Timed {
    inner: Body,
    rate: MinRate,
    start: Instant,
    received: u64,
    timer: Pin<Box<Sleep>>,
}

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.rate.deadline(this.start, this.received);
                    this.timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(TooSlow {
                    grace: this.rate.grace,
                    bytes_per_second: this.rate.bytes_per_second,
                })))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body error is this module's.
pub fn is_too_slow(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<TooSlow>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_moves_with_what_arrived() {
        let rate = MinRate {
            grace: Duration::from_secs(10),
            bytes_per_second: 1000,
        };
        let t0 = Instant::now();
        assert_eq!(rate.deadline(t0, 0), t0 + Duration::from_secs(10));
        assert_eq!(rate.deadline(t0, 5000), t0 + Duration::from_secs(15));
        assert_eq!(rate.deadline(t0, 500), t0 + Duration::from_millis(10_500));
        // A byte every 5 s falls behind right after the grace.
        let trickled = rate.deadline(t0, 3);
        assert!(trickled < t0 + Duration::from_secs(11));
    }
}
