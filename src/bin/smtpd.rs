//! `smtpd`: the mail server daemon.

use std::process::ExitCode;

use clap::Parser;
use smtpd::cli::smtpd::Args;
use smtpd::outln;

fn main() -> ExitCode {
    let args = Args::parse();
    // The daemon signs with the [dkim] keys, so they are read (and checked) here; smtpctl and
    // sendmail load the same file without them.
    let loaded = smtpd::config::load(&args.config).and_then(|mut c| c.read_dkim_keys().map(|()| c));
    let config = match loaded {
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
        for d in config.deprecations() {
            eprintln!("{}: warning: {d}", args.config.display());
        }
        outln!("configuration OK");
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
