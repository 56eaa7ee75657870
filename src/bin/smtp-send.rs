//! `smtp-send`: the SMTP client. Interactive (a menu like the original student client), scriptable
//! (flags, or a whole message on stdin as sendmail reads it), and `bench`, a load generator.
//! Exit status: 0 delivered to every recipient, 1 rejected (the reply is shown), 2 usage error,
//! 3 connection or protocol error.

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use smtpd::cli::smtp_send::{Args, BenchArgs, Cmd, MessageArgs};
use smtpd::client::bench::{self, BenchConfig};
use smtpd::client::compose::{self, Draft};
use smtpd::client::smtp::{self, Client, ClientError, LineHook, Outcome};
use smtpd::{out, outln};

const USAGE: u8 = 2;
const REJECTED: u8 = 1;
const CONNECTION: u8 = 3;

/// Any flag that asks for a scripted send.
fn any_message_flag(m: &MessageArgs) -> bool {
    m.from.is_some()
        || !m.to.is_empty()
        || !m.cc.is_empty()
        || m.subject.is_some()
        || m.body.is_some()
        || m.body_file.is_some()
        || m.data.is_some()
        || !m.attach.is_empty()
        || !m.header.is_empty()
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("smtp-send: {msg}");
    ExitCode::from(code)
}

fn default_port() -> u16 {
    smtpd::config::load(std::path::Path::new("config/smtpd.toml"))
        .ok()
        .and_then(|c| c.smtp.listen.first().map(|a| a.port()))
        .filter(|&p| p != 0)
        .unwrap_or(2525)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

fn local_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Where and how to connect.
struct Target<'a> {
    addr: SocketAddr,
    ehlo: &'a str,
    force_helo: bool,
    timeout: Duration,
    /// STARTTLS or implicit TLS, with the name the certificate must carry.
    tls: Option<TlsSetup>,
    auth: Option<(String, String)>,
}

/// TLS setup and credentials, from the flags.
type Security = (Option<TlsSetup>, Option<(String, String)>);

struct TlsSetup {
    implicit: bool,
    config: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
}

/// TLS and AUTH settings from the flags (asks for the password when needed).
fn security(m: &MessageArgs, host: &str) -> Result<Security, String> {
    let tls = if m.starttls || m.tls {
        let config = smtpd::net::tls::client_config(m.cafile.as_deref(), m.insecure)?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
        Some(TlsSetup {
            implicit: m.tls,
            config,
            name,
        })
    } else {
        None
    };
    let auth = match &m.auth {
        None => None,
        Some(user) => {
            let password = match std::env::var("SMTP_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("Password for {user}: "))
                    .map_err(|e| format!("cannot read the password: {e}"))?,
            };
            Some((user.clone(), password))
        }
    };
    Ok((tls, auth))
}

/// The connection settings from the flags (asks for the AUTH password when needed).
fn target<'a>(
    m: &MessageArgs,
    addr: SocketAddr,
    ehlo: &'a str,
    host: &str,
) -> Result<Target<'a>, String> {
    let (tls, auth) = security(m, host)?;
    Ok(Target {
        addr,
        ehlo,
        force_helo: m.helo,
        timeout: Duration::from_secs(m.timeout),
        tls,
        auth,
    })
}

/// Connects, greets (EHLO, or HELO when asked or when EHLO is unknown), runs one transaction.
async fn deliver(
    t: &Target<'_>,
    from: &str,
    to: &[String],
    message: &[u8],
    hook: Option<LineHook>,
) -> Result<Outcome, ClientError> {
    let (ehlo, force_helo) = (t.ehlo, t.force_helo);
    let (mut c, greeting) = match &t.tls {
        Some(s) if s.implicit => {
            Client::connect_tls(t.addr, t.timeout, hook, s.config.clone(), s.name.clone()).await?
        }
        _ => Client::connect_with(t.addr, t.timeout, hook).await?,
    };
    let refused = |reply| Outcome {
        accepted: Vec::new(),
        rejected: Vec::new(),
        reply,
        delivered: false,
    };
    if greeting.code != 220 {
        return Ok(refused(greeting));
    }
    let mut hello = if force_helo {
        c.command(&format!("HELO {ehlo}")).await?
    } else {
        c.hello(ehlo).await?
    };
    if !hello.is_positive() {
        let _ = c.command("QUIT").await;
        return Ok(refused(hello));
    }
    if let Some(s) = t.tls.as_ref().filter(|s| !s.implicit) {
        if !c.has("STARTTLS") {
            return Err(ClientError::Malformed(
                "the server does not offer STARTTLS".into(),
            ));
        }
        let r = c.command("STARTTLS").await?;
        if r.code != 220 {
            return Ok(refused(r));
        }
        c.start_tls(s.config.clone(), s.name.clone()).await?;
        hello = c.hello(ehlo).await?;
        if !hello.is_positive() {
            return Ok(refused(hello));
        }
    }
    if let Some((user, password)) = &t.auth {
        let r = c.auth_plain(user, password).await?;
        if r.code != 235 {
            let _ = c.command("QUIT").await;
            return Ok(refused(r));
        }
    }
    let outcome = smtp::transaction(&mut c, from, to, message).await?;
    let _ = c.command("QUIT").await;
    Ok(outcome)
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(Cmd::Bench(b)) = args.command {
        return run_bench(b);
    }
    let host = args.host.clone().unwrap_or_else(|| "localhost".into());
    let port = args.port.unwrap_or_else(default_port);
    if any_message_flag(&args.msg) {
        scripted(&host, port, args.msg)
    } else {
        interactive(&host, port, &args.msg)
    }
}

fn scripted(host: &str, port: u16, m: MessageArgs) -> ExitCode {
    let Some(from) = m.from.clone() else {
        return fail(
            USAGE,
            "--from is required to send (or run without message flags for the menu)",
        );
    };
    let mut rcpts: Vec<String> = m.to.clone();
    rcpts.extend(m.cc.iter().cloned());
    if rcpts.is_empty() {
        return fail(USAGE, "give at least one --to (or --cc)");
    }
    let stdin_message =
        m.body.is_none() && m.body_file.is_none() && !std::io::stdin().is_terminal();
    let message = match (&m.data, stdin_message) {
        (Some(d), _) => {
            let r = if d == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v).map(|_| v)
            } else {
                std::fs::read(d)
            };
            match r {
                Ok(v) => v,
                Err(e) => return fail(USAGE, format!("cannot read --data {d}: {e}")),
            }
        }
        (None, true) if m.attach.is_empty() && m.subject.is_none() => {
            let mut v = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut v) {
                return fail(USAGE, format!("cannot read the message from stdin: {e}"));
            }
            v
        }
        _ => {
            let body = match (&m.body, &m.body_file) {
                (Some(b), _) => b.clone(),
                (None, Some(f)) => match std::fs::read_to_string(f) {
                    Ok(b) => b,
                    Err(e) => {
                        return fail(
                            USAGE,
                            format!("cannot read --body-file {}: {e}", f.display()),
                        );
                    }
                },
                (None, None) => String::new(),
            };
            let mut headers = Vec::new();
            for h in &m.header {
                match compose::parse_header(h) {
                    Ok(x) => headers.push(x),
                    Err(e) => return fail(USAGE, e),
                }
            }
            let draft = Draft {
                from: from.clone(),
                to: m.to.clone(),
                cc: m.cc.clone(),
                subject: m.subject.clone().unwrap_or_default(),
                body,
                attachments: m.attach.clone(),
                headers,
            };
            match compose::build(&draft) {
                Ok(v) => v,
                Err(e) => return fail(USAGE, e),
            }
        }
    };
    let addr = match resolve(host, port) {
        Ok(a) => a,
        Err(e) => return fail(CONNECTION, e),
    };
    let json_out = m.json;
    let hook: Option<LineHook> = m.verbose.then(|| {
        Box::new(move |line: &str| {
            if json_out {
                eprintln!("{line}");
            } else {
                outln!("{line}");
            }
        }) as LineHook
    });
    let ehlo = m.ehlo.clone().unwrap_or_else(local_name);
    let target = match target(&m, addr, &ehlo, host) {
        Ok(t) => t,
        Err(e) => return fail(USAGE, e),
    };
    let result = runtime().block_on(deliver(&target, &from, &rcpts, &message, hook));
    report(result, &message, m.json)
}

fn report(result: Result<Outcome, ClientError>, message: &[u8], json_out: bool) -> ExitCode {
    match result {
        Err(ClientError::TooBig { size, max }) => {
            if json_out {
                outln!(
                    "{}",
                    json!({"delivered": false, "error": format!("message of {size} octets is above the server's SIZE {max}")})
                );
            }
            fail(
                REJECTED,
                format!(
                    "not sent: the message is {size} octets and the server accepts at most {max} (SIZE)"
                ),
            )
        }
        Err(e) => {
            if json_out {
                outln!("{}", json!({"delivered": false, "error": e.to_string()}));
            }
            fail(CONNECTION, e)
        }
        Ok(o) => {
            let all = o.delivered && o.rejected.is_empty();
            if json_out {
                let rejected: Vec<_> = o
                    .rejected
                    .iter()
                    .map(|(a, r)| json!({"address": a, "reply": r.last_line()}))
                    .collect();
                outln!(
                    "{}",
                    json!({
                        "delivered": o.delivered,
                        "accepted": if o.delivered { o.accepted.clone() } else { Vec::new() },
                        "rejected": rejected,
                        "reply": o.reply.last_line(),
                        "bytes": message.len(),
                    })
                );
            } else {
                for (a, r) in &o.rejected {
                    eprintln!("smtp-send: recipient {a} refused: {}", r.last_line());
                }
                if o.delivered {
                    outln!(
                        "delivered to {}: {}",
                        o.accepted.join(", "),
                        o.reply.last_line()
                    );
                } else {
                    eprintln!("smtp-send: not delivered: {}", o.reply.last_line());
                }
            }
            if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(REJECTED)
            }
        }
    }
}

/// Reads answers: with line editing and history on a terminal, plain lines otherwise.
enum Prompter {
    Tty(Box<rustyline::DefaultEditor>),
    Plain,
}

impl Prompter {
    fn new() -> Prompter {
        if std::io::stdin().is_terminal()
            && let Ok(rl) = rustyline::DefaultEditor::new()
        {
            return Prompter::Tty(Box::new(rl));
        }
        Prompter::Plain
    }

    /// One answer; `None` at end of input (or Ctrl-C/Ctrl-D).
    fn field(&mut self, prompt: &str) -> Option<String> {
        match self {
            Prompter::Tty(rl) => match rl.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = rl.add_history_entry(line.as_str());
                    }
                    Some(line)
                }
                Err(_) => None,
            },
            Prompter::Plain => {
                out!("{prompt}");
                Self::plain_line()
            }
        }
    }

    /// A body line: plain reads even on a terminal, so pasted text is never lost.
    fn body_line(&mut self) -> Option<String> {
        Self::plain_line()
    }

    fn plain_line() -> Option<String> {
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
        }
    }
}

/// The original client's menu: send a message, send a test message, quit.
fn interactive(host: &str, port: u16, m: &MessageArgs) -> ExitCode {
    let addr = match resolve(host, port) {
        Ok(a) => a,
        Err(e) => return fail(CONNECTION, e),
    };
    let rt = runtime();
    let ehlo = m.ehlo.clone().unwrap_or_else(local_name);
    let mut p = Prompter::new();
    outln!("smtp-send: server {host}:{port}");
    loop {
        outln!();
        outln!("1) Send a message");
        outln!("2) Send a test message");
        outln!("3) Quit");
        let Some(choice) = p.field("Choice: ") else {
            return ExitCode::SUCCESS;
        };
        let (from, to, subject, body) = match choice.trim() {
            "1" => {
                let Some(from) = p.field("From: ") else {
                    return ExitCode::SUCCESS;
                };
                let Some(to) = p.field("To (comma-separated): ") else {
                    return ExitCode::SUCCESS;
                };
                let Some(subject) = p.field("Subject: ") else {
                    return ExitCode::SUCCESS;
                };
                outln!("Body (end with a line holding only \".\" or \"FIN\"):");
                let mut body = String::new();
                while let Some(line) = p.body_line() {
                    if line == "." || line == "FIN" {
                        break;
                    }
                    body.push_str(&line);
                    body.push('\n');
                }
                (from, to, subject, body)
            }
            "2" => {
                let Some(to) = p.field("To [postmaster@localhost]: ") else {
                    return ExitCode::SUCCESS;
                };
                let to = if to.trim().is_empty() {
                    "postmaster@localhost".to_string()
                } else {
                    to
                };
                (
                    format!("smtp-send@{}", local_name()),
                    to,
                    "smtp-send test message".to_string(),
                    "This is a test message sent by smtp-send.\n".to_string(),
                )
            }
            "3" | "q" | "quit" => return ExitCode::SUCCESS,
            other => {
                outln!("Unknown choice {other:?}: type 1, 2 or 3.");
                continue;
            }
        };
        let to: Vec<String> = to
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if from.trim().is_empty() || to.is_empty() {
            outln!("A sender and at least one recipient are needed.");
            continue;
        }
        let draft = Draft {
            from: from.trim().to_string(),
            to: to.clone(),
            subject,
            body,
            ..Default::default()
        };
        let message = match compose::build(&draft) {
            Ok(v) => v,
            Err(e) => {
                outln!("Cannot build the message: {e}");
                continue;
            }
        };
        // Server replies as they arrive.
        let hook: LineHook = Box::new(|line: &str| {
            if let Some(s) = line.strip_prefix("S: ") {
                outln!("  {s}");
                let _ = std::io::stdout().flush();
            }
        });
        let target = match target(m, addr, &ehlo, host) {
            Ok(t) => t,
            Err(e) => {
                outln!("{e}");
                continue;
            }
        };
        let result = rt.block_on(deliver(&target, &draft.from, &to, &message, Some(hook)));
        match result {
            Ok(o) => {
                for (a, r) in &o.rejected {
                    outln!("Recipient {a} refused: {}", r.last_line());
                }
                if o.delivered {
                    outln!("Message delivered to {}.", o.accepted.join(", "));
                } else {
                    outln!("Message not delivered: {}", o.reply.last_line());
                }
            }
            Err(e) => outln!("Sending failed: {e}"),
        }
    }
}

fn run_bench(b: BenchArgs) -> ExitCode {
    let addr = match resolve(&b.host, b.port) {
        Ok(a) => a,
        Err(e) => return fail(CONNECTION, e),
    };
    if b.sessions == 0 || b.messages == 0 {
        return fail(USAGE, "--sessions and --messages must be at least 1");
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(CONNECTION, e),
    };
    let report = rt.block_on(bench::run(cfg, on_message));
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    if b.json {
        outln!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        outln!("{}", report.summary());
    }
    if report.messages_failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(REJECTED)
    }
}
