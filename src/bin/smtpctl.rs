//! `smtpctl`: the control CLI. `encrypt` works without a daemon; the commands that talk to the
//! daemon's control socket (status, mailboxes, send-test, reload) arrive with the daemon issue.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Control smtpd, and make password hashes for its accounts.
#[derive(Parser, Debug)]
#[command(name = "smtpctl", version, about)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print an argon2id hash of PASSWORD for `[[accounts]] password` (reads a line from stdin when
    /// no argument is given). Needs no running daemon.
    Encrypt {
        /// The password; visible to other users in `ps` while this runs, so prefer stdin.
        password: Option<String>,
    },
    /// Show the daemon's state (not in this version yet).
    Status,
    /// List mailboxes (not in this version yet).
    Mailboxes,
    /// Send a test message through the daemon (not in this version yet).
    SendTest,
    /// Reload the configuration (not in this version yet; restart smtpd instead).
    Reload,
}

fn encrypt(arg: Option<String>) -> Result<(), String> {
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
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.is_empty() {
        return Err("empty password: give one as an argument or on stdin".into());
    }
    let hash = smtpd::auth::password::hash(&password).map_err(|e| e.to_string())?;
    println!("{hash}");
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Encrypt { password } => encrypt(password),
        other => Err(format!(
            "`{}`: the control socket is not in this version of smtpd yet",
            format!("{other:?}").to_lowercase()
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtpctl: {e}");
            ExitCode::FAILURE
        }
    }
}
