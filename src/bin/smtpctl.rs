//! `smtpctl`: controls a running smtpd through its Unix socket, and makes password hashes and
//! DKIM keys.
//! Exit status: 0 done, 1 failed (daemon not running, request refused, test not delivered),
//! 2 usage error. `wait`: 0 found, 1 timed out, 2 any error.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use smtpd::cli::smtpctl::{Args, Cmd, Intake, QueueCmd, TlsCmd};
use smtpd::control::client;
use smtpd::control::proto::{
    DrainResult, LogLevelResult, MailboxInfo, Outcome, QueueAction, QueuedMessage, ReloadInfo,
    Report, Request, SendTestResult, Status, TlsInfo, WaitQuery,
};
use smtpd::control::render;
use smtpd::mailbox::headers::iso_utc;
use smtpd::{out, outln};

#[path = "smtpctl/dkim_keygen.rs"]
mod dkim_keygen;

/// --socket, else the config's [control].socket, else the default config's, else the default.
fn socket_path(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    let local = Path::new("config/smtpd.toml");
    let system = Path::new("/etc/smtpd/smtpd.toml");
    let config = match &args.config {
        Some(c) => c.as_path(),
        None if local.exists() => local,
        None if system.exists() => system,
        None => return Ok(smtpd::config::Control::default().socket),
    };
    let c = smtpd::config::load(config)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot find the control socket in {}", config.display()))?;
    Ok(c.control.socket)
}

fn call(args: &Args, request: Request, timeout: Duration) -> anyhow::Result<serde_json::Value> {
    let mut socket = socket_path(args)?;
    if socket.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        socket = cwd.join(socket);
    }
    Ok(client::call(&socket, request, timeout)?)
}

fn print_json(v: &serde_json::Value) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn reload_line(r: &ReloadInfo) -> String {
    if r.applied {
        let what = if r.changes.is_empty() {
            "no changes".to_string()
        } else {
            r.changes.join("; ")
        };
        format!("{} applied ({what})", iso_utc(r.at))
    } else {
        format!("{} refused ({})", iso_utc(r.at), r.errors.join("; "))
    }
}

fn status(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::Status, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
        return Ok(true);
    }
    let s: Status = serde_json::from_value(v)?;
    let c = &s.counters;
    let listeners: Vec<String> = s
        .listeners
        .iter()
        .map(|l| format!("{} {}", l.protocol, l.address))
        .collect();
    outln!(
        "smtpd {}, pid {}, up {}",
        s.version,
        s.pid,
        duration(s.uptime_secs)
    );
    outln!("config:       {}", s.config);
    outln!("listening:    {}", listeners.join(", "));
    outln!(
        "sessions:     smtp {} active / {} total, pop3 {} active / {} total, {} refused",
        s.sessions.smtp.active,
        s.sessions.smtp.total,
        s.sessions.pop3.active,
        s.sessions.pop3.total,
        c.refused
    );
    outln!(
        "messages:     {} accepted ({}), {} rejected, {} deliveries",
        c.messages_accepted,
        human_bytes(c.bytes_accepted),
        c.messages_rejected,
        c.deliveries
    );
    let why: Vec<String> = c
        .refusals
        .iter()
        .map(|(k, n)| format!("{} {n}", k.replace('/', " ")))
        .collect();
    outln!(
        "refused:      {} MAIL/RCPT/DATA{}",
        c.refused_commands,
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        }
    );
    outln!(
        "outbound:     {} queued ({} deferred), {} relayed, {} failed",
        s.queue.messages,
        s.queue.deferred,
        c.remote_delivered,
        c.remote_failed
    );
    outln!(
        "pop3:         {} logins ({} failed), {} retrieved, {} deleted",
        c.pop3_logins,
        c.pop3_failed_logins,
        c.pop3_retrieved,
        c.pop3_deleted
    );
    outln!(
        "smtp intake:  {}",
        if s.smtp_paused { "PAUSED" } else { "running" }
    );
    if s.draining {
        outln!("health:       DRAINING (/health answers 503; `smtpctl undrain` ends it)");
    }
    if let Some(t) = &s.tls {
        outln!("tls:          {}", tls_summary(t));
    }
    outln!("log level:    {}", s.log_level);
    outln!(
        "last reload:  {}",
        s.last_reload
            .as_ref()
            .map(reload_line)
            .unwrap_or_else(|| "none".into())
    );
    Ok(true)
}

/// One line for `status`: names, issuer, expiry, and the ACME state.
fn tls_summary(t: &TlsInfo) -> String {
    let mut out = format!("{} ", t.names.join(", "));
    if t.temporary {
        out.push_str("(temporary self-signed, waiting for ACME)");
    } else if let Some(e) = &t.error {
        out.push_str(&format!("(unreadable: {e})"));
    } else {
        out.push_str(&format!(
            "from {}, until {}",
            t.issuer,
            t.not_after.map(iso_utc).unwrap_or_else(|| "?".into())
        ));
    }
    if t.acme {
        if let Some(n) = t.next_renewal {
            out.push_str(&format!(", next ACME attempt {}", iso_utc(n)));
        }
        if let Some(e) = &t.last_error {
            out.push_str(&format!(", last error: {e}"));
        }
    }
    out
}

fn print_tls(t: &TlsInfo) {
    let or_none = |v: Option<u64>| v.map(iso_utc).unwrap_or_else(|| "none".into());
    outln!("names:        {}", t.names.join(", "));
    if let Some(e) = &t.error {
        outln!("certificate:  unreadable: {e}");
    } else if t.temporary {
        outln!("certificate:  temporary self-signed (until ACME's arrives)");
    }
    outln!("issuer:       {}", t.issuer);
    outln!("not after:    {}", or_none(t.not_after));
    if t.acme {
        outln!("acme:         {}", t.directory);
        outln!("next renewal: {}", or_none(t.next_renewal));
        outln!("last attempt: {}", or_none(t.last_attempt));
        outln!("last success: {}", or_none(t.last_success));
        outln!(
            "last error:   {}",
            t.last_error.as_deref().unwrap_or("none")
        );
        if t.failures > 0 {
            outln!("failures:     {} in a row", t.failures);
        }
    } else {
        outln!("acme:         off (the certificate comes from [tls] cert and key)");
    }
}

fn tls(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::Tls, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
        return Ok(true);
    }
    print_tls(&serde_json::from_value(v)?);
    Ok(true)
}

fn tls_renew(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::TlsRenew, Duration::from_secs(340))?;
    if args.json {
        print_json(&v);
        return Ok(true);
    }
    let t: TlsInfo = serde_json::from_value(v)?;
    outln!("renewed: the new certificate is in use on every TLS listener");
    print_tls(&t);
    Ok(true)
}

fn mailboxes(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::Mailboxes, Duration::from_secs(60))?;
    if args.json {
        print_json(&v);
        return Ok(true);
    }
    let list: Vec<MailboxInfo> = serde_json::from_value(v)?;
    if list.is_empty() {
        eprintln!("smtpctl: no mailboxes yet");
    }
    let width = list.iter().map(|m| m.address.len()).max().unwrap_or(0);
    for m in list {
        outln!(
            "{:width$}  {:>6} messages ({} new, {} cur)  {:>10}  newest {}",
            m.address,
            m.messages,
            m.new,
            m.cur,
            human_bytes(m.bytes),
            m.newest.map(iso_utc).unwrap_or_else(|| "-".into()),
        );
    }
    Ok(true)
}

fn send_test(args: &Args, to: Option<String>, from: Option<String>) -> anyhow::Result<bool> {
    let v = call(
        args,
        Request::SendTest { to, from },
        Duration::from_secs(60),
    )?;
    let r: SendTestResult = serde_json::from_value(v.clone())?;
    if args.json {
        print_json(&v);
    } else if r.delivered {
        outln!(
            "delivered to {} in {} ms: {}\n  {}",
            r.to,
            r.latency_ms,
            r.reply,
            r.path.as_deref().unwrap_or("")
        );
    } else {
        outln!(
            "NOT delivered to {} after {} ms: {}",
            r.to,
            r.latency_ms,
            r.reply
        );
    }
    Ok(r.delivered)
}

fn reload_check(args: &Args) -> anyhow::Result<bool> {
    let config = match &args.config {
        Some(c) => Some(
            std::path::absolute(c)
                .with_context(|| format!("cannot resolve {}", c.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let v = call(
        args,
        Request::ReloadCheck { config },
        Duration::from_secs(60),
    )?;
    let r: ReloadInfo = serde_json::from_value(v.clone())?;
    let ok = r.errors.is_empty();
    if args.json {
        print_json(&v);
    } else if ok {
        outln!("configuration valid; a reload would apply:");
        if r.changes.is_empty() {
            outln!("  (no changes)");
        }
        for c in &r.changes {
            outln!("  {c}");
        }
    } else {
        outln!("configuration refused; a reload would keep the running one:");
        for e in &r.errors {
            outln!("  {e}");
        }
    }
    Ok(ok)
}

/// `smtpctl wait`: exit 0 found (printed), 1 timed out, 2 on an error (printed).
fn wait(args: &Args, query: WaitQuery) -> ExitCode {
    // The daemon answers by the timeout (capped by its max_wait_secs); some slack for the scan.
    let timeout = query
        .timeout
        .as_deref()
        .and_then(smtpd::http::query::parse_timeout)
        .unwrap_or(Duration::from_secs(30))
        .saturating_add(Duration::from_secs(15));
    let v = match call(args, Request::Wait { query }, timeout) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("smtpctl: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(found) = v.get("found") {
        if args.json {
            outln!("{}", serde_json::to_string(found).unwrap_or_default());
        } else {
            out!("{}", render::found(found));
        }
        return ExitCode::SUCCESS;
    }
    let why = v["timed_out"].as_str().unwrap_or("timed out");
    if args.json {
        outln!("{}", serde_json::json!({ "timed_out": why }));
    }
    eprintln!("smtpctl: {why}");
    ExitCode::FAILURE
}

fn watch(args: &Args, address: Option<String>) -> anyhow::Result<bool> {
    let mut socket = socket_path(args)?;
    if socket.is_relative()
        && let Ok(cwd) = std::env::current_dir()
    {
        socket = cwd.join(socket);
    }
    let json = args.json;
    client::stream(&socket, Request::Watch { address }, |v| {
        if v.get("watching").is_some() {
            if !json {
                eprintln!("smtpctl: watching {} (Ctrl-C to stop)", socket.display());
            }
            return true;
        }
        if json {
            outln!("{v}");
        } else if let Ok(e) = serde_json::from_value::<smtpd::net::watch::WatchEvent>(v.clone()) {
            let mut line = format!("{}  {:<21}  {:<15}", iso_utc(e.time), e.peer, e.event);
            if let Some(f) = &e.from {
                line.push_str(&format!("  <{f}> → {}", e.to.join(", ")));
            }
            if let Some(n) = e.size {
                line.push_str(&format!("  {}", human_bytes(n)));
            }
            if !e.result.is_empty() {
                line.push_str(&format!("  {}", e.result));
            }
            outln!("{line}");
        } else {
            outln!("{v}");
        }
        let _ = std::io::stdout().flush();
        true
    })?;
    Ok(true)
}

fn metrics(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::Metrics, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
    } else {
        out!("{}", v.as_str().unwrap_or_default());
    }
    Ok(true)
}

fn transcript(args: &Args, id: &str) -> anyhow::Result<bool> {
    let v = call(
        args,
        Request::Transcript { id: id.to_string() },
        Duration::from_secs(10),
    )?;
    if args.json {
        print_json(&v);
    } else {
        out!("{}", v.as_str().unwrap_or_default());
    }
    Ok(true)
}

fn selftest(args: &Args, quick: bool) -> anyhow::Result<bool> {
    let v = call(args, Request::Selftest { quick }, Duration::from_secs(300))?;
    let r: Report = serde_json::from_value(v.clone())?;
    if args.json {
        print_json(&v);
    } else {
        outln!(
            "selftest of smtp {}{}",
            r.smtp,
            r.pop3
                .as_deref()
                .map(|p| format!(", pop3 {p}"))
                .unwrap_or_default()
        );
        let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let rfc_width = r.checks.iter().map(|c| c.rfc.len()).max().unwrap_or(0);
        for c in &r.checks {
            let mark = match c.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail => "FAIL",
                Outcome::Skip => "skip",
            };
            outln!(
                "{mark}  {:width$}  {:rfc_width$}  {}",
                c.name,
                c.rfc,
                c.seen
            );
        }
        let failed = r
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .count();
        outln!(
            "{}: {} checks, {failed} failed",
            if r.passed { "passed" } else { "FAILED" },
            r.checks.len()
        );
    }
    Ok(r.passed)
}

fn reload(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::Reload, Duration::from_secs(60))?;
    let r: ReloadInfo = serde_json::from_value(v.clone())?;
    if args.json {
        print_json(&v);
    } else if r.applied {
        outln!("configuration reloaded");
        for c in &r.changes {
            outln!("  {c}");
        }
    } else {
        outln!("reload refused; the running configuration stays in force:");
        for e in &r.errors {
            outln!("  {e}");
        }
    }
    Ok(r.applied)
}

fn log_level(args: &Args, level: String) -> anyhow::Result<bool> {
    let v = call(args, Request::LogLevel { level }, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
    } else {
        let r: LogLevelResult = serde_json::from_value(v)?;
        outln!("log level: {} (was {})", r.level, r.previous);
    }
    Ok(true)
}

fn intake(args: &Args, pause: bool) -> anyhow::Result<bool> {
    let request = if pause {
        Request::Pause
    } else {
        Request::Resume
    };
    let v = call(args, request, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
    } else if pause {
        outln!("smtp intake paused: new SMTP sessions get 421 4.3.2 until `smtpctl resume smtp`");
    } else {
        outln!("smtp intake resumed");
    }
    Ok(true)
}

fn drain(args: &Args, timeout: &str, settle: &str) -> anyhow::Result<bool> {
    let parse = |what: &str, text: &str| {
        smtpd::http::query::parse_timeout(text)
            .with_context(|| format!("--{what} {text:?}: not a duration (e.g. 60s, 5m, 500ms)"))
    };
    let (timeout, settle) = (parse("timeout", timeout)?, parse("settle", settle)?);
    let request = Request::Drain {
        timeout_secs: timeout.as_secs().max(1),
        settle_secs: settle.as_secs(),
    };
    let v = call(
        args,
        request,
        timeout.saturating_add(Duration::from_secs(10)),
    )?;
    if args.json {
        print_json(&v);
    }
    let r: DrainResult = serde_json::from_value(v)?;
    if !args.json {
        match r.drained {
            true => outln!(
                "drained in {} ms: no session left; /health answers 503 until a restart or `smtpctl undrain`",
                r.waited_ms
            ),
            false => outln!(
                "not drained: {} session(s) still open after {} ms; /health answers 503",
                r.sessions,
                r.waited_ms
            ),
        }
    }
    Ok(r.drained)
}

fn undrain(args: &Args) -> anyhow::Result<bool> {
    let v = call(args, Request::Undrain, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
    } else {
        outln!("drain ended: /health answers 200");
    }
    Ok(true)
}

fn queue(args: &Args, action: Option<&QueueCmd>) -> anyhow::Result<bool> {
    let action = match action {
        None => QueueAction::List,
        Some(QueueCmd::Show { id }) => QueueAction::Show { id: id.clone() },
        Some(QueueCmd::Flush { id }) => QueueAction::Flush { id: id.clone() },
        Some(QueueCmd::Remove { id }) => QueueAction::Remove { id: id.clone() },
        Some(QueueCmd::Hold { id }) => QueueAction::Hold { id: id.clone() },
        Some(QueueCmd::Release { id }) => QueueAction::Release { id: id.clone() },
    };
    let listing = matches!(action, QueueAction::List | QueueAction::Show { .. });
    let one = matches!(action, QueueAction::Show { .. });
    let v = call(args, Request::Queue { action }, Duration::from_secs(10))?;
    if args.json {
        print_json(&v);
    } else if listing {
        let list: Vec<QueuedMessage> = if one {
            vec![serde_json::from_value(v)?]
        } else {
            serde_json::from_value(v)?
        };
        out!("{}", smtpd::control::render::queue(&list));
    } else {
        outln!("{v}");
    }
    Ok(true)
}

fn encrypt(arg: Option<String>) -> anyhow::Result<bool> {
    let password = match arg {
        Some(p) => {
            eprintln!(
                "smtpctl: warning: a password given as an argument is visible to other users (ps); pipe it on stdin instead"
            );
            p
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprint!("Password: ");
                let _ = std::io::stderr().flush();
            }
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        bail!("empty password: give one as an argument or on stdin");
    }
    let hash = smtpd::auth::password::hash(&password)?;
    outln!("{hash}");
    Ok(true)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Cmd::Status => status(&args),
        Cmd::Mailboxes => mailboxes(&args),
        Cmd::SendTest { to, from } => send_test(&args, to.clone(), from.clone()),
        Cmd::Reload { check: false } => reload(&args),
        Cmd::Reload { check: true } => reload_check(&args),
        Cmd::Metrics => metrics(&args),
        Cmd::Selftest { quick } => selftest(&args, *quick),
        Cmd::Transcript { id } => transcript(&args, id),
        Cmd::Watch { address } => watch(&args, address.clone()),
        Cmd::Wait {
            to,
            from,
            subject,
            contains,
            mailbox,
            since,
            timeout,
        } => {
            return wait(
                &args,
                WaitQuery {
                    to: to.clone(),
                    from: from.clone(),
                    subject: subject.clone(),
                    contains: contains.clone(),
                    mailbox: mailbox.clone(),
                    since: since.clone(),
                    timeout: Some(timeout.clone()),
                },
            );
        }
        Cmd::LogLevel { level } => log_level(&args, level.clone()),
        Cmd::Drain { timeout, settle } => drain(&args, timeout, settle),
        Cmd::Undrain => undrain(&args),
        Cmd::Pause { what: Intake::Smtp } => intake(&args, true),
        Cmd::Resume { what: Intake::Smtp } => intake(&args, false),
        Cmd::Queue { action } => queue(&args, action.as_ref()),
        Cmd::Tls { action: None } => tls(&args),
        Cmd::Tls {
            action: Some(TlsCmd::Renew),
        } => tls_renew(&args),
        Cmd::Encrypt { password } => encrypt(password.clone()),
        Cmd::DkimKeygen {
            domain,
            selector,
            algorithm,
            bits,
            out,
        } => dkim_keygen::run(
            &args,
            dkim_keygen::Wanted {
                domain,
                selector,
                algorithm: *algorithm,
                bits: *bits,
                out: out.as_deref(),
            },
        ),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("smtpctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
