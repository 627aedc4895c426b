//! Graceful shutdown: on SIGTERM or SIGINT stop accepting connections, wait
//! until every request in flight has been answered (bounded), then stop.
//!
//! flexbridge counts requests itself: actix treats SIGINT as a forced stop,
//! the log says how many requests the drain waits for, and actix-server
//! before 2.10 could close a connection during a graceful stop (a race in
//! its connection count).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::{ServerHandle, ServiceRequest};
use actix_web::web;
use tokio::sync::Notify;

/// Requests being handled right now.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Decrements the count when the request is done (or abandoned).
struct Guard(Arc<InFlight>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// How many requests are in flight.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Wait until no request is in flight.
    pub async fn wait_idle(&self) {
        loop {
            // Register before checking, so a decrement in between is not missed.
            let idle = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Count `req` as in flight until the returned guard is dropped.
pub fn track(req: &ServiceRequest) -> Option<impl Drop + use<>> {
    req.app_data::<web::Data<InFlight>>().map(|in_flight| {
        in_flight.count.fetch_add(1, Ordering::AcqRel);
        Guard(Arc::clone(in_flight))
    })
}

/// Wait for SIGTERM or SIGINT, then drain and stop the server.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn on_signals(
    handle: ServerHandle,
    in_flight: Arc<InFlight>,
    limit: Duration,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    actix_web::rt::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            in_flight = in_flight.count(),
            "stopping: finishing requests in flight"
        );
        handle.pause().await;
        if tokio::time::timeout(limit, in_flight.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = in_flight.count(),
                "shutdown timeout reached with requests still in flight"
            );
        }
        handle.stop(true).await;
    });
    Ok(())
}
