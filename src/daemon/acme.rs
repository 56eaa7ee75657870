//! The ACME loop: one task for the daemon's life. Each turn reads the current config's `[tls]`,
//! asks [`plan::decide`] what the certificate in place needs, and when it needs a new one runs
//! the order ([`client`]), checks what the CA sent ([`plan::accept`], and that key and chain make
//! a TLS configuration), writes the files and has the main loop switch every listener to it
//! (the reload path's generation swap, without re-reading the config file). A failure leaves
//! the certificate in place, is shown by `smtpctl tls` and is retried after [`plan::retry_at`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::{error, info, warn};

use super::shared::Shared;
use crate::acme::{CertFacts, Challenges, cert, client, plan, store};
use crate::config::{AcmeChallenge, Tls};
use crate::control::proto::TlsInfo;

/// A certificate swap asked of the main loop; answered when done.
pub type SwapAsk = oneshot::Sender<Result<(), String>>;

/// What the loop shares with the control socket and the HTTP listener.
#[derive(Debug)]
pub struct AcmeRuntime {
    /// The HTTP-01 answers in flight.
    pub challenges: Arc<Challenges>,
    /// What `smtpctl tls` shows about the renewal (the certificate's facts are read anew).
    status: Mutex<Progress>,
    /// `smtpctl tls renew` asked; taken by the loop.
    forced: AtomicBool,
    /// Wakes the loop (renew asked, config reloaded).
    wake: Notify,
    /// Counts finished attempts, so `smtpctl tls renew` can wait for the one it asked for.
    attempts: watch::Sender<u64>,
    /// An attempt is running (a renewal asked meanwhile waits for the one after it).
    busy: AtomicBool,
}

#[derive(Clone, Debug, Default)]
struct Progress {
    next: Option<u64>,
    last_error: Option<String>,
    last_attempt: Option<u64>,
    last_success: Option<u64>,
    failures: u32,
}

impl Default for AcmeRuntime {
    fn default() -> Self {
        AcmeRuntime {
            challenges: Arc::default(),
            status: Mutex::default(),
            forced: AtomicBool::new(false),
            wake: Notify::new(),
            attempts: watch::Sender::new(0),
            busy: AtomicBool::new(false),
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AcmeRuntime {
    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the loop to look at the (reloaded) config again.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// `smtpctl tls renew`: asks for an attempt now and waits (up to `limit`) until it is over.
    pub async fn renew(&self, limit: Duration) -> Result<(), String> {
        let mut rx = self.attempts.subscribe();
        let start = *rx.borrow_and_update();
        // One running now ends first; the forced one is the next.
        let want = start
            + if self.busy.load(Ordering::SeqCst) {
                2
            } else {
                1
            };
        self.forced.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        match tokio::time::timeout(limit, rx.wait_for(|n| *n >= want)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("smtpd is shutting down".into()),
            Err(_) => Err(format!(
                "the renewal is still running after {} s; see `smtpctl tls` later",
                limit.as_secs()
            )),
        }
    }

    /// The certificate of `tls` and this loop's progress, as `smtpctl tls` shows them.
    pub fn info(&self, tls: &Tls) -> TlsInfo {
        let mut info = facts_info(tls);
        if tls.acme {
            let p = self.progress().clone();
            info.acme = true;
            info.directory = tls.acme_directory.clone();
            info.next_renewal = p.next;
            info.last_error = p.last_error;
            info.last_attempt = p.last_attempt;
            info.last_success = p.last_success;
            info.failures = p.failures;
            if info.temporary || info.names.is_empty() {
                info.names = tls.acme_names.clone();
            }
        }
        info
    }
}

/// What the certificate file says (read now: it is small).
pub fn facts_info(tls: &Tls) -> TlsInfo {
    let mut info = TlsInfo::default();
    match std::fs::read(&tls.cert)
        .map_err(|e| e.to_string())
        .and_then(|pem| cert::facts(&pem))
    {
        Ok(f) => {
            info.names = f.names;
            info.issuer = f.issuer;
            info.not_after = Some(f.not_after);
            info.temporary = f.self_signed && tls.acme;
        }
        Err(e) => info.error = Some(format!("{}: {e}", tls.cert.display())),
    }
    info
}

/// The first wait after a failure: [`plan::FIRST_RETRY_SECS`], or the test switch's.
fn first_retry() -> u64 {
    crate::testing::acme_retry_secs().unwrap_or(plan::FIRST_RETRY_SECS)
}

/// The loop. `swap` reaches the main loop, which owns the generation swap.
pub async fn run(shared: Arc<Shared>, swap: mpsc::Sender<SwapAsk>) {
    let rt = Arc::clone(&shared.acme);
    // No automatic attempt before this (the backoff after a failure).
    let mut not_before = 0u64;
    // A forced renewal that failed is retried (with the backoff) until one succeeds.
    let mut force_pending = false;
    loop {
        if shared.shutdown.is_cancelled() {
            return;
        }
        let config = Arc::clone(&shared.current().config);
        let tls = match &config.tls {
            Some(t) if t.acme => t.clone(),
            _ => {
                // ACME is off: wait for a reload that may turn it on.
                rt.forced.store(false, Ordering::SeqCst);
                if sleep_until(&shared, None).await {
                    return;
                }
                continue;
            }
        };
        let current = {
            let t = tls.clone();
            tokio::task::spawn_blocking(move || store::current(&t))
                .await
                .unwrap_or(None)
        };
        let now = now_unix();
        let asked = rt.forced.swap(false, Ordering::SeqCst);
        let forced = asked || force_pending;
        let reason = match plan::decide(now, current.as_ref(), &tls.acme_names, forced) {
            plan::Decision::Wait(at) => {
                rt.progress().next = Some(at);
                if sleep_until(&shared, Some(at)).await {
                    return;
                }
                continue;
            }
            plan::Decision::Obtain(_) if !asked && now < not_before => {
                if sleep_until(&shared, Some(not_before)).await {
                    return;
                }
                continue;
            }
            plan::Decision::Obtain(reason) => reason,
        };
        info!(names = %tls.acme_names.join(","), directory = %tls.acme_directory, "acme: obtaining a certificate: {reason}");
        rt.busy.store(true, Ordering::SeqCst);
        let attempt = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(300), obtain(&shared, &tls, &swap)) => {
                r.unwrap_or_else(|_| Err("the ACME order took more than 5 minutes; abandoned".into()))
            }
            _ = shared.shutdown.cancelled() => return,
        };
        let end = now_unix();
        {
            let mut p = rt.progress();
            p.last_attempt = Some(end);
            match &attempt {
                Ok(f) => {
                    p.failures = 0;
                    p.last_error = None;
                    p.last_success = Some(end);
                    p.next = Some(plan::renew_at(f));
                    not_before = 0;
                    force_pending = false;
                    info!(
                        names = %f.names.join(","),
                        issuer = %f.issuer,
                        not_after = f.not_after,
                        renew_at = plan::renew_at(f),
                        "acme: new certificate in use on every TLS listener"
                    );
                }
                Err(e) => {
                    p.failures = p.failures.saturating_add(1);
                    p.last_error = Some(e.clone());
                    not_before = plan::retry_at(end, p.failures, first_retry(), current.as_ref());
                    p.next = Some(not_before);
                    force_pending = forced;
                    let kept = match &current {
                        Some(c) if !c.self_signed => "the certificate in place stays in use",
                        _ => "the temporary self-signed certificate stays in use",
                    };
                    error!(
                        failures = p.failures,
                        retry_in_secs = not_before.saturating_sub(end),
                        "acme: {e}; {kept}"
                    );
                }
            }
        }
        rt.busy.store(false, Ordering::SeqCst);
        rt.attempts.send_modify(|n| *n += 1);
    }
}

/// Sleeps until `at` (at most an hour, so a changed clock is noticed), a wake or shutdown;
/// true at shutdown.
async fn sleep_until(shared: &Shared, at: Option<u64>) -> bool {
    let secs = at
        .map(|t| t.saturating_sub(now_unix()))
        .unwrap_or(3600)
        .clamp(0, 3600);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(secs)) => false,
        _ = shared.acme.wake.notified() => false,
        _ = shared.shutdown.cancelled() => true,
    }
}

/// The challenge answered: `auto` (which the loader resolves already) is HTTP-01 when there is
/// a plain `[http]` listener (`http`), else TLS-ALPN-01 on the implicit-TLS listeners.
fn challenge_for(wanted: AcmeChallenge, http: bool) -> AcmeChallenge {
    match (wanted, http) {
        (AcmeChallenge::Auto, true) => AcmeChallenge::Http01,
        (AcmeChallenge::Auto, false) => AcmeChallenge::TlsAlpn01,
        (other, _) => other,
    }
}

/// One attempt: account, order, checks, files, swap. The facts of the new certificate.
async fn obtain(
    shared: &Shared,
    tls: &Tls,
    swap: &mpsc::Sender<SwapAsk>,
) -> Result<CertFacts, String> {
    let http = {
        let c = &shared.current().config;
        !c.http.listen.is_empty() && !c.http.tls
    };
    let req = client::Request {
        directory: &tls.acme_directory,
        email: &tls.acme_email,
        names: &tls.acme_names,
        cafile: &tls.acme_cafile,
        challenge: challenge_for(tls.acme_challenge, http),
    };
    let stored = blocking({
        let (t, d) = (tls.clone(), tls.acme_directory.clone());
        move || store::account(&t, &d)
    })
    .await?;
    let (account, made) = client::account(&req, stored).await?;
    if let Some(creds) = made {
        save_account(tls, creds).await?;
    }
    let challenges = &shared.acme.challenges;
    let issued = match client::order(&account, &req, challenges).await {
        Ok(i) => i,
        Err((true, e)) => {
            warn!("acme: {e}; the CA does not know the stored account: making a new one");
            let (account, made) = client::account(&req, None).await?;
            if let Some(creds) = made {
                save_account(tls, creds).await?;
            }
            client::order(&account, &req, challenges)
                .await
                .map_err(|(_, e)| e)?
        }
        Err((false, e)) => return Err(e),
    };
    let facts = plan::accept_pem(issued.cert_pem.as_bytes(), &tls.acme_names, now_unix())?;
    crate::net::tls::from_pem(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
        .map_err(|e| format!("the CA's certificate is refused: {e}"))?;
    blocking({
        let t = tls.clone();
        move || store::save_certificate(&t, &issued.cert_pem, &issued.key_pem)
    })
    .await?;
    let (tx, rx) = oneshot::channel();
    swap.send(tx)
        .await
        .map_err(|_| "smtpd is shutting down".to_string())?;
    rx.await
        .map_err(|_| "smtpd is shutting down".to_string())?
        .map_err(|e| format!("the new certificate was written but not switched in: {e}"))?;
    Ok(facts)
}

async fn save_account(tls: &Tls, creds: serde_json::Value) -> Result<(), String> {
    let (t, d) = (tls.clone(), tls.acme_directory.clone());
    blocking(move || store::save_account(&t, &d, creds)).await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("internal error ({e}); please report it")))
}
