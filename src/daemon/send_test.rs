//! `smtpctl send-test`: a message through the daemon's own SMTP listener with our SMTP client,
//! then found in the recipient's `new/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::shared::Shared;
use crate::control::proto::{ResponseLine, SendTestResult};
use crate::net::Protocol;

pub async fn run(shared: Arc<Shared>, to: Option<String>, from: Option<String>) -> ResponseLine {
    let g = shared.current();
    let cfg = &g.config;
    let to = to.unwrap_or_else(|| {
        format!(
            "postmaster@{}",
            cfg.mailboxes
                .domains
                .first()
                .map(String::as_str)
                .unwrap_or("localhost")
        )
    });
    let from = from.unwrap_or_else(|| format!("smtpctl@{}", cfg.hostname));
    let Some(addr) = shared.listener_address(Protocol::Smtp) else {
        return ResponseLine::err("smtpd has no SMTP listener to send the test message through");
    };
    let now = SystemTime::now();
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let message_id = format!(
        "<send-test.{nanos}.{}@{}>",
        std::process::id(),
        cfg.hostname
    );
    let message = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: smtpd send-test\r\nDate: {}\r\nMessage-ID: {message_id}\r\n\r\nThis test message was sent by `smtpctl send-test` through smtpd's own SMTP listener ({addr}).\r\n",
        crate::mailbox::headers::rfc5322_date(now)
    );
    let t0 = Instant::now();
    let outcome = crate::client::smtp::send(
        addr,
        &cfg.hostname,
        &from,
        std::slice::from_ref(&to),
        message.as_bytes(),
        Duration::from_secs(30),
    )
    .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return ResponseLine::err(format!("send-test through {addr}: {e}")),
    };
    let mut path = None;
    if outcome.delivered {
        let (local, domain) = to.rsplit_once('@').unwrap_or((to.as_str(), ""));
        let dir = cfg
            .mailboxes
            .root
            .join(domain.to_ascii_lowercase())
            .join(local.to_ascii_lowercase())
            .join("new");
        let needle = message_id.clone();
        path = tokio::task::spawn_blocking(move || find_message(&dir, &needle))
            .await
            .ok()
            .flatten();
    }
    let latency_ms = t0.elapsed().as_millis() as u64;
    ResponseLine::ok(SendTestResult {
        delivered: outcome.delivered && path.is_some(),
        from,
        to,
        message_id,
        reply: outcome.reply.last_line(),
        latency_ms,
        path,
    })
}

/// The file in `dir` whose header holds `needle` (recent files first).
fn find_message(dir: &std::path::Path, needle: &str) -> Option<String> {
    let mut files: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, p) in files.into_iter().take(1000) {
        let mut head = vec![0u8; 8192];
        let n = std::fs::File::open(&p)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        if String::from_utf8_lossy(&head[..n]).contains(needle) {
            return Some(p.display().to_string());
        }
    }
    None
}
