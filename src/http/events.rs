//! `GET /api/v1/events`: server-sent events of what `smtpctl watch` shows (sessions, deliveries,
//! refusals, the queue's deliveries), one `event:` per watch event with its JSON as `data:`.
//! A comment opens the stream (the subscription is in place once it arrives) and another keeps
//! an idle stream alive every `[http] event_keepalive_secs`. At most `max_event_streams` at
//! once (503 beyond). Memory is bounded: events are taken from the watch channel only as fast
//! as the client reads them, and a client that falls a channel's length (1024 events) behind
//! gets a `lagged` event and is dropped rather than buffered for.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::WaitSlot;
use super::routes::{ApiError, AppState, Params, pairs};
use crate::net::watch::WatchEvent;

/// The SSE event name of a watch event: its words joined by `_` ("session start" →
/// `session_start`), so that `addEventListener` can name it.
pub fn event_name(e: &WatchEvent) -> String {
    e.event.split_whitespace().collect::<Vec<_>>().join("_")
}

/// What one stream holds: the subscription, its place among the streams, what it filters on.
struct Feed {
    rx: broadcast::Receiver<WatchEvent>,
    _slot: WaitSlot,
    address: Option<String>,
    shutdown: CancellationToken,
    opened: bool,
    done: bool,
}

/// The stream's next item: the opening comment, then the next event that passes the filter.
async fn next(mut f: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    if f.done {
        return None;
    }
    if !f.opened {
        f.opened = true;
        return Some((Ok(Event::default().comment("smtpd events")), f));
    }
    loop {
        let r = tokio::select! {
            _ = f.shutdown.cancelled() => return None,
            r = f.rx.recv() => r,
        };
        match r {
            Ok(e) if f.address.as_deref().is_none_or(|a| e.mentions(a)) => {
                let data = serde_json::to_string(&e).unwrap_or_default();
                let ev = Event::default().event(event_name(&e)).data(data);
                return Some((Ok(ev), f));
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                f.done = true;
                let ev = Event::default()
                    .event("lagged")
                    .data(format!("{{\"missed\":{n}}}"));
                return Some((Ok(ev), f));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

fn feed(f: Feed) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(f, next)
}

pub async fn events(State(app): AppState, q: Params) -> Result<Response, ApiError> {
    let pairs = pairs(q)?;
    let mut address = None;
    for (name, value) in pairs {
        match name.as_str() {
            "address" if address.is_none() && !value.is_empty() => address = Some(value),
            "address" => {
                return Err(ApiError::bad_request(
                    "`address` must be given once, not empty",
                ));
            }
            _ => {
                let why = format!("unknown parameter `{name}` (known: address)");
                return Err(ApiError::bad_request(why));
            }
        }
    }
    let max = app.ctx.max_event_streams;
    let Some(slot) = app.shared.streams.try_acquire(max) else {
        let why =
            format!("{max} event streams are open ([http] max_event_streams); try again later");
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why));
    };
    let f = Feed {
        rx: app.ctx.stats.watch.subscribe(),
        _slot: slot,
        address,
        shutdown: app.shared.shutdown.clone(),
        opened: false,
        done: false,
    };
    let keep = KeepAlive::new()
        .interval(app.ctx.event_keepalive)
        .text("keep-alive");
    Ok(Sse::new(feed(f)).keep_alive(keep).into_response())
}
