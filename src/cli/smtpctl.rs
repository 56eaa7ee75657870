//! The `smtpctl` command line (also read by the man page generator).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Control a running smtpd through its Unix socket, and make password hashes for its accounts.
#[derive(Parser, Debug)]
#[command(name = "smtpctl", version)]
pub struct Args {
    /// The control socket (default: [control].socket of --config).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The configuration that names the socket (default: config/smtpd.toml, else
    /// /etc/smtpd/smtpd.toml).
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Intake {
    Smtp,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The daemon's state: pid, version, uptime, listeners, sessions, counters, last reload.
    Status,
    /// Every mailbox: address, messages (new/ + cur/), bytes on disk, newest message.
    Mailboxes,
    /// Have the daemon send a test message through its own SMTP listener and report delivery.
    SendTest {
        /// Recipient (default: postmaster@<first local domain>).
        #[arg(long)]
        to: Option<String>,
        /// Sender (default: smtpctl@<hostname>).
        #[arg(long)]
        from: Option<String>,
    },
    /// Reload the configuration file (as SIGHUP does) and report what changed or why not.
    Reload {
        /// Only validate and show what a reload would change (the --config file if given, else
        /// the running one's); apply nothing.
        #[arg(long)]
        check: bool,
    },
    /// Counters in Prometheus text format (no root needed: group members may read them).
    Metrics,
    /// Show the session transcript behind a delivered message (ID: the queue id of its 250 reply
    /// and Received: header); needs `[log] transcripts = true`.
    Transcript { id: String },
    /// Check the running daemon against the RFC rules clients rely on, over its own listeners
    /// (a probe mailbox, removed after). One line per check; exit 1 when any fails.
    Selftest {
        /// Skip "SIZE actual", which sends max_message_bytes + 1 octets (25 MiB by default)
        /// through the daemon; it is reported as skipped.
        #[arg(long)]
        quick: bool,
    },
    /// A live tail of sessions and deliveries (optionally only those to or from ADDRESS), until
    /// Ctrl-C.
    Watch { address: Option<String> },
    /// Wait until a message matching every condition given is delivered (since --since, default:
    /// now), as `GET /api/v1/wait` does; print it (--json: as the API's JSON). Exit 0 when found,
    /// 1 at the timeout, 2 on an error. Conditions are case-insensitive substrings.
    Wait {
        /// The Maildir's address or a To/Cc address contains this.
        #[arg(long)]
        to: Option<String>,
        /// A From address or name contains this.
        #[arg(long)]
        from: Option<String>,
        /// The subject contains this.
        #[arg(long)]
        subject: Option<String>,
        /// The subject or a text or HTML part contains this.
        #[arg(long)]
        contains: Option<String>,
        /// Only this Maildir (local@domain).
        #[arg(long)]
        mailbox: Option<String>,
        /// Delivered at or after this: RFC 3339 or unix seconds (default: now).
        #[arg(long)]
        since: Option<String>,
        /// How long to wait: 30s, 2m, 500ms or seconds (default 30s; capped by [http]
        /// max_wait_secs).
        #[arg(long, default_value = "30s")]
        timeout: String,
    },
    /// Set the log level of the running daemon (error, warn, info, debug, trace, or a filter).
    LogLevel { level: String },
    /// Stop taking new SMTP sessions (they get 421 4.3.2); sessions in progress go on.
    Pause { what: Intake },
    /// Take new SMTP sessions again.
    Resume { what: Intake },
    /// Before a rolling restart behind a load balancer: `/health` answers 503 `draining` (the
    /// balancer stops sending clients here) while every session, new ones too, is still served;
    /// returns once no SMTP, POP3 or IMAP session is open (exit 0) or at the timeout (exit 1).
    Drain {
        /// Give up after this long: 60s, 5m, 500ms or seconds.
        #[arg(long, default_value = "60s")]
        timeout: String,
        /// Wait at least this long first, for the balancer's health checks to see the 503 (a
        /// few times HAProxy's `inter`).
        #[arg(long, default_value = "3s")]
        settle: String,
    },
    /// End a drain: `/health` answers 200 again (a restart ends it too).
    Undrain,
    /// The outbound queue: every message with each recipient's state and last error (no
    /// subcommand), or one action on it.
    Queue {
        #[command(subcommand)]
        action: Option<QueueCmd>,
    },
    /// The TLS certificate in use: names, issuer, expiry; under `[tls] acme = true` also the next
    /// renewal and the last error (no subcommand), or `renew`.
    Tls {
        #[command(subcommand)]
        action: Option<TlsCmd>,
    },
    /// Make a DKIM signing key for DOMAIN, write it (mode 0600; an existing file is never
    /// overwritten) and print the DNS TXT record to publish and the [dkim] line for smtpd.toml.
    /// Needs no running daemon.
    DkimKeygen {
        /// The signing domain (the d= of the signatures), e.g. example.test.
        domain: String,
        /// The s= of the signatures: the record is published at SELECTOR._domainkey.DOMAIN.
        #[arg(long, default_value = "s1")]
        selector: String,
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::Rsa)]
        algorithm: KeyAlgorithm,
        /// RSA key size, 2048 to 4096 (default 2048).
        #[arg(long)]
        bits: Option<usize>,
        /// The key file (default: config/dkim/DOMAIN.SELECTOR.key; a missing directory is made).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print an argon2id hash of PASSWORD for `[[accounts]] password` (reads a line from stdin when
    /// no argument is given). Needs no running daemon.
    Encrypt {
        /// The password; visible to other users in `ps` while this runs, so prefer stdin.
        password: Option<String>,
    },
}

/// The kind of key `dkim-keygen` makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    /// rsa-sha256: what every verifier checks.
    Rsa,
    /// ed25519-sha256 (RFC 8463): short, but not checked by every verifier yet; sign with an
    /// RSA key too.
    Ed25519,
}

#[derive(Subcommand, Debug)]
pub enum TlsCmd {
    /// Obtain a new certificate from the ACME CA now and switch every TLS listener to it; waits
    /// for the outcome (exit 1 with the error when it failed: the old certificate stays).
    Renew,
}

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// One message in full.
    Show { id: String },
    /// Try now: message ID, or every deferred message.
    Flush { id: Option<String> },
    /// Remove message ID from the queue, without a try or a bounce.
    Remove { id: String },
    /// Do not try message ID until it is released.
    Hold { id: String },
    /// Try message ID again on its schedule.
    Release { id: String },
}
