//! The configuration: typed structs with defaults (every key but `hostname` has one), loaded from
//! TOML by [`load`], which reports every problem as `PATH:LINE: message`. The `Default` impls
//! below are the only place defaults are written; [`schema`] documents every key with them.
//!
//! Relative paths in the file are relative to the working directory smtpd starts in.

mod dkim;
mod load;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

pub use load::{load, parse};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub hostname: String,
    pub server: Server,
    pub smtp: Smtp,
    pub pop3: Pop3,
    pub imap: Imap,
    pub tls: Option<Tls>,
    pub mailboxes: Mailboxes,
    pub limits: Limits,
    pub log: Log,
    pub control: Control,
    pub accounts: Vec<Account>,
    pub testing: Testing,
    pub metrics: Metrics,
    pub relay: Relay,
    pub dns: Dns,
    pub queue: Queue,
    pub http: Http,
    /// `[aliases]`: lower-cased `local@domain` (or `@domain`, the domain's catch-all) → the
    /// addresses it delivers to instead.
    pub aliases: BTreeMap<String, Vec<String>>,
    /// `[dkim]`: lower-cased domain → how mail whose From: is in it is signed when sent out.
    pub dkim: BTreeMap<String, Dkim>,
}

/// One `[dkim]` entry. The key file is read by [`Config::read_dkim_keys`], not by [`load`]
/// (smtpctl and sendmail read the config too, and may not read the key).
#[derive(Clone, Debug, Serialize)]
pub struct Dkim {
    pub selector: String,
    pub key: PathBuf,
    /// As given; once the key is read, its algorithm.
    pub algorithm: Option<crate::dkim::Algorithm>,
    /// The key, once read.
    #[serde(skip)]
    pub signing_key: Option<crate::dkim::Key>,
    /// The entry's line in the file, for the problems found when its key is read.
    #[serde(skip)]
    pub line: usize,
}

impl PartialEq for Dkim {
    /// The line is not compared: moving an entry changes nothing.
    fn eq(&self, other: &Dkim) -> bool {
        (&self.selector, &self.key, self.algorithm, &self.signing_key)
            == (
                &other.selector,
                &other.key,
                other.algorithm,
                &other.signing_key,
            )
    }
}

/// `[relay]`: who may send mail off the host, and where it goes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Relay {
    /// Peers on `[smtp] listen` that may send to any domain without AUTH (Postfix's mynetworks).
    pub networks: Vec<ipnet::IpNet>,
    /// `host:port` every remote delivery goes to; empty: none.
    pub smarthost: String,
    pub smarthost_tls: SmarthostTls,
    /// A file holding `user:password` for the smarthost; empty: no AUTH.
    pub smarthost_auth_file: String,
    /// Per-domain next hop (`"example.net" = "127.0.0.1:2626"`), before the smarthost.
    pub routes: BTreeMap<String, String>,
    /// Direct delivery and routes: STARTTLS when offered, or required (with the certificate
    /// verified).
    pub tls: RelayTls,
    /// PEM certificates trusted besides the system's roots when a next hop's certificate is
    /// verified (one that is exactly the peer's is pinned); empty: the system's roots only.
    pub cafile: String,
    /// The TCP port of direct delivery (to MX hosts; Postfix's smtp_tcp_port): 25 but in tests.
    pub mx_port: u16,
    /// Deliveries (messages tried) at once, in all.
    pub concurrency: usize,
    /// Deliveries at once to one destination (a route, the smarthost, or a domain's MX hosts;
    /// Postfix's default_destination_concurrency_limit).
    pub destination_concurrency: usize,
    /// A session with a next hop stays open this long after a message, for the next one to
    /// the same peer (Postfix's smtp_connection_cache_time_limit); 0: one session per message.
    pub connection_cache_secs: u64,
}

/// `[dns]`: the resolver of direct delivery (MX lookups).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Dns {
    /// The name servers asked (`IP:PORT`); empty: those of the system's /etc/resolv.conf.
    pub nameservers: Vec<SocketAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmarthostTls {
    Starttls,
    Tls,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    Opportunistic,
    Required,
}

/// `[queue]`: the durable outbound queue and its retry schedule (Postfix's defaults).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Queue {
    pub dir: PathBuf,
    pub minimal_backoff_secs: u64,
    pub maximal_backoff_secs: u64,
    /// Then the message bounces.
    pub max_lifetime_secs: u64,
    /// A message still undelivered after this long gets one delay warning to its sender
    /// (Postfix's `delay_warning_time`); 0: none.
    pub delay_warning_secs: u64,
    /// How often `msg/` is listed for messages this instance does not know: queued by another
    /// instance sharing the directory, or left by one that died (taken over).
    pub scan_interval_secs: u64,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            networks: ["127.0.0.0/8", "::1/128"]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            smarthost: String::new(),
            smarthost_tls: SmarthostTls::Starttls,
            smarthost_auth_file: String::new(),
            routes: BTreeMap::new(),
            tls: RelayTls::Opportunistic,
            cafile: String::new(),
            mx_port: 25,
            concurrency: 16,
            destination_concurrency: 20,
            connection_cache_secs: 2,
        }
    }
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            dir: "queue".into(),
            minimal_backoff_secs: 300,
            maximal_backoff_secs: 4000,
            max_lifetime_secs: 432_000,
            delay_warning_secs: 0,
            scan_interval_secs: 60,
        }
    }
}

/// `[http]`: the HTTP listener (mail API, server-side wait, health, metrics).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Http {
    pub listen: Vec<SocketAddr>,
    /// Bearer token that non-loopback peers must present; empty: loopback peers only.
    pub token: String,
    /// A wait's timeout is capped here.
    pub max_wait_secs: u64,
    /// Concurrent waits; beyond: 503.
    pub max_waiters: usize,
    /// A request head must arrive within this (also the idle keep-alive limit).
    pub header_timeout_secs: u64,
    /// Longest request head (request line and headers); beyond: 431.
    pub max_header_bytes: usize,
    /// `GET /api/v1/events` streams open at once; beyond: 503.
    pub max_event_streams: usize,
    /// A comment line on an idle event stream this often (keeps proxies from closing it).
    pub event_keepalive_secs: u64,
    /// Every `listen` address speaks HTTPS with the `[tls]` certificate (which must be set).
    pub tls: bool,
    /// Accounts (lower-cased addresses) that see every mailbox and the operator routes when
    /// they log in with Basic credentials; other accounts see their own mailbox only.
    pub admins: Vec<String>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: Vec::new(),
            token: String::new(),
            max_wait_secs: 300,
            max_waiters: 1024,
            header_timeout_secs: 10,
            max_header_bytes: 16_384,
            max_event_streams: 64,
            event_keepalive_secs: 15,
            tls: false,
            admins: Vec::new(),
        }
    }
}

/// `[metrics]`: deprecated. `GET /metrics` on `[http] listen` replaced its endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// What the old key said, kept only to warn about it; nothing listens there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl Config {
    /// Keys still accepted but no longer doing anything, each with what to do instead (logged
    /// at start and reload, printed by `--check-config`).
    pub fn deprecations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(a) = &self.metrics.listen {
            out.push(format!(
                "`[metrics] listen = \"{a}\"` is deprecated and ignored: the metrics are served as `GET /metrics` on `[http] listen` (loopback peers, or the `[http] token`); remove the key"
            ));
        }
        out
    }
}

/// Switches for people testing their own mail code; all off by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Testing {
    /// `fail-NNN@<local domain>` gets reply NNN at RCPT; `slow-Ns@...` waits N seconds first.
    pub fault_addresses: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Server {
    pub user: String,
    pub group: String,
    pub shutdown_grace_secs: u64,
    /// This instance's name in the Maildir files it makes (several instances on one shared
    /// mailbox root each need their own); empty: the host's name.
    pub instance: String,
    /// Peers (a load balancer such as HAProxy) whose connections start with a PROXY protocol
    /// header (v1 or v2) naming the real client; required from them, refused from anyone else.
    pub proxy_from: Vec<ipnet::IpNet>,
    /// How long such a peer has to send its header.
    pub proxy_timeout_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Smtp {
    pub listen: Vec<SocketAddr>,
    pub submission: Vec<SocketAddr>,
    pub submissions: Vec<SocketAddr>,
    pub sender_login_match: bool,
    pub allow_insecure_auth: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pop3 {
    pub listen: Vec<SocketAddr>,
    pub pop3s: Vec<SocketAddr>,
    pub allow_insecure_auth: bool,
    /// Autologout timer (RFC 1939 §3: at least 10 minutes).
    pub idle_timeout_secs: u64,
    /// Longest command line, CRLF included (RFC 2449: 255 at least; AUTH responses are longer).
    pub max_command_line: usize,
    /// Delay before answering a failed login; grows with each failure in the session.
    pub auth_failure_delay_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Imap {
    pub listen: Vec<SocketAddr>,
    pub imaps: Vec<SocketAddr>,
    pub allow_insecure_auth: bool,
    /// Autologout timer, IDLE included (RFC 9051: at least 30 minutes).
    pub idle_timeout_secs: u64,
    /// Largest literal (APPEND's message) accepted; advertised as APPENDLIMIT.
    pub max_literal: u32,
    /// Longest command line, literals excluded.
    pub max_line: u32,
    /// Delay before answering a failed login; grows with each failure in the session.
    pub auth_failure_delay_ms: u64,
    /// While in IDLE, how often the folder is looked at for changes made by other programs
    /// (deliveries by this daemon wake IDLE at once).
    pub idle_poll_secs: u64,
    /// Expunges each folder's index remembers for QRESYNC's VANISHED (EARLIER) (RFC 7162).
    pub expunges_kept: u64,
    /// How coarse the Maildir directories' timestamps are; 0: found from them (2 s when they
    /// are whole seconds, else 50 ms). A folder changed within it is listed again at each command.
    pub mtime_granularity_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub self_signed: bool,
    /// Obtain and renew the certificate from an ACME CA (RFC 8555, [`Tls::acme_challenge`]),
    /// kept in `cert` and `key`; the account beside them ([`Tls::acme_account`]).
    pub acme: bool,
    /// The CA's directory URL.
    pub acme_directory: String,
    /// Contact address given to the CA; empty: none.
    pub acme_email: String,
    /// The names the certificate is for, lower-cased; the loader puts `hostname` here when the
    /// key is empty or not set.
    pub acme_names: Vec<String>,
    /// PEM root certificate that the ACME server's HTTPS certificate chains to (a private or
    /// test CA); empty: the system's roots.
    pub acme_cafile: String,
    /// How the CA checks that we hold the names.
    pub acme_challenge: AcmeChallenge,
}

/// `[tls] acme_challenge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AcmeChallenge {
    /// HTTP-01 when `[http] listen` is set, else TLS-ALPN-01.
    #[serde(rename = "auto")]
    Auto,
    /// HTTP-01 (RFC 8555 section 8.3) on `[http] listen` (the CA connects to port 80).
    #[serde(rename = "http-01")]
    Http01,
    /// TLS-ALPN-01 (RFC 8737) on every implicit-TLS listener (the CA connects to port 443).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// Let's Encrypt's production directory, `[tls] acme_directory`'s default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Tls {
    /// The ACME account's credentials (its private key): beside the certificate.
    pub fn acme_account(&self) -> PathBuf {
        let dir = self.cert.parent().unwrap_or(std::path::Path::new("."));
        dir.join("acme-account.json")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptMode {
    Any,
    Accounts,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mailboxes {
    pub root: PathBuf,
    /// Lower-cased.
    pub domains: Vec<String>,
    pub accept: AcceptMode,
    /// `"+"`: `alice+tag@` is delivered to alice's Maildir; empty: no delimiter.
    pub recipient_delimiter: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Limits {
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
    pub max_errors: u32,
    /// Longest SMTP command line, CRLF included (at least 512, RFC 5321 §4.5.3.1.4).
    pub max_command_line: usize,
    /// Longest text line in DATA, CRLF included (at least 1000, RFC 5321 §4.5.3.1.6).
    pub max_line_length: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    Hourly,
    Daily,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Log {
    pub dir: PathBuf,
    pub level: String,
    pub rotation: Rotation,
    pub keep: usize,
    pub format: LogFormat,
    /// Keep each SMTP session's dialogue under `<dir>/transcripts/`.
    pub transcripts: bool,
    pub transcript_max_kib: usize,
    pub transcript_keep_days: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Control {
    pub socket: PathBuf,
    pub pid_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Account {
    /// Lower-cased `local@domain`.
    pub address: String,
    /// PHC hash; never logged or shown.
    #[serde(skip)]
    pub password: String,
}

impl Server {
    /// The name in Maildir file names: `instance`, or the host's name (as Dovecot and Postfix
    /// name theirs), or "localhost" when it has none.
    pub fn instance_name(&self) -> String {
        if !self.instance.is_empty() {
            return self.instance.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            user: String::new(),
            group: String::new(),
            shutdown_grace_secs: 30,
            instance: String::new(),
            proxy_from: Vec::new(),
            proxy_timeout_secs: 5,
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            submission: Vec::new(),
            submissions: Vec::new(),
            sender_login_match: true,
            allow_insecure_auth: false,
        }
    }
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3 {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1110))],
            pop3s: Vec::new(),
            allow_insecure_auth: false,
            idle_timeout_secs: 600,
            max_command_line: 1024,
            auth_failure_delay_ms: 2000,
        }
    }
}

impl Default for Imap {
    fn default() -> Self {
        Imap {
            listen: Vec::new(),
            imaps: Vec::new(),
            allow_insecure_auth: false,
            idle_timeout_secs: 1800,
            max_literal: 26_214_400,
            max_line: 65_536,
            auth_failure_delay_ms: 2000,
            idle_poll_secs: 5,
            expunges_kept: 10_000,
            mtime_granularity_ms: 0,
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert: "config/tls/cert.pem".into(),
            key: "config/tls/key.pem".into(),
            self_signed: false,
            acme: false,
            acme_directory: LETS_ENCRYPT.into(),
            acme_email: String::new(),
            acme_names: Vec::new(),
            acme_cafile: String::new(),
            acme_challenge: AcmeChallenge::Auto,
        }
    }
}

impl Default for Mailboxes {
    fn default() -> Self {
        Mailboxes {
            root: "mailboxes".into(),
            domains: vec!["example.test".into(), "localhost".into()],
            accept: AcceptMode::Any,
            recipient_delimiter: String::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 26_214_400,
            max_recipients: 100,
            max_connections: 1000,
            max_connections_per_ip: 100,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            max_errors: 10,
            max_command_line: 512,
            max_line_length: 1000,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            dir: "logs".into(),
            level: "info".into(),
            rotation: Rotation::Daily,
            keep: 14,
            format: LogFormat::Text,
            transcripts: false,
            transcript_max_kib: 256,
            transcript_keep_days: 7,
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: "run/smtpd.sock".into(),
            pid_file: "run/smtpd.pid".into(),
        }
    }
}

impl Config {
    /// Makes every relative path absolute against `base` (the directory smtpd started in), so the
    /// daemon may `chdir /` and a reload reads the same files.
    pub fn absolutize(&mut self, base: &std::path::Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        abs(&mut self.path);
        abs(&mut self.mailboxes.root);
        abs(&mut self.log.dir);
        abs(&mut self.control.socket);
        abs(&mut self.control.pid_file);
        abs(&mut self.queue.dir);
        for file in [&mut self.relay.cafile, &mut self.relay.smarthost_auth_file] {
            if !file.is_empty() && std::path::Path::new(file.as_str()).is_relative() {
                *file = base.join(&*file).to_string_lossy().into_owned();
            }
        }
        if let Some(tls) = self.tls.as_mut() {
            abs(&mut tls.cert);
            abs(&mut tls.key);
            let ca = &mut tls.acme_cafile;
            if !ca.is_empty() && std::path::Path::new(ca.as_str()).is_relative() {
                *ca = base.join(&*ca).to_string_lossy().into_owned();
            }
        }
        for d in self.dkim.values_mut() {
            abs(&mut d.key);
        }
    }
}

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, 0 when the problem is not tied to a line (file unreadable).
    pub line: usize,
    pub message: String,
}

/// Every problem found in a config file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line > 0 {
                write!(f, "{}:{}: {}", self.path.display(), p.line, p.message)?;
            } else {
                write!(f, "{}: {}", self.path.display(), p.message)?;
            }
        }
        Ok(())
    }
}
