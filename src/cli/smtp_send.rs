//! The `smtp-send` command line (also read by the man page generator).

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// Send mail over SMTP: interactively, from flags or stdin, or as a load generator (`bench`).
#[derive(Parser, Debug)]
#[command(name = "smtp-send", version, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Server (default: localhost).
    pub host: Option<String>,
    /// Port (default: the bundled config's SMTP listener, else 2525).
    pub port: Option<u16>,
    #[command(flatten)]
    pub msg: MessageArgs,
}

#[derive(ClapArgs, Debug, Default)]
pub struct MessageArgs {
    /// Envelope and header sender.
    #[arg(long)]
    pub from: Option<String>,
    /// Recipient (repeatable; also put in To:).
    #[arg(long)]
    pub to: Vec<String>,
    /// Copy recipient (repeatable; put in Cc:).
    #[arg(long)]
    pub cc: Vec<String>,
    #[arg(long)]
    pub subject: Option<String>,
    /// Message body text.
    #[arg(long, conflicts_with_all = ["body_file", "data"])]
    pub body: Option<String>,
    /// Message body from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub body_file: Option<PathBuf>,
    /// A whole RFC 5322 message, sent as is ("-" for stdin).
    #[arg(long, value_name = "FILE|-")]
    pub data: Option<String>,
    /// Attach a file (repeatable); its MIME type comes from the extension.
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Extra header "Name: value" (repeatable).
    #[arg(long, value_name = "NAME: VALUE")]
    pub header: Vec<String>,
    /// Name to give in EHLO/HELO (default: this host's name).
    #[arg(long)]
    pub ehlo: Option<String>,
    /// Use HELO instead of EHLO.
    #[arg(long)]
    pub helo: bool,
    /// Upgrade the connection with STARTTLS (RFC 3207) before sending.
    #[arg(long, conflicts_with = "tls")]
    pub starttls: bool,
    /// Implicit TLS from the first byte (the port 465 role, RFC 8314).
    #[arg(long)]
    pub tls: bool,
    /// Authenticate as USER (AUTH PLAIN); the password comes from SMTP_PASSWORD or a no-echo prompt.
    #[arg(long, value_name = "USER")]
    pub auth: Option<String>,
    /// Trust the CA certificates in this PEM file (besides the system's).
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Accept any server certificate (labs with self-signed certificates).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds to wait for each server reply.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Print the dialogue: "C: " lines sent, "S: " lines received.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Load generator: N concurrent sessions sending M messages each.
    Bench(BenchArgs),
}

#[derive(ClapArgs, Debug)]
pub struct BenchArgs {
    pub host: String,
    pub port: u16,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 8)]
    pub sessions: usize,
    /// Messages per session.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Message size in octets.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    pub rcpts: usize,
    /// Recipient domain (recipients are bench<k>@DOMAIN).
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Seconds to wait for each server reply.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}
