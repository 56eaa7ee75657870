//! `GET /api/v1/wait`: answers with the first message delivered since `since` that matches, as
//! soon as it is durable. Woken by the deliveries themselves: the wait subscribes to the watch
//! events before its first scan (so none is missed between the two), then scans again after each
//! delivery event, until the timeout (408), shutdown (503) or a match (200).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::query;
use super::routes::{ApiError, App, Params, blocking, describe, pairs};
use super::select::{self, Order};
use crate::net::watch::WatchEvent;

/// Events after which the Maildirs may hold a new message: an SMTP session's delivery and the
/// queue's (local recipients of a queued message).
fn is_delivery(e: &WatchEvent) -> bool {
    e.event == "delivered" || e.event == "queue delivered"
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub async fn wait(State(app): State<Arc<App>>, q: Params) -> Result<Response, ApiError> {
    let q =
        query::parse_wait(&pairs(q)?, now_us(), app.ctx.max_wait).map_err(ApiError::bad_request)?;
    let Some(_slot) = app.shared.waiters.try_acquire(app.ctx.max_waiters) else {
        let why = format!(
            "{} waits are in progress ([http] max_waiters); try again later",
            app.ctx.max_waiters
        );
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why));
    };
    let stopping = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "smtpd is stopping");
    let deadline = tokio::time::Instant::now() + q.timeout;
    // Subscribed before the first scan: a delivery after the scan began wakes the loop below.
    let mut events = app.ctx.stats.watch.subscribe();
    let shutdown = app.shared.shutdown.clone();
    loop {
        let (root, filter) = (app.ctx.root.clone(), q.filter.clone());
        let read_max = Some(app.ctx.read_max);
        let page = blocking("scanning the mailboxes", move || {
            select::select(&root, &filter, Order::Oldest, None, 1, read_max)
        })
        .await?;
        if let Some((_, s)) = page.messages.first() {
            return Ok(Json(s).into_response());
        }
        // Until a delivery (several at once make one scan), the timeout or shutdown.
        loop {
            tokio::select! {
                r = events.recv() => match r {
                    Ok(e) if is_delivery(&e) => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return Err(stopping()),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!(
                        "no message matching {} within {}",
                        describe(&q.filter),
                        secs(q.timeout)
                    );
                    return Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, why));
                }
                _ = shutdown.cancelled() => return Err(stopping()),
            }
        }
        while events.try_recv().is_ok() {}
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
