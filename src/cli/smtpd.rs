//! The `smtpd` command line (also read by the man page generator).

use std::path::PathBuf;

use clap::Parser;

/// SMTP server delivering into Maildir.
#[derive(Parser, Debug)]
#[command(name = "smtpd", version)]
pub struct Args {
    /// Configuration file.
    #[arg(long, short = 'c', default_value = "config/smtpd.toml")]
    pub config: PathBuf,
    /// Stay attached to the terminal (what systemd and tests use); logs also go to stderr.
    /// Without it smtpd detaches, and returns once its listeners are bound.
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Check the configuration, print every problem as FILE:LINE: message, and exit.
    #[arg(long, short = 'n')]
    pub check_config: bool,
}
