//! `smtp-send bench`: its flags to a [`BenchConfig`], a progress bar on a terminal, and the
//! report printed (a summary, or JSON) with the exit status. The load itself is [`super::bench`].

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use super::bench::{self, BenchConfig};
use super::exit::{Failure, Status};
use super::target::{local_name, resolve};
use crate::cli::smtp_send::BenchArgs;
use crate::outln;

/// Runs the load the flags describe; refused or failed messages make the status [`Status::Rejected`].
pub fn run(b: BenchArgs) -> Result<Status, Failure> {
    let addr = resolve(&b.host, b.port).map_err(Failure::connection)?;
    if b.sessions == 0 || b.messages == 0 {
        return Err(Failure::usage(
            "--sessions and --messages must be at least 1",
        ));
    }
    let total = (b.sessions * b.messages) as u64;
    let bar = if std::io::stderr().is_terminal() && !b.json {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} messages {per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(pb)
    } else {
        None
    };
    let tick_bar = bar.clone();
    let on_message: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        if let Some(pb) = &tick_bar {
            pb.inc(1);
        }
    });
    let cfg = BenchConfig {
        addr,
        sessions: b.sessions,
        messages: b.messages,
        size: b.size,
        rcpts: b.rcpts,
        domain: b.domain,
        ehlo: local_name(),
        timeout: Duration::from_secs(b.timeout),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::connection)?;
    let report = rt.block_on(bench::run(cfg, on_message));
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    if b.json {
        outln!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        outln!("{}", report.summary());
    }
    Ok(if report.messages_failed == 0 {
        Status::Done
    } else {
        Status::Rejected
    })
}
