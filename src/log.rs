//! Logging: rotating files in [log].dir (tracing-appender, lines never dropped), plus stderr when
//! running in the foreground; text or JSON.

use anyhow::Context;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation as AppenderRotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

use crate::config::{Log, LogFormat, Rotation};

/// Keep it alive until exit: dropping it flushes the file writer.
pub struct LogGuard {
    _file: WorkerGuard,
}

/// Changes the log level of the running daemon (SIGHUP, `smtpctl log-level`).
pub type LevelSetter = std::sync::Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(false)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(writer)
            .with_target(false)
            .boxed(),
    }
}

pub fn init(cfg: &Log, stderr: bool) -> anyhow::Result<(LogGuard, LevelSetter)> {
    std::fs::create_dir_all(&cfg.dir)
        .with_context(|| format!("cannot create the log directory {}", cfg.dir.display()))?;
    let appender = RollingFileAppender::builder()
        .rotation(match cfg.rotation {
            Rotation::Hourly => AppenderRotation::HOURLY,
            Rotation::Daily => AppenderRotation::DAILY,
            Rotation::Never => AppenderRotation::NEVER,
        })
        .filename_prefix("smtpd.log")
        .max_log_files(cfg.keep)
        .build(&cfg.dir)
        .with_context(|| format!("cannot open a log file in {}", cfg.dir.display()))?;
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(appender);
    let mut layers: Vec<BoxedLayer> = vec![layer(cfg.format, writer, false)];
    if stderr {
        layers.push(layer(cfg.format, std::io::stderr, false));
    }
    let filter =
        EnvFilter::try_new(&cfg.level).with_context(|| format!("bad log level {:?}", cfg.level))?;
    // Only this global filter is reloaded (reloading a per-layer filter panics: tracing#1629).
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .context("cannot install the logger")?;
    let setter: LevelSetter = std::sync::Arc::new(move |level: &str| {
        let f = EnvFilter::try_new(level).map_err(|e| format!("bad log level {level:?}: {e}"))?;
        handle.reload(f).map_err(|e| e.to_string())
    });
    Ok((LogGuard { _file: guard }, setter))
}
