//! `smtpctl metrics` (and `GET /metrics` on `[http] listen`): the
//! counters in Prometheus text format.

use super::shared::Shared;

/// Prometheus text exposition of the counters (readable without root: OpenSMTPD#1313).
pub fn text(shared: &Shared) -> String {
    let s = shared.stats.snapshot();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        out.push_str(&format!(
            "# HELP smtpd_{name} {help}\n# TYPE smtpd_{name} {kind}\n"
        ));
        for (labels, v) in samples {
            if labels.is_empty() {
                out.push_str(&format!("smtpd_{name} {v}\n"));
            } else {
                out.push_str(&format!("smtpd_{name}{{{labels}}} {v}\n"));
            }
        }
    };
    metric(
        "sessions_total",
        "counter",
        "Sessions since start.",
        &[
            ("protocol=\"smtp\"", s.smtp_total),
            ("protocol=\"pop3\"", s.pop3_total),
        ],
    );
    metric(
        "sessions_active",
        "gauge",
        "Sessions open now.",
        &[
            ("protocol=\"smtp\"", s.smtp_active),
            ("protocol=\"pop3\"", s.pop3_active),
        ],
    );
    metric(
        "messages_accepted_total",
        "counter",
        "Messages acknowledged with 250 after DATA.",
        &[("", s.messages_accepted)],
    );
    metric(
        "messages_rejected_total",
        "counter",
        "Messages refused after DATA.",
        &[("", s.messages_rejected)],
    );
    metric(
        "bytes_accepted_total",
        "counter",
        "Octets of accepted messages.",
        &[("", s.bytes_accepted)],
    );
    metric(
        "deliveries_total",
        "counter",
        "Copies written into new/.",
        &[("", s.deliveries)],
    );
    metric(
        "connections_refused_total",
        "counter",
        "Connections refused by limits or pause.",
        &[("", s.refused)],
    );
    metric(
        "pop3_logins_total",
        "counter",
        "Successful POP3 logins.",
        &[("", s.pop3_logins)],
    );
    metric(
        "pop3_failed_logins_total",
        "counter",
        "Failed POP3 logins.",
        &[("", s.pop3_failed_logins)],
    );
    metric(
        "pop3_retrieved_total",
        "counter",
        "Messages sent by RETR.",
        &[("", s.pop3_retrieved)],
    );
    metric(
        "pop3_deleted_total",
        "counter",
        "Messages deleted at QUIT.",
        &[("", s.pop3_deleted)],
    );
    let refusals: Vec<(String, u64)> = shared
        .stats
        .refusals()
        .into_iter()
        .map(|(stage, reason, n)| (format!("stage=\"{stage}\",reason=\"{reason}\""), n))
        .collect();
    let refusals: Vec<(&str, u64)> = refusals.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "refusals_total",
        "counter",
        "MAIL, RCPT and DATA commands refused, by stage and reason.",
        &refusals,
    );
    let (queued, deferred) = shared.outbound.counts();
    metric(
        "queue_messages",
        "gauge",
        "Messages in the outbound queue, and those with a deferred recipient.",
        &[("state=\"all\"", queued), ("state=\"deferred\"", deferred)],
    );
    metric(
        "remote_recipients_total",
        "counter",
        "Outbound recipients by outcome: accepted by the next hop, deferred tries, failed.",
        &[
            ("outcome=\"delivered\"", s.remote_delivered),
            ("outcome=\"deferred\"", s.remote_deferred),
            ("outcome=\"failed\"", s.remote_failed),
        ],
    );
    let (opened, reused) = shared.outbound.sessions();
    metric(
        "remote_sessions_total",
        "counter",
        "SMTP sessions with next hops: opened, and reused from the connection cache.",
        &[("kind=\"opened\"", opened), ("kind=\"reused\"", reused)],
    );
    metric(
        "http_waits",
        "gauge",
        "HTTP waits (GET /api/v1/wait) in progress.",
        &[("", shared.http_waiters.active() as u64)],
    );
    metric(
        "http_event_streams",
        "gauge",
        "HTTP event streams (GET /api/v1/events) open.",
        &[("", shared.http_streams.active() as u64)],
    );
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[("", shared.started.elapsed().as_secs())],
    );
    metric(
        "smtp_paused",
        "gauge",
        "1 while SMTP intake is paused.",
        &[("", u64::from(shared.paused()))],
    );
    if let Some(t) = shared.tls_info() {
        let labels = format!(
            "names=\"{}\",issuer=\"{}\"",
            label(&t.names.join(",")),
            label(&t.issuer)
        );
        metric(
            "tls_certificate_info",
            "gauge",
            "1, labelled with the TLS certificate's names and issuer.",
            &[(labels.as_str(), 1)],
        );
        metric(
            "tls_certificate_not_after_seconds",
            "gauge",
            "Unix time the TLS certificate in use expires (0: unreadable).",
            &[("", t.not_after.unwrap_or(0))],
        );
        metric(
            "tls_certificate_temporary",
            "gauge",
            "1 while ACME's temporary self-signed certificate is in use.",
            &[("", u64::from(t.temporary))],
        );
        if t.acme {
            metric(
                "acme_next_renewal_seconds",
                "gauge",
                "Unix time of the next ACME attempt (renewal or retry; 0: none planned).",
                &[("", t.next_renewal.unwrap_or(0))],
            );
            metric(
                "acme_failures",
                "gauge",
                "ACME attempts failed in a row (0 after a success); the error is in `smtpctl tls`.",
                &[("", u64::from(t.failures))],
            );
            metric(
                "acme_last_success_seconds",
                "gauge",
                "Unix time of the last certificate obtained (0: none since start).",
                &[("", t.last_success.unwrap_or(0))],
            );
        }
    }
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
