//! `sendmail`: what cron, unattended-upgrades and mailx call to send mail. Reads the message on
//! stdin and submits it to the local smtpd (its first SMTP listener, where loopback clients may
//! send to any domain); exit status as sysexits.h. The work is in `smtpd::client::sendmail`.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use smtpd::cli::sendmail::Args;
use smtpd::client::sendmail::{self as sm, sysexits};

fn fail(code: u8, why: &str) -> ExitCode {
    eprintln!("sendmail: {why}");
    ExitCode::from(code)
}

/// The user's login name (for the default sender).
fn login() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { sysexits::USAGE } else { 0 });
        }
    };
    if args.mode.as_deref().is_some_and(|m| m != "m") {
        return fail(sysexits::USAGE, "only -bm (deliver a message) is supported");
    }
    let path = args.config.clone().unwrap_or_else(|| {
        let local = Path::new("config/smtpd.toml");
        if local.exists() {
            local
        } else {
            Path::new("/etc/smtpd/smtpd.toml")
        }
        .to_path_buf()
    });
    // The configuration is for root and smtpd's group; anyone else submits to the standard port.
    let (addr, hostname, origin) = match smtpd::config::load(&path) {
        Ok(config) => match sm::local_smtpd(&config) {
            Some((addr, hostname)) => {
                let origin = config.mailboxes.domains.first().cloned();
                (addr, hostname.clone(), origin.unwrap_or(hostname))
            }
            None => {
                let why = format!("{} has no [smtp] listen address", path.display());
                return fail(sysexits::UNAVAILABLE, &why);
            }
        },
        Err(e) => {
            if args.verbose {
                eprintln!("sendmail: {e}; submitting to 127.0.0.1:25");
            }
            sm::fallback()
        }
    };
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        return fail(sysexits::DATAERR, &format!("cannot read the message: {e}"));
    }
    let ignore_dots = args.ignore_dots || args.options.iter().any(|o| o == "i");
    let mut message = sm::read_message(&input, ignore_dots);
    let mut recipients = args.recipients.clone();
    // Bcc: never reaches anyone's copy (as Postfix's cleanup does), -t or not.
    let (from_headers, without_bcc) = sm::header_recipients(&message);
    message = without_bcc;
    if args.headers {
        recipients.extend(from_headers);
    }
    let mut recipients: Vec<String> = recipients.iter().map(|r| sm::qualify(r, &origin)).collect();
    recipients.retain(|r| !r.is_empty());
    recipients.dedup();
    if recipients.is_empty() {
        return fail(
            sysexits::USAGE,
            "no recipients: give them as arguments, or use -t",
        );
    }
    let sender = args
        .from
        .clone()
        .unwrap_or_else(|| format!("{}@{hostname}", login()));
    let message = sm::complete_headers(&message, &sender, args.full_name.as_deref(), &hostname);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(sysexits::TEMPFAIL, &e.to_string()),
    };
    // RFC 3461 requests, checked here so a typo is a usage error rather than a refusal.
    let notify = match args.notify.as_deref().map(smtpd::dsn::Notify::parse) {
        None => None,
        Some(Some(n)) => Some(n),
        Some(None) => {
            return fail(
                sysexits::USAGE,
                "-N takes never, or a comma list of success, failure and delay",
            );
        }
    };
    let ret = match args.ret.as_deref().map(smtpd::dsn::Ret::parse) {
        None => None,
        Some(Some(r)) => Some(r),
        Some(None) => return fail(sysexits::USAGE, "-R takes full or hdrs"),
    };
    let envid = args
        .envid
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(smtpd::dsn::xtext_encode);
    if envid
        .as_ref()
        .is_some_and(|e| e.len() > smtpd::dsn::MAX_ENVID)
    {
        return fail(sysexits::USAGE, "-V: the envelope id is too long");
    }
    let rcpt_dsn: Vec<_> = recipients.iter().map(|_| (notify, None)).collect();
    let mail = smtpd::client::smtp::Mail {
        from: &sender,
        to: &recipients,
        message: &message,
        ret,
        envid: envid.as_deref(),
        rcpt_dsn: &rcpt_dsn,
        smtputf8: false,
    };
    let sent = runtime.block_on(smtpd::client::smtp::send_mail(
        addr,
        &hostname,
        &mail,
        Duration::from_secs(60),
    ));
    match sent {
        Err(e) => fail(
            sysexits::TEMPFAIL,
            &format!("cannot submit to smtpd at {addr}: {e}"),
        ),
        Ok(outcome) => {
            let (code, said) = sm::status_of(&outcome);
            for line in &said {
                eprintln!("sendmail: {line}");
            }
            if args.verbose {
                eprintln!("sendmail: {}", outcome.reply.last_line());
            }
            ExitCode::from(code)
        }
    }
}
