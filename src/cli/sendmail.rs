//! The `sendmail` command line: the options Debian programs (cron, unattended-upgrades, mailx,
//! logwatch) pass to `/usr/sbin/sendmail`, as Postfix's and OpenSMTPD's accept them.

use std::path::PathBuf;

use clap::Parser;

/// Submit a message from standard input to the local smtpd
///
/// For the programs that call sendmail (cron, unattended-upgrades, mailx): the message is read
/// from standard input and submitted to the local smtpd's SMTP listener, where loopback clients
/// may send to any domain. Exit status as sysexits.h: 0 accepted, 64 usage,
/// 65 bad message, 67 recipient refused, 69 refused, 75 try again later (smtpd not running or a
/// temporary refusal).
#[derive(Parser, Debug)]
#[command(
    name = "sendmail",
    version,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Args {
    /// Take the recipients from the To:, Cc: and Bcc: headers too (Bcc: is then removed).
    #[arg(short = 't')]
    pub headers: bool,
    /// A line with a single "." does not end the message (only the end of input does).
    #[arg(short = 'i')]
    pub ignore_dots: bool,
    /// The envelope sender (default: the user's login name in the first local domain); `-r`
    /// is the same (mailx and s-nail pass it).
    #[arg(short = 'f', short_alias = 'r', value_name = "SENDER")]
    pub from: Option<String>,
    /// Delivery reports wanted (RFC 3461 NOTIFY): `never`, or a comma list of `success`,
    /// `failure`, `delay` (mutt passes `-N`); default: failures and delays.
    #[arg(short = 'N', value_name = "DSN")]
    pub notify: Option<String>,
    /// What a bounce returns of the message (RFC 3461 RET): `full` or `hdrs`.
    #[arg(short = 'R', value_name = "RET")]
    pub ret: Option<String>,
    /// The envelope id reports quote back (RFC 3461 ENVID).
    #[arg(short = 'V', value_name = "ENVID")]
    pub envid: Option<String>,
    /// The sender's full name, for a From: header that has to be added.
    #[arg(short = 'F', value_name = "NAME")]
    pub full_name: Option<String>,
    /// Sendmail options; `-oi` is `-i`, the others (`-oem`, `-odi`, ...) are accepted and ignored.
    #[arg(short = 'o', value_name = "OPTION")]
    pub options: Vec<String>,
    /// The body type (`-B8BITMIME`, as cron passes it): accepted; the client says 8BITMIME by
    /// itself when the text needs it.
    #[arg(short = 'B', value_name = "TYPE")]
    pub body: Option<String>,
    /// Mode: only `-bm` (deliver a message, the default) is supported.
    #[arg(short = 'b', value_name = "MODE")]
    pub mode: Option<String>,
    /// Show the SMTP dialogue on stderr.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// smtpd's configuration, where its SMTP listener and hostname are (default:
    /// config/smtpd.toml, else /etc/smtpd/smtpd.toml).
    #[arg(long, short = 'C', value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Print the version (long form only: `-V` is the envelope id, as in Postfix's sendmail).
    #[arg(long, action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// Recipients.
    pub recipients: Vec<String>,
}
