//! A tower layer logging every call's method and duration at debug level
//! (`berth_agent::services::timing`): the first thing to look at when a client is slow.

use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use tower::{Layer, Service};

/// Wraps services with [`Timed`].
#[derive(Clone, Copy, Default)]
pub struct TimingLayer;

impl<S> Layer<S> for TimingLayer {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed { inner }
    }
}

/// Logs `method` and `elapsed` when the response head is ready.
#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Timed<S>
where
    S: Service<http::Request<B>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return Box::pin(self.inner.call(req));
        }
        let method = req.uri().path().to_string();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            tracing::debug!(%method, elapsed_us = started.elapsed().as_micros() as u64, "call");
            r
        })
    }
}
