//! `smtpd`: the mail server daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// SMTP server delivering into Maildir.
#[derive(Parser, Debug)]
#[command(name = "smtpd", version, about)]
struct Args {
    /// Configuration file.
    #[arg(long, short = 'c', default_value = "config/smtpd.toml")]
    config: PathBuf,
    /// Stay attached to the terminal (what systemd and tests use); logs also go to stderr.
    /// Without it smtpd detaches, and returns once its listeners are bound.
    #[arg(long, short = 'f')]
    foreground: bool,
    /// Check the configuration, print every problem as FILE:LINE: message, and exit.
    #[arg(long, short = 'n')]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match smtpd::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            if !args.check_config {
                eprintln!(
                    "smtpd: not started: fix the configuration (check it with `smtpd --check-config --config {}`)",
                    args.config.display()
                );
            }
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    match smtpd::daemon::run(config, args.foreground) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smtpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
