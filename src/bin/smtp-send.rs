//! `smtp-send`: the SMTP client. The interactive menu, the scriptable sender and the load
//! generator arrive with their own issue; until then this says so.

use std::process::ExitCode;

use clap::Parser;

/// Send mail over SMTP.
#[derive(Parser, Debug)]
#[command(name = "smtp-send", version, about)]
struct Args {
    /// Server host and port.
    target: Vec<String>,
}

fn main() -> ExitCode {
    let _ = Args::parse();
    eprintln!("smtp-send: not in this version yet; use swaks or Python's smtplib meanwhile");
    ExitCode::from(2)
}
