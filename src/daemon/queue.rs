//! `smtpctl queue`: the outbound queue through the control socket.

use super::shared::Shared;
use crate::control::proto::{QueueAction, QueuedMessage, QueuedRecipient, ResponseLine};
use crate::outbound::unix_now;
use crate::queue::{Envelope, State};

fn view(e: &Envelope, now: u64) -> QueuedMessage {
    QueuedMessage {
        id: e.id.clone(),
        sender: e.sender.clone(),
        age_secs: now.saturating_sub(e.created),
        size: e.size,
        held: e.held,
        recipients: e
            .recipients
            .iter()
            .map(|r| QueuedRecipient {
                address: r.address.clone(),
                state: match r.state {
                    s if e.held && s.is_pending() => "held",
                    State::Queued => "queued",
                    State::Deferred => "deferred",
                    State::Delivered => "delivered",
                    State::Failed => "failed",
                }
                .to_string(),
                attempts: r.attempts,
                last_error: r.last_error.clone(),
                next_try: r.state.is_pending().then_some(r.next_try),
            })
            .collect(),
    }
}

pub fn answer(shared: &Shared, action: QueueAction) -> ResponseLine {
    let q = &shared.outbound;
    let now = unix_now();
    let done = |r: Result<(), String>, what: &str, id: &str| match r {
        Ok(()) => ResponseLine::ok(serde_json::json!({ what: id })),
        Err(e) => ResponseLine::err(e),
    };
    match action {
        QueueAction::List => {
            ResponseLine::ok(q.list().iter().map(|e| view(e, now)).collect::<Vec<_>>())
        }
        QueueAction::Show { id } => match q.list().iter().find(|e| e.id == id) {
            Some(e) => ResponseLine::ok(view(e, now)),
            None => ResponseLine::err(format!("no message {id} in the queue")),
        },
        QueueAction::Flush { id } => match q.flush(id.as_deref()) {
            Ok(n) => ResponseLine::ok(serde_json::json!({ "flushed": n })),
            Err(e) => ResponseLine::err(e),
        },
        QueueAction::Remove { id } => done(q.remove(&id), "removed", &id),
        QueueAction::Hold { id } => done(q.hold(&id, true), "held", &id),
        QueueAction::Release { id } => done(q.hold(&id, false), "released", &id),
    }
}
