//! `smtpctl`: the control CLI. The control socket and its commands (status, mailboxes,
//! send-test, reload, encrypt) arrive with the daemon issue; until then this says so.

use std::process::ExitCode;

use clap::Parser;

/// Control a running smtpd through its Unix socket.
#[derive(Parser, Debug)]
#[command(name = "smtpctl", version, about)]
struct Args {
    /// The command (status, mailboxes, send-test, reload, encrypt).
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!(
        "smtpctl: `{}`: the control socket is not in this version of smtpd yet",
        args.command.join(" ")
    );
    ExitCode::from(2)
}
