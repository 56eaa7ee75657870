//! The reference of every config key: its section, its default and what it does.
//!
//! Defaults are not written here: they are the `Default` impls in `super`, which the loader uses
//! too, rendered as TOML. The loader's unknown-key check takes its lists from [`known_keys`], the
//! man page smtpd.toml(5) is made from [`reference`] by `examples/gen_docs.rs`, and the unit tests
//! check the defaults stated in the bundled config files against it.
//!
//! Docs use two marks: `` `text` `` is a literal (bold in the man page), `*text*` a placeholder
//! (italic). Pure: the config types, serde and toml only; nothing from the loader, no I/O.

use serde::Serialize;

use super::{
    Control, Dns, Http, Imap, Limits, Log, Mailboxes, Metrics, Pop3, Queue, Relay, Server, Smtp,
    Testing, Tls,
};

/// One key of the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    /// `""` for the top level, `"accounts"` for each `[[accounts]]` entry.
    pub section: &'static str,
    pub key: &'static str,
    /// The default as TOML; `None`: the key is required (when `required`) or unset means off.
    pub default: Option<String>,
    /// No default: the key must be given (the top level and `[[accounts]]` entries).
    pub required: bool,
    pub doc: &'static str,
}

/// One table of the config file, in the order the loader reads them.
pub struct SectionDoc {
    /// `""` for the top level.
    pub name: &'static str,
    /// How the man page heads it: `[name]`, `[[accounts]]`, or "TOP LEVEL".
    pub heading: String,
    /// Said before the keys; may be empty.
    pub doc: &'static str,
}

/// What the man page says before the sections.
pub const DESCRIPTION: &str = "A TOML file. Every key but `hostname` has a default; unknown keys are errors. `smtpd --check-config --config FILE` reports every problem as FILE:LINE: message. Relative paths are relative to the directory smtpd starts in. A reload (SIGHUP, `systemctl reload smtpd` or `smtpctl reload`) applies listeners, limits, domains, accounts, TLS files, [dkim] keys and the log level to new sessions; the [log] dir/rotation/keep/format, [control] and [server] user/group need a restart.";

/// (name, what is said before its keys), in the order the loader reads them; `""` is the top
/// level.
#[rustfmt::skip]
const SECTION_DOCS: &[(&str, &str)] = &[
    ("", ""), ("server", ""), ("smtp", ""), ("pop3", ""),
    ("imap", "IMAP4rev1 on the same Maildirs (Dovecot's layout: folders are `.Name` subdirectories, UIDs in `dovecot-uidlist`, flags in the file names). Login with the full address of an [[accounts]] entry."),
    ("tls", "Present: TLS (1.2 and 1.3) is offered. Absent: no TLS."),
    ("mailboxes", ""), ("limits", ""), ("log", ""), ("control", ""), ("testing", ""), ("metrics", ""),
    ("relay", "Mail for domains outside [mailboxes] domains is accepted only from authenticated submission sessions and from `networks` on the plain SMTP listeners; everyone else gets 550 5.7.1. It is queued (fsync'ed) before the 250 and delivered from the queue: to the route of its domain, else to the smarthost, else directly to the domain's MX hosts (RFC 5321 5.1: by preference, each host's addresses in turn; no MX: the domain's own address; a null MX, RFC 7505: bounced at once with 5.1.10)."),
    ("dns", "The resolver of direct delivery (MX and address lookups). Reloadable."),
    ("queue", ""),
    ("http", "A JSON API over the Maildirs for tests and tools (list, read, raw, delete, and a wait that returns when a matching message is delivered), `GET /health` and `GET /metrics`; its routes are described by the OpenAPI document at `GET /api/openapi.json`. Loopback peers are allowed; any other peer needs `Authorization: Bearer` *token*, or an account's `Authorization: Basic` credentials over HTTPS (`tls = true`), which see that account's mailbox only unless it is in `admins` (`/health` and autoconfig are open to all). Reloadable."),
    ("aliases", "Each key is an address in a local domain (`\"postmaster@example.test\"`), or `\"@example.test\"` for the domain's catch-all (used for local parts with no alias and no account); each value is one address or a list of them (`[\"alice@example.test\", \"bob@example.net\"]`). Mail to the key is delivered to the values instead (remote ones through the queue). One level: a value is not looked up again. Reloadable."),
    ("dkim", "Mail sent out (to a route or the smarthost) whose From: address is in one of these domains is signed (RFC 6376; OpenDKIM also signs by the From: domain, the one DMARC aligns with): one entry per domain, `\"example.test\" = { selector = \"s1\", key = \"config/dkim/example.test.s1.key\" }`. The signature covers From, To, Cc, Subject, Date, Message-ID, MIME-Version, Content-Type, Reply-To, In-Reply-To and References, relaxed/relaxed. `smtpctl dkim-keygen` *domain* makes a key and prints the DNS record to publish. The key files are read at start and on every reload; one that cannot be read or used, or that other users may read, is a configuration error. Local recipients get the message unsigned; a message that cannot be signed goes out unsigned (logged)."),
    ("accounts", ""),
];

/// Every section, with its man-page heading: `[name]`, `[[accounts]]`, or "TOP LEVEL".
pub fn sections() -> Vec<SectionDoc> {
    SECTION_DOCS
        .iter()
        .map(|&(name, doc)| SectionDoc {
            name,
            heading: match name {
                "" => "TOP LEVEL".into(),
                "accounts" => "[[accounts]]".into(),
                n => format!("[{n}]"),
            },
            doc,
        })
        .collect()
}

/// (section, key, doc), each section's keys in the order the loader reads them (the order of
/// "known keys" in its messages).
#[rustfmt::skip]
const KEYS: &[(&str, &str, &str)] = &[
    ("", "hostname", "Name in the greeting, the EHLO reply and Received: headers."),
    ("server", "user", "When started as root: drop to this user after binding the ports; empty: stay root."),
    ("server", "group", "When started as root: drop to this group after binding the ports; empty: the user's primary group."),
    ("server", "shutdown_grace_secs", "On SIGTERM, a session inside DATA may finish within this many seconds."),
    ("server", "instance", "This instance's name in the names of the Maildir files it makes (`<time>.M<µs>P<pid>Q<n>.<instance>`), so that several instances on one shared mailbox root never make the same name; empty: the host's name (as Dovecot and Postfix)."),
    ("server", "proxy_from", "Networks (CIDR) of load balancers (HAProxy `send-proxy` / `send-proxy-v2`) in front of every listener: a connection from them must start with a PROXY protocol header (v1 or v2), whose client address is then the client for everything (limits, [relay] networks, loopback rules, Received:, logs); without one, or with a malformed one, the connection is closed and logged. Empty: no PROXY headers."),
    ("server", "proxy_timeout_secs", "How long a [server] proxy_from peer has to send its PROXY header."),
    ("smtp", "listen", "Plain SMTP listeners (the port 25 role), as \"IP:PORT\". STARTTLS is offered when [tls] is set."),
    ("smtp", "submission", "Submission listeners (587 role): STARTTLS offered, AUTH required before MAIL."),
    ("smtp", "submissions", "Implicit-TLS submission listeners (465 role, RFC 8314); need [tls]."),
    ("smtp", "sender_login_match", "Submission: MAIL FROM must be the authenticated account."),
    ("smtp", "allow_insecure_auth", "Offer AUTH without TLS to non-loopback peers."),
    ("pop3", "listen", "POP3 listeners (STLS offered when [tls] is set)."),
    ("pop3", "pop3s", "Implicit-TLS POP3 listeners (995 role); need [tls]."),
    ("pop3", "allow_insecure_auth", "USER/PASS and AUTH PLAIN without TLS from non-loopback peers."),
    ("pop3", "idle_timeout_secs", "Autologout (at least 10 minutes per RFC 1939)."),
    ("pop3", "max_command_line", "Longest command line with CRLF."),
    ("pop3", "auth_failure_delay_ms", "Wait before answering a failed login (POP3 and SMTP AUTH, times the failures so far in the session; HTTP Basic credentials, once per request)."),
    ("imap", "listen", "IMAP listeners (STARTTLS offered when [tls] is set)."),
    ("imap", "imaps", "Implicit-TLS IMAP listeners (993 role); need [tls]."),
    ("imap", "allow_insecure_auth", "LOGIN and AUTHENTICATE PLAIN without TLS from non-loopback peers (otherwise LOGINDISABLED is advertised)."),
    ("imap", "idle_timeout_secs", "Autologout, IDLE included (RFC 9051 asks for at least 30 minutes)."),
    ("imap", "max_literal", "Largest literal accepted (the message of APPEND), advertised as APPENDLIMIT; a larger one is refused with NO [TOOBIG] before it is sent."),
    ("imap", "max_line", "Longest command line, literals excluded; beyond: BAD."),
    ("imap", "auth_failure_delay_ms", "Wait before answering a failed login, times the failures so far in the session."),
    ("imap", "idle_poll_secs", "In IDLE, how often the folder is checked for changes in any case (deliveries and changes by this smtpd's sessions, and by other programs through inotify, wake IDLE at once; this is for NFS or when inotify is not available)."),
    ("imap", "expunges_kept", "Expunges each folder's index (smtpd-cache) remembers for QRESYNC's VANISHED (EARLIER); a client resynchronizing from before the oldest one kept gets every UID it may know that is gone."),
    ("imap", "mtime_granularity_ms", "How coarse the Maildir directories' timestamps are: a folder whose new/ or cur/ changed within it is listed again at each command, else only when their metadata changed. 0: found from the timestamps (2000 when they are whole seconds, else 50); set it for NFS."),
    ("tls", "cert", "PEM certificate chain."),
    ("tls", "key", "PEM private key."),
    ("tls", "self_signed", "Make (once) and keep a self-signed certificate for hostname, localhost and 127.0.0.1 when the files are missing."),
    ("tls", "acme", "true: obtain the certificate from an ACME CA (RFC 8555, e.g. Let's Encrypt) and renew it when a third of its life is left, answering the HTTP-01 challenge on [http] `listen` (plain HTTP, reachable on port 80 under every name of `acme_names`) or TLS-ALPN-01 on an implicit-TLS listener reachable on port 443 (see `acme_challenge`). It is kept in `cert` and `key`; the account key (`acme-account.json`) goes in the same directory; all three mode 0600. Until the first one arrives, TLS listeners serve a temporary self-signed certificate; each new one is switched in live. See `smtpctl tls`."),
    ("tls", "acme_directory", "The ACME CA's directory URL (https://). Let's Encrypt's staging CA: \"https://acme-staging-v02.api.letsencrypt.org/directory\"."),
    ("tls", "acme_email", "Contact address given to the CA (expiry notices); empty: none."),
    ("tls", "acme_names", "Names the certificate is for (DNS names, no wildcards: HTTP-01 and TLS-ALPN-01 cannot prove them); empty: `hostname`."),
    ("tls", "acme_challenge", "How the ACME CA checks the names: \"http-01\" on [http] listen (the CA connects to port 80), \"tls-alpn-01\" (RFC 8737) on the implicit-TLS listeners (submissions, pop3s, imaps, and HTTPS with [http] tls = true; the CA connects to port 443, so one of them must be there), or \"auto\": HTTP-01 when [http] listen is set, else TLS-ALPN-01. Beyond the contract."),
    ("tls", "acme_cafile", "PEM root certificate the ACME server's HTTPS certificate chains to, for a private or test CA; empty: the system's roots."),
    ("mailboxes", "root", "Maildir tree: ROOT/DOMAIN/LOCAL/{tmp,new,cur}."),
    ("mailboxes", "domains", "Local domains; mail for any other domain gets 550 5.7.1 (never relayed)."),
    ("mailboxes", "recipient_delimiter", "One character, e.g. \"+\": `alice+tag@`*domain* is delivered to alice's Maildir (the tag is kept in the address). Empty: none."),
    ("mailboxes", "accept", "\"any\": any safe local part, its Maildir made on first delivery; \"accounts\": only [[accounts]] addresses (postmaster is always accepted)."),
    ("limits", "max_message_bytes", "Advertised as SIZE; larger messages get 552 5.3.4."),
    ("limits", "max_recipients", "Per message; beyond: 452 4.5.3."),
    ("limits", "max_connections", "Connections in all; beyond: 421 4.7.0 (POP3: -ERR [SYS/TEMP])."),
    ("limits", "max_connections_per_ip", "Connections from one client address; beyond: 421 4.7.0 (POP3: -ERR [SYS/TEMP])."),
    ("limits", "command_timeout_secs", "Waiting for a command; then 421 4.4.2."),
    ("limits", "data_timeout_secs", "Waiting for message data; then 421 4.4.2."),
    ("limits", "max_errors", "Bad commands and failed logins before 421 and close."),
    ("limits", "max_command_line", "Longest SMTP command line, CRLF included (at least 512); beyond: 500 5.5.6."),
    ("limits", "max_line_length", "Longest message text line, CRLF included (at least 1000); beyond: 500 5.5.6."),
    ("log", "level", "error, warn, info, debug, trace, or a tracing filter."),
    ("log", "dir", "Rotating files smtpd.log.YYYY-MM-DD."),
    ("log", "rotation", "\"hourly\", \"daily\" or \"never\"."),
    ("log", "keep", "Rotated files kept."),
    ("log", "format", "\"text\" or \"json\"."),
    ("log", "transcripts", "When true, each SMTP session's dialogue is kept in *dir*/transcripts/ (AUTH secrets redacted, message text reduced to its size), and `smtpctl transcript` *ID* shows the one behind a delivered message."),
    ("log", "transcript_max_kib", "A session's transcript stops growing here."),
    ("log", "transcript_keep_days", "Transcripts older than this are removed (at start and every 1,000 sessions)."),
    ("control", "socket", "The Unix socket smtpctl uses (mode 0660)."),
    ("control", "pid_file", "Locked while smtpd runs."),
    ("testing", "fault_addresses", "When true, a recipient `fail-NNN@`*domain* gets reply NNN (400–599; 421 also closes), and `slow-Ns@`*domain* is accepted after N seconds (1–600), so tests of mail clients are reproducible."),
    ("metrics", "listen", "Deprecated and ignored (a warning at start, at reload and from `--check-config`): `GET /metrics` on `[http] listen` serves the Prometheus text of `smtpctl metrics`."),
    ("relay", "networks", "Client networks (CIDR) that may send to any domain on [smtp] listen without AUTH."),
    ("relay", "smarthost", "\"host:port\" every remote delivery without a route goes to; empty: none (direct delivery to the MX hosts)."),
    ("relay", "smarthost_tls", "\"starttls\" (required), \"tls\" (implicit TLS) or \"none\"; the smarthost's certificate is verified against the system's roots and `cafile`."),
    ("relay", "smarthost_auth_file", "A file holding *user*`:`*password* for AUTH at the smarthost, readable by smtpd's user only (a file others may read or write is refused, as ssh refuses such a key); empty: no AUTH."),
    ("relay", "routes", "Per-domain next hop, e.g. { \"example.net\" = \"127.0.0.1:2626\" }, tried before the smarthost."),
    ("relay", "tls", "Direct delivery and routes: \"opportunistic\" (STARTTLS when offered, certificate not checked) or \"required\" (STARTTLS with the certificate verified; for an MX host, against its name)."),
    ("relay", "cafile", "PEM certificates trusted besides the system's roots when a next hop's certificate is verified (the smarthost's, or a route's or an MX host's with tls = \"required\"); one that is exactly the peer's certificate is pinned, so a lab's self-signed smarthost works. Empty: the system's roots only."),
    ("relay", "concurrency", "Messages delivered at once (to next hops and local Maildirs), 1 to 1024. Each holds its message in memory while it is tried, so memory is bounded by this times [limits] max_message_bytes (twice that when DKIM signs it)."),
    ("relay", "destination_concurrency", "Deliveries at once to one destination: a route, the smarthost, or one domain's MX hosts (Postfix's default_destination_concurrency_limit), 1 to 1024."),
    ("relay", "connection_cache_secs", "A session with a next hop is kept open this long (at most 300 s) after a message and reused for the next one to the same peer, checked with RSET first (Postfix's smtp_connection_cache_time_limit); 0: one session per message."),
    ("relay", "mx_port", "The TCP port of direct delivery to MX hosts (Postfix's smtp_tcp_port); other than 25 only for tests and labs. Beyond the contract."),
    ("dns", "nameservers", "Name servers asked, as \"IP:PORT\" (or an IP, port 53), e.g. [\"127.0.0.1:5353\"]; empty: those of the system's /etc/resolv.conf."),
    ("queue", "dir", "The durable outbound queue (messages and their envelopes, each fsync'ed before the 250)."),
    ("queue", "minimal_backoff_secs", "First retry after a deferral; doubled each time."),
    ("queue", "maximal_backoff_secs", "Longest wait between two tries."),
    ("queue", "max_lifetime_secs", "A message still undelivered after this long fails."),
    ("queue", "scan_interval_secs", "How often the queue's msg/ is listed for messages this instance does not know: queued by another instance sharing [queue] dir, or left by one that died, which this one then takes over. Beyond the contract."),
    ("queue", "delay_warning_secs", "A message still undelivered after this long gets one delay warning (an RFC 3464 report, Action: delayed) to its sender, unless its RCPT said NOTIFY without DELAY; 0: no warnings (Postfix's delay_warning_time)."),
    ("dkim", "selector", "The `s=` of the signatures: the public key is published as a TXT record at *selector*`._domainkey.`*domain*."),
    ("dkim", "key", "The private key file, PEM: RSA (PKCS#1 or PKCS#8, 2048 to 4096 bits) or Ed25519 (PKCS#8), as `smtpctl dkim-keygen` or `openssl genpkey` write it. Mode 0600, or 0640 with smtpd's group: a key other users may read is refused."),
    ("dkim", "algorithm", "\"rsa\" (rsa-sha256) or \"ed25519\" (ed25519-sha256, RFC 8463); unset: the key's. A key of the other kind is an error."),
    ("http", "listen", "HTTP listeners, as \"IP:PORT\" (e.g. [\"127.0.0.1:8025\"], Mailpit's port); plain HTTP/1.1. Empty: no HTTP."),
    ("http", "token", "Bearer token that non-loopback peers must send (`Authorization: Bearer` *token*; at least 16 characters of letters, digits and `-._~+/=`); empty: only loopback peers are served (others get 401)."),
    ("http", "max_wait_secs", "`GET /api/v1/wait`: a longer `timeout` is cut to this many seconds."),
    ("http", "max_waiters", "Waits in progress at once; beyond: 503."),
    ("http", "header_timeout_secs", "A request head (request line and headers) must arrive within this many seconds, else the connection is closed; also how long an idle keep-alive connection is kept."),
    ("http", "max_header_bytes", "Longest request head in octets (at least 1024); beyond: 431 and close."),
    ("http", "max_event_streams", "`GET /api/v1/events` (server-sent events) streams open at once; beyond: 503. A stream that falls more than 1024 events behind is closed."),
    ("http", "tls", "true: every `listen` address speaks HTTPS (TLS 1.2/1.3) with the [tls] certificate, which must then be set; Basic credentials are accepted only over it. A reload applies it to new connections."),
    ("http", "admins", "Accounts (addresses of [[accounts]]) that, logged in with Basic credentials over HTTPS, see every mailbox and the operator routes (`/metrics`, `/api/v1/events`), as loopback peers and the token do; any other account sees its own mailbox only, and another one's is 403."),
    ("http", "event_keepalive_secs", "An idle event stream gets a comment line this often, so that proxies keep it open."),
    ("accounts", "address", "The login name and mailbox, \"local@domain\" in one of the domains."),
    ("accounts", "password", "An argon2id hash made by `smtpctl encrypt`, or a $6$ SHA512-crypt hash."),
];

/// Keys of the sections without defaults that may be left out.
const OPTIONAL: &[(&str, &str)] = &[("dkim", "algorithm")];

/// Every key, with its default taken from the section's `Default` impl.
pub fn reference() -> Vec<KeyDoc> {
    KEYS.iter()
        .map(|&(section, key, doc)| {
            let defaults = defaults(section);
            let optional = OPTIONAL.contains(&(section, key));
            KeyDoc {
                section,
                key,
                default: defaults
                    .as_ref()
                    .and_then(|t| t.get(key))
                    .map(ToString::to_string),
                required: defaults.is_none() && !optional,
                doc,
            }
        })
        .collect()
}

/// The keys `[section]` may hold, in reference order; the top level (`""`) also holds the
/// sections.
pub(crate) fn known_keys(section: &str) -> Vec<&'static str> {
    let keys = KEYS
        .iter()
        .filter(|(s, ..)| *s == section)
        .map(|(_, k, _)| *k);
    if section.is_empty() {
        let sections = SECTION_DOCS.iter().map(|s| s.0).filter(|n| !n.is_empty());
        keys.chain(sections).collect()
    } else {
        keys.collect()
    }
}

/// A section's defaults as a TOML table; `None` for the sections without defaults.
fn defaults(section: &str) -> Option<toml::Table> {
    fn table(v: impl Serialize) -> Option<toml::Table> {
        toml::Table::try_from(v).ok()
    }
    match section {
        "server" => table(Server::default()),
        "smtp" => table(Smtp::default()),
        "pop3" => table(Pop3::default()),
        "imap" => table(Imap::default()),
        "tls" => table(Tls::default()),
        "mailboxes" => table(Mailboxes::default()),
        "limits" => table(Limits::default()),
        "log" => table(Log::default()),
        "control" => table(Control::default()),
        "testing" => table(Testing::default()),
        "metrics" => table(Metrics::default()),
        "relay" => table(Relay::default()),
        "dns" => table(Dns::default()),
        "queue" => table(Queue::default()),
        "http" => table(Http::default()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
