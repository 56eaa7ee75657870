//! `smtp-send bench`: a load generator like Postfix's smtp-source. N concurrent sessions, M
//! messages each, of a given size and recipient count; reports throughput, latency percentiles and
//! errors by reply code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::smtp::{Client, ClientError, transaction};

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub addr: SocketAddr,
    pub sessions: usize,
    /// Messages per session.
    pub messages: usize,
    /// Approximate message size in octets.
    pub size: usize,
    pub rcpts: usize,
    /// Recipients are `bench<k>@<domain>`.
    pub domain: String,
    pub ehlo: String,
    pub timeout: Duration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchReport {
    pub sessions: usize,
    pub messages_sent: u64,
    pub messages_failed: u64,
    pub bytes_sent: u64,
    pub elapsed_secs: f64,
    pub messages_per_sec: f64,
    pub mb_per_sec: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    /// Failures by reply code ("452", ...) or by kind ("connect", "timeout", "closed", ...).
    pub errors: BTreeMap<String, u64>,
}

impl BenchReport {
    pub fn summary(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_string()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "{} messages in {:.2} s over {} sessions: {:.1} msg/s, {:.2} MB/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms; errors: {}",
            self.messages_sent,
            self.elapsed_secs,
            self.sessions,
            self.messages_per_sec,
            self.mb_per_sec,
            self.latency_ms_p50,
            self.latency_ms_p90,
            self.latency_ms_p99,
            errors
        )
    }
}

/// The message every session sends: headers, then 76-character lines up to `size` octets.
pub fn message(size: usize, domain: &str) -> Vec<u8> {
    let mut m = format!(
        "From: <bench@smtp-send.invalid>\r\nTo: <bench0@{domain}>\r\nSubject: smtp-send bench\r\nMessage-ID: <bench.{}@smtp-send.invalid>\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

#[derive(Default)]
struct SessionResult {
    sent: u64,
    failed: u64,
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

fn kind(e: &ClientError) -> String {
    match e {
        ClientError::Connect { .. } => "connect".into(),
        ClientError::Timeout(_) => "timeout".into(),
        ClientError::Closed => "closed".into(),
        ClientError::Io(_) => "io".into(),
        ClientError::Malformed(_) => "malformed".into(),
        ClientError::TooBig { .. } => "too big".into(),
    }
}

async fn session(
    cfg: Arc<BenchConfig>,
    msg: Arc<Vec<u8>>,
    on_message: Arc<dyn Fn() + Send + Sync>,
) -> SessionResult {
    let mut r = SessionResult::default();
    let to: Vec<String> = (0..cfg.rcpts.max(1))
        .map(|k| format!("bench{k}@{}", cfg.domain))
        .collect();
    let fail_all = |r: &mut SessionResult, what: String, left: usize| {
        r.failed += left as u64;
        *r.errors.entry(what).or_default() += left as u64;
    };
    let (mut c, greeting) = match Client::connect(cfg.addr, cfg.timeout).await {
        Ok(x) => x,
        Err(e) => {
            fail_all(&mut r, kind(&e), cfg.messages);
            return r;
        }
    };
    if greeting.code != 220 {
        fail_all(&mut r, greeting.code.to_string(), cfg.messages);
        return r;
    }
    match c.hello(&cfg.ehlo).await {
        Ok(h) if h.is_positive() => {}
        Ok(h) => {
            fail_all(&mut r, h.code.to_string(), cfg.messages);
            return r;
        }
        Err(e) => {
            fail_all(&mut r, kind(&e), cfg.messages);
            return r;
        }
    }
    for i in 0..cfg.messages {
        let t0 = Instant::now();
        match transaction(&mut c, "bench@smtp-send.invalid", &to, &msg).await {
            Ok(o) if o.delivered => {
                r.sent += 1;
                r.latencies.push(t0.elapsed());
            }
            Ok(o) => {
                r.failed += 1;
                *r.errors.entry(o.reply.code.to_string()).or_default() += 1;
                if o.reply.code == 421 {
                    fail_all(&mut r, "421".into(), cfg.messages - i - 1);
                    return r;
                }
            }
            Err(e) => {
                fail_all(&mut r, kind(&e), cfg.messages - i);
                return r;
            }
        }
        on_message();
    }
    let _ = c.command("QUIT").await;
    r
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs the load; `on_message` is called after each message (for a progress bar).
pub async fn run(cfg: BenchConfig, on_message: Arc<dyn Fn() + Send + Sync>) -> BenchReport {
    let msg = Arc::new(message(cfg.size, &cfg.domain));
    let cfg = Arc::new(cfg);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cfg.sessions {
        tasks.push(tokio::spawn(session(
            Arc::clone(&cfg),
            Arc::clone(&msg),
            Arc::clone(&on_message),
        )));
    }
    let mut report = BenchReport {
        sessions: cfg.sessions,
        ..Default::default()
    };
    let mut latencies = Vec::new();
    for t in tasks {
        let r = t.await.unwrap_or_default();
        report.messages_sent += r.sent;
        report.messages_failed += r.failed;
        latencies.extend(r.latencies);
        for (k, v) in r.errors {
            *report.errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    latencies.sort();
    report.bytes_sent = report.messages_sent * msg.len() as u64;
    report.elapsed_secs = elapsed;
    report.messages_per_sec = report.messages_sent as f64 / elapsed;
    report.mb_per_sec = report.bytes_sent as f64 / 1e6 / elapsed;
    report.latency_ms_p50 = percentile(&latencies, 0.50);
    report.latency_ms_p90 = percentile(&latencies, 0.90);
    report.latency_ms_p99 = percentile(&latencies, 0.99);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_size_and_percentiles() {
        let m = message(1024, "localhost");
        assert!(m.len() >= 1024 - 80 && m.len() <= 1024, "{}", m.len());
        assert!(m.ends_with(b"\r\n"));
        let small = message(10, "localhost");
        assert!(small.starts_with(b"From: "));
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), 51.0);
        assert_eq!(percentile(&d, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
