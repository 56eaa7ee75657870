//! The control dispatcher: one function from a [`Request`] to its answer. The permission check
//! is done before, for every request, by `control::server`.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::reload::{self, Mode};
use super::shared::Shared;
use super::{metrics, selftest, send_test};
use crate::control::proto::{LogLevelResult, MailboxInfo, Request, ResponseLine, WaitQuery};
use crate::control::server::{Handler, Peer, Reply};
use crate::http::{self, wait};
use crate::net::watch::WatchEvent;

impl Handler for Shared {
    fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<WatchEvent>> {
        Some(self.stats.watch.subscribe())
    }

    fn handle(self: Arc<Self>, request: Request, peer: Peer) -> Reply {
        Box::pin(async move {
            tracing::debug!(uid = peer.uid, ?request, "control request");
            match request {
                Request::Status => ResponseLine::ok(self.status()),
                Request::Mailboxes => mailboxes(&self).await,
                Request::SendTest { to, from } => send_test::run(self, to, from).await,
                Request::Reload => {
                    let (tx, rx) = oneshot::channel();
                    if self.reload_tx.send(tx).await.is_err() {
                        return ResponseLine::err("smtpd is shutting down");
                    }
                    match rx.await {
                        Ok(info) => ResponseLine::ok(info),
                        Err(_) => ResponseLine::err("smtpd is shutting down"),
                    }
                }
                Request::ReloadCheck { config } => {
                    let path = config.map(Into::into);
                    ResponseLine::ok(reload::run(&self, path, Mode::Check).await)
                }
                Request::Metrics => ResponseLine::ok(metrics::text(&self)),
                Request::Selftest { quick } => selftest::start(self, quick).await,
                Request::Transcript { id } => transcript(&self, id).await,
                Request::Watch { .. } => {
                    ResponseLine::err("watch streams; it is not a one-shot request")
                }
                Request::Wait { query } => wait(&self, &query).await,
                Request::LogLevel { level } => match (self.set_level)(&level) {
                    Ok(()) => {
                        let previous = self.record_log_level(&level);
                        tracing::info!(%previous, %level, "log level changed by smtpctl");
                        ResponseLine::ok(LogLevelResult { previous, level })
                    }
                    Err(e) => ResponseLine::err(e),
                },
                Request::Queue { action } => {
                    // hold, release and remove write the queue (fsyncs): off the async threads.
                    let shared = Arc::clone(&self);
                    tokio::task::spawn_blocking(move || super::queue::answer(&shared, action))
                        .await
                        .unwrap_or_else(|e| ResponseLine::err(format!("queue: {e}")))
                }
                Request::Tls => match self.tls_info() {
                    Some(info) => ResponseLine::ok(info),
                    None => ResponseLine::err("no [tls] section: TLS is off"),
                },
                Request::TlsRenew => tls_renew(&self).await,
                Request::Pause => {
                    self.set_paused(true);
                    tracing::info!("SMTP intake paused by smtpctl: new sessions get 421");
                    ResponseLine::ok(serde_json::json!({"smtp_paused": true}))
                }
                Request::Resume => {
                    self.set_paused(false);
                    tracing::info!("SMTP intake resumed by smtpctl");
                    ResponseLine::ok(serde_json::json!({"smtp_paused": false}))
                }
                Request::Drain {
                    timeout_secs,
                    settle_secs,
                } => ResponseLine::ok(self.drain(timeout_secs, settle_secs).await),
                Request::Undrain => {
                    self.draining
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!("drain ended by smtpctl: /health answers 200 again");
                    ResponseLine::ok(serde_json::json!({"draining": false}))
                }
            }
        })
    }
}

/// `smtpctl tls renew`: one ACME attempt now, answered with the outcome.
async fn tls_renew(shared: &Shared) -> ResponseLine {
    let acme = shared.current().config.tls.as_ref().is_some_and(|t| t.acme);
    if !acme {
        return ResponseLine::err(
            "ACME is off: set [tls] acme = true to have smtpd obtain and renew the certificate",
        );
    }
    tracing::info!("acme: renewal asked by smtpctl");
    if let Err(e) = shared.acme.renew(std::time::Duration::from_secs(330)).await {
        return ResponseLine::err(e);
    }
    match shared.tls_info() {
        Some(info) => match &info.last_error {
            Some(e) => ResponseLine::err(format!(
                "renewal failed: {e} (the certificate in use stays; retried automatically, see `smtpctl tls`)"
            )),
            None => ResponseLine::ok(info),
        },
        None => ResponseLine::err("no [tls] section: TLS is off"),
    }
}

/// `smtpctl wait`: the HTTP API's wait (the same parser and matcher, woken the same way), under
/// the current generation's `[http]` limits.
async fn wait(shared: &Shared, query: &WaitQuery) -> ResponseLine {
    let g = shared.current();
    let q = match http::query::parse_wait(&query.pairs(), wait::now_us(), g.http.max_wait) {
        Ok(q) => q,
        Err(e) => return ResponseLine::err(e),
    };
    match wait::wait_for(&g.http, &shared.http_waiters, &shared.shutdown, &q).await {
        Ok(found) => ResponseLine::ok(serde_json::json!({ "found": found })),
        Err(e @ wait::WaitError::TimedOut { .. }) => {
            ResponseLine::ok(serde_json::json!({ "timed_out": e.to_string() }))
        }
        Err(e) => ResponseLine::err(e.to_string()),
    }
}

async fn mailboxes(shared: &Shared) -> ResponseLine {
    let root = shared.current().config.mailboxes.root.clone();
    match tokio::task::spawn_blocking(move || crate::mailbox::summary::summarize(&root)).await {
        Ok(Ok(list)) => ResponseLine::ok(
            list.into_iter()
                .map(|s| MailboxInfo {
                    address: s.address,
                    messages: s.new + s.cur,
                    new: s.new,
                    cur: s.cur,
                    bytes: s.bytes,
                    newest: s.newest,
                })
                .collect::<Vec<_>>(),
        ),
        Ok(Err(e)) => ResponseLine::err(format!("cannot list the mailboxes: {e}")),
        Err(e) => ResponseLine::err(format!("cannot list the mailboxes: {e}")),
    }
}

async fn transcript(shared: &Shared, id: String) -> ResponseLine {
    let g = shared.current();
    let dir = g.config.log.dir.join("transcripts");
    let on = g.config.log.transcripts;
    let shown = id.clone();
    match tokio::task::spawn_blocking(move || crate::net::transcript::read(&dir, &id)).await {
        Ok(Ok(text)) => ResponseLine::ok(text),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => ResponseLine::err(if on {
            format!(
                "no transcript for message {shown} (unknown id, or older than [log] transcript_keep_days)"
            )
        } else {
            format!(
                "no transcript for message {shown}: transcripts are off; set [log] transcripts = true and reload"
            )
        }),
        Ok(Err(e)) => ResponseLine::err(format!("transcript {shown}: {e}")),
        Err(e) => ResponseLine::err(format!("transcript {shown}: {e}")),
    }
}
