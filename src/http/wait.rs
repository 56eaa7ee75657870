//! The server-side wait: the first message delivered since `since` that matches, as soon as it
//! is durable. Woken by the deliveries themselves: a wait subscribes to the watch events before
//! its first scan (so none is missed between the two), then, after each delivery event, reads the
//! copies the event names (`WatchEvent::stored`), or scans again when it names none (the queue's
//! deliveries, a lagging subscriber), until the timeout, shutdown or a match.
//!
//! [`wait_for`] is the one wait: `GET /api/v1/wait` ([`wait`]) and `smtpctl wait` (through the
//! control socket, in the daemon) both call it, with the query [`super::query::parse_wait`]
//! reads.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::message::Summary;
use super::query::{self, WaitQuery};
use super::routes::{ApiError, App, Params, Who, describe, pairs};
use super::select::{self, Among, Order};
use super::{HttpContext, Waiters};
use crate::net::watch::WatchEvent;

/// Why a wait ended without a message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("{0} waits are in progress ([http] max_waiters); try again later")]
    Busy(usize),
    #[error("no message matching {filter} within {within}")]
    TimedOut { filter: String, within: String },
    #[error("smtpd is stopping")]
    Stopping,
    #[error("scanning the mailboxes failed")]
    Failed,
}

/// Events after which the Maildirs may hold a new message: an SMTP session's delivery and the
/// queue's (local recipients of a queued message).
fn is_delivery(e: &WatchEvent) -> bool {
    e.event == "delivered" || e.event == "queue delivered"
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Waits for a message matching `q` (at most `ctx.max_waiters` waits at once, counted in
/// `waiters`).
pub async fn wait_for(
    ctx: &HttpContext,
    waiters: &Arc<Waiters>,
    shutdown: &CancellationToken,
    q: &WaitQuery,
) -> Result<Summary, WaitError> {
    let Some(_slot) = waiters.try_acquire(ctx.max_waiters) else {
        return Err(WaitError::Busy(ctx.max_waiters));
    };
    let deadline = tokio::time::Instant::now() + q.timeout;
    // Subscribed before the first scan: a delivery after the scan began wakes the loop below.
    let mut events = ctx.stats.watch.subscribe();
    let read_max = Some(ctx.read_max);
    let mut rescan = true;
    loop {
        if rescan {
            // Whatever was delivered before this point, the scan sees.
            while events.try_recv().is_ok() {}
            let (root, filter) = (ctx.root.clone(), q.filter.clone());
            let page =
                blocking(move || select::select(&root, &filter, Order::Oldest, None, 1, read_max))
                    .await?;
            if let Some((_, s)) = page.messages.into_iter().next() {
                return Ok(s);
            }
        }
        // Until a delivery, the timeout or shutdown.
        let stored = loop {
            tokio::select! {
                r = events.recv() => match r {
                    Ok(e) if is_delivery(&e) => break e.stored,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break None,
                    Err(RecvError::Closed) => return Err(WaitError::Stopping),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(WaitError::TimedOut {
                        filter: describe(&q.filter),
                        within: secs(q.timeout),
                    });
                }
                _ = shutdown.cancelled() => return Err(WaitError::Stopping),
            }
        };
        // A delivery that names its copies: read just those. Otherwise (the queue's, a missed
        // event, a copy moved meanwhile) scan again.
        rescan = match stored {
            Some(paths) => {
                let (root, filter) = (ctx.root.clone(), q.filter.clone());
                match blocking(move || select::among(&root, &filter, &paths, read_max)).await? {
                    Among::Found(s) => return Ok(*s),
                    Among::NoMatch => false,
                    Among::Unknown => true,
                }
            }
            None => true,
        };
    }
}

/// Runs a Maildir read off the async threads; its failure (logged) ends the wait.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, WaitError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => {
            warn!(error = %e, "wait: reading the mailboxes failed");
            Err(WaitError::Failed)
        }
        Err(_) => Err(WaitError::Failed),
    }
}

/// `GET /api/v1/wait`: 200 with the message, 408 at the timeout, 503 when busy or stopping.
pub async fn wait(
    State(app): State<Arc<App>>,
    Extension(caller): Who,
    q: Params,
) -> Result<Response, ApiError> {
    let mut q =
        query::parse_wait(&pairs(q)?, now_us(), app.ctx.max_wait).map_err(ApiError::bad_request)?;
    q.filter.mailbox = caller.scope(q.filter.mailbox.take())?;
    match wait_for(&app.ctx, &app.shared.waiters, &app.shared.shutdown, &q).await {
        Ok(s) => Ok(Json(s).into_response()),
        Err(e) => {
            let status = match e {
                WaitError::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
                WaitError::Busy(_) | WaitError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
                WaitError::Failed => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(ApiError::new(status, e.to_string()))
        }
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
