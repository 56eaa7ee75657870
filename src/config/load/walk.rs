//! The schema walk: one function per section, each reading its keys in the order
//! [`crate::config::schema`] lists them, with the section's `Default` for every key not set.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::{Loader, Section, find};
use crate::config::*;
use crate::proto::smtp::address::{is_address_literal, is_domain, parse_mailbox};

impl Loader<'_> {
    pub(super) fn config(&mut self, doc: &DeTable, path: &Path) -> Config {
        let top = Section {
            table: Some(doc),
            name: "",
        };
        let hostname = self.hostname(&top);
        let mut seen = BTreeSet::new();
        let server = self.server(&top);
        let smtp = self.smtp(&top, &mut seen);
        let pop3 = self.pop3(&top, &mut seen);
        let imap = self.imap(&top, &mut seen);
        let tls = self.tls(&top);
        let mailboxes = self.mailboxes(&top);
        let limits = self.limits(&top);
        let log = self.log(&top);
        let control = self.control(&top);
        let testing = self.testing(&top);
        let metrics = self.metrics(&top);
        let relay = self.relay(&top);
        let dns = self.dns(&top);
        let queue = self.queue(&top);
        let http = self.http(&top, &mut seen, tls.is_some());
        let aliases = self.aliases(&top, &mailboxes.domains);
        let dkim = self.dkim(&top);
        let accounts = self.accounts(&top, &mailboxes.domains);
        self.finish(top);
        let implicit_tls = !smtp.submissions.is_empty()
            || !pop3.pop3s.is_empty()
            || !imap.imaps.is_empty()
            || (http.tls && !http.listen.is_empty());
        let tls = tls.map(|t| self.acme_check(t, &hostname, &http, implicit_tls));
        if tls.is_none() {
            for (key, set) in [
                ("submissions", !smtp.submissions.is_empty()),
                ("pop3s", !pop3.pop3s.is_empty()),
                ("imaps", !imap.imaps.is_empty()),
            ] {
                if set {
                    let line = self.key_line(key);
                    self.problems.push(Problem {
                        line,
                        message: format!(
                            "`{key}` listeners use implicit TLS: add a [tls] section (cert and key, or self_signed = true)"
                        ),
                    });
                }
            }
        }

        Config {
            path: path.to_path_buf(),
            hostname,
            server,
            smtp,
            pop3,
            imap,
            tls,
            mailboxes,
            limits,
            log,
            control,
            accounts,
            testing,
            metrics,
            relay,
            dns,
            queue,
            http,
            aliases,
            dkim,
        }
    }

    /// Reads `[name]` with `f`, then reports the keys in it that the schema does not know.
    pub(super) fn read<T>(
        &mut self,
        top: &Section,
        name: &'static str,
        f: impl FnOnce(&mut Self, &Section) -> T,
    ) -> T {
        let s = self.section(top, name);
        let t = f(self, &s);
        self.finish(s);
        t
    }

    fn hostname(&mut self, top: &Section) -> String {
        match self.value(top, "hostname") {
            None => {
                self.problems.push(Problem {
                    line: 1,
                    message: "`hostname` is required: the name this server gives in its greeting, EHLO reply and Received: headers (e.g. hostname = \"mail.example.test\")".into(),
                });
                String::new()
            }
            Some(v) => match v.get_ref() {
                DeValue::String(h) if is_domain(h) || is_address_literal(h) => h.to_string(),
                DeValue::String(h) => {
                    self.problem(
                        v.span(),
                        format!("`hostname`: \"{h}\" is not a valid host name"),
                    );
                    String::new()
                }
                _ => {
                    self.type_error(top, "hostname", v, "a string");
                    String::new()
                }
            },
        }
    }

    fn server(&mut self, top: &Section) -> Server {
        self.read(top, "server", |l, s| {
            let d = Server::default();
            Server {
                user: l.string(s, "user", &d.user).into_inner(),
                group: l.string(s, "group", &d.group).into_inner(),
                shutdown_grace_secs: l.uint(s, "shutdown_grace_secs", d.shutdown_grace_secs, 0),
                instance: {
                    let v = l.string(s, "instance", &d.instance);
                    let name = v.get_ref();
                    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
                    if name.len() > 64 || !name.chars().all(fine) {
                        l.problem(
                            v.span(),
                            format!("`server.instance`: \"{name}\" is not a name for Maildir files (letters, digits, '.', '-' and '_'; at most 64)"),
                        );
                    }
                    v.into_inner()
                },
                proxy_from: l.networks(s, "server", "proxy_from", &d.proxy_from),
                proxy_timeout_secs: l.uint(s, "proxy_timeout_secs", d.proxy_timeout_secs, 1),
            }
        })
    }

    fn smtp(&mut self, top: &Section, seen: &mut BTreeSet<SocketAddr>) -> Smtp {
        self.read(top, "smtp", |l, s| {
            let d = Smtp::default();
            Smtp {
                listen: l.addresses(s, "listen", &d.listen, seen),
                submission: l.addresses(s, "submission", &d.submission, seen),
                submissions: l.addresses(s, "submissions", &d.submissions, seen),
                sender_login_match: l.boolean(s, "sender_login_match", d.sender_login_match),
                allow_insecure_auth: l.boolean(s, "allow_insecure_auth", d.allow_insecure_auth),
            }
        })
    }

    fn imap(&mut self, top: &Section, seen: &mut BTreeSet<SocketAddr>) -> Imap {
        self.read(top, "imap", |l, s| {
            let d = Imap::default();
            Imap {
                listen: l.addresses(s, "listen", &d.listen, seen),
                imaps: l.addresses(s, "imaps", &d.imaps, seen),
                allow_insecure_auth: l.boolean(s, "allow_insecure_auth", d.allow_insecure_auth),
                idle_timeout_secs: l.uint(s, "idle_timeout_secs", d.idle_timeout_secs, 1),
                max_literal: l
                    .uint(s, "max_literal", u64::from(d.max_literal), 1024)
                    .min(u64::from(u32::MAX)) as u32,
                max_line: l
                    .uint(s, "max_line", u64::from(d.max_line), 1024)
                    .min(1 << 24) as u32,
                auth_failure_delay_ms: l.uint(
                    s,
                    "auth_failure_delay_ms",
                    d.auth_failure_delay_ms,
                    0,
                ),
                idle_poll_secs: l.uint(s, "idle_poll_secs", d.idle_poll_secs, 1),
                expunges_kept: l.uint(s, "expunges_kept", d.expunges_kept, 1),
                mtime_granularity_ms: l.uint(s, "mtime_granularity_ms", d.mtime_granularity_ms, 0),
            }
        })
    }

    fn pop3(&mut self, top: &Section, seen: &mut BTreeSet<SocketAddr>) -> Pop3 {
        self.read(top, "pop3", |l, s| {
            let d = Pop3::default();
            Pop3 {
                listen: l.addresses(s, "listen", &d.listen, seen),
                pop3s: l.addresses(s, "pop3s", &d.pop3s, seen),
                allow_insecure_auth: l.boolean(s, "allow_insecure_auth", d.allow_insecure_auth),
                idle_timeout_secs: l.uint(s, "idle_timeout_secs", d.idle_timeout_secs, 1),
                max_command_line: l.usize(s, "max_command_line", d.max_command_line, 255),
                auth_failure_delay_ms: l.uint(
                    s,
                    "auth_failure_delay_ms",
                    d.auth_failure_delay_ms,
                    0,
                ),
            }
        })
    }

    /// `[tls]` is optional: without it there is no TLS.
    fn tls(&mut self, top: &Section) -> Option<Tls> {
        self.read(top, "tls", |l, s| {
            s.table.is_some().then(|| {
                let d = Tls::default();
                Tls {
                    cert: l.path(s, "cert", &d.cert),
                    key: l.path(s, "key", &d.key),
                    self_signed: l.boolean(s, "self_signed", d.self_signed),
                    acme: l.boolean(s, "acme", d.acme),
                    acme_directory: l.acme_directory(s, &d.acme_directory),
                    acme_email: l.acme_email(s),
                    acme_names: l.acme_names(s),
                    acme_cafile: l.string(s, "acme_cafile", &d.acme_cafile).into_inner(),
                    acme_challenge: l.choice(
                        s,
                        "acme_challenge",
                        d.acme_challenge,
                        &[
                            ("auto", AcmeChallenge::Auto),
                            ("http-01", AcmeChallenge::Http01),
                            ("tls-alpn-01", AcmeChallenge::TlsAlpn01),
                        ],
                    ),
                }
            })
        })
    }

    fn mailboxes(&mut self, top: &Section) -> Mailboxes {
        self.read(top, "mailboxes", |l, s| {
            let d = Mailboxes::default();
            let root = l.string(s, "root", &d.root.to_string_lossy());
            if root.get_ref().is_empty() {
                l.problem(root.span(), "`mailboxes.root` must not be empty");
            }
            let mut domains = Vec::new();
            for domain in l.strings(s, "domains", &d.domains) {
                let lower = domain.get_ref().to_ascii_lowercase();
                if !is_domain(&lower) {
                    l.problem(
                        domain.span(),
                        format!(
                            "`mailboxes.domains`: \"{}\" is not a domain name",
                            domain.get_ref()
                        ),
                    );
                } else if domains.contains(&lower) {
                    l.problem(
                        domain.span(),
                        format!("`mailboxes.domains`: \"{lower}\" is listed twice"),
                    );
                } else {
                    domains.push(lower);
                }
            }
            if domains.is_empty() && l.problems.is_empty() {
                let line = s
                    .table
                    .and_then(|t| find(t, "domains"))
                    .map(|v| v.span().start);
                let msg = "`mailboxes.domains` must list at least one local domain";
                match line {
                    Some(off) => l.problem(off..off, msg),
                    None => l.problems.push(Problem {
                        line: 1,
                        message: msg.into(),
                    }),
                }
            }
            let accept = l.choice(
                s,
                "accept",
                d.accept,
                &[("any", AcceptMode::Any), ("accounts", AcceptMode::Accounts)],
            );
            let delimiter = l.string(s, "recipient_delimiter", &d.recipient_delimiter);
            let text = delimiter.get_ref();
            if !text.is_empty()
                && (text.chars().count() != 1
                    || text.chars().any(|c| c.is_alphanumeric() || c == '@' || c == '.' || c.is_whitespace()))
            {
                l.problem(
                    delimiter.span(),
                    format!("`mailboxes.recipient_delimiter` must be one character like \"+\" or \"-\", not \"{text}\""),
                );
            }
            Mailboxes {
                root: PathBuf::from(root.into_inner()),
                domains,
                accept,
                recipient_delimiter: delimiter.into_inner(),
            }
        })
    }

    fn limits(&mut self, top: &Section) -> Limits {
        self.read(top, "limits", |l, s| {
            let d = Limits::default();
            Limits {
                max_message_bytes: l.uint(s, "max_message_bytes", d.max_message_bytes, 1),
                max_recipients: l.usize(s, "max_recipients", d.max_recipients, 1),
                max_connections: l.usize(s, "max_connections", d.max_connections, 1),
                max_connections_per_ip: l.usize(
                    s,
                    "max_connections_per_ip",
                    d.max_connections_per_ip,
                    1,
                ),
                command_timeout_secs: l.uint(s, "command_timeout_secs", d.command_timeout_secs, 1),
                data_timeout_secs: l.uint(s, "data_timeout_secs", d.data_timeout_secs, 1),
                max_errors: u32::try_from(l.uint(s, "max_errors", d.max_errors.into(), 1))
                    .unwrap_or(u32::MAX),
                max_command_line: l.usize(s, "max_command_line", d.max_command_line, 512),
                max_line_length: l.usize(s, "max_line_length", d.max_line_length, 1000),
            }
        })
    }

    fn log(&mut self, top: &Section) -> Log {
        self.read(top, "log", |l, s| {
            let d = Log::default();
            let level = l.string(s, "level", &d.level);
            if tracing_subscriber::EnvFilter::try_new(level.get_ref()).is_err() {
                l.problem(
                    level.span(),
                    format!(
                        "`log.level`: \"{}\" is not a level (error, warn, info, debug, trace) or a filter",
                        level.get_ref()
                    ),
                );
            }
            Log {
                dir: l.path(s, "dir", &d.dir),
                level: level.into_inner(),
                rotation: l.choice(
                    s,
                    "rotation",
                    d.rotation,
                    &[
                        ("hourly", Rotation::Hourly),
                        ("daily", Rotation::Daily),
                        ("never", Rotation::Never),
                    ],
                ),
                keep: l.usize(s, "keep", d.keep, 1),
                format: l.choice(
                    s,
                    "format",
                    d.format,
                    &[("text", LogFormat::Text), ("json", LogFormat::Json)],
                ),
                transcripts: l.boolean(s, "transcripts", d.transcripts),
                transcript_max_kib: l.usize(s, "transcript_max_kib", d.transcript_max_kib, 1),
                transcript_keep_days: l.usize(s, "transcript_keep_days", d.transcript_keep_days, 1),
            }
        })
    }

    fn control(&mut self, top: &Section) -> Control {
        self.read(top, "control", |l, s| {
            let d = Control::default();
            Control {
                socket: l.path(s, "socket", &d.socket),
                pid_file: l.path(s, "pid_file", &d.pid_file),
            }
        })
    }

    fn testing(&mut self, top: &Section) -> Testing {
        self.read(top, "testing", |l, s| {
            let d = Testing::default();
            Testing {
                fault_addresses: l.boolean(s, "fault_addresses", d.fault_addresses),
            }
        })
    }

    /// `[metrics] listen`: deprecated, accepted (whatever its value) and ignored; the daemon and
    /// `--check-config` say so ([`Config::deprecations`]).
    fn metrics(&mut self, top: &Section) -> Metrics {
        self.read(top, "metrics", |l, s| {
            let listen = l.string(s, "listen", "");
            Metrics {
                listen: Some(listen.get_ref().clone()).filter(|t| !t.is_empty()),
            }
        })
    }

    fn http(&mut self, top: &Section, seen: &mut BTreeSet<SocketAddr>, has_tls: bool) -> Http {
        self.read(top, "http", |l, s| {
            let d = Http::default();
            let listen = l.addresses(s, "listen", &d.listen, seen);
            let token = l.string(s, "token", &d.token);
            if let Some(why) = token_problem(token.get_ref()) {
                l.problem(token.span(), format!("`http.token`: {why}"));
            }
            Http {
                listen,
                token: token.into_inner(),
                max_wait_secs: l.uint(s, "max_wait_secs", d.max_wait_secs, 1),
                max_waiters: l.usize(s, "max_waiters", d.max_waiters, 1),
                header_timeout_secs: l.uint(s, "header_timeout_secs", d.header_timeout_secs, 1),
                max_header_bytes: l.usize(s, "max_header_bytes", d.max_header_bytes, 1024),
                max_event_streams: l.usize(s, "max_event_streams", d.max_event_streams, 1),
                event_keepalive_secs: l.uint(s, "event_keepalive_secs", d.event_keepalive_secs, 1),
                tls: {
                    let tls = l.boolean(s, "tls", d.tls);
                    if tls && !has_tls {
                        let line = l.key_line("listen");
                        l.problems.push(Problem {
                            line,
                            message: "`http.tls = true`: HTTPS needs the certificate of a [tls] section (cert and key, or self_signed = true)".to_string(),
                        });
                    }
                    tls
                },
                admins: l
                    .strings(s, "admins", &d.admins)
                    .into_iter()
                    .map(|a| a.into_inner().to_ascii_lowercase())
                    .collect(),
            }
        })
    }

    fn accounts(&mut self, top: &Section, domains: &[String]) -> Vec<Account> {
        let Some(v) = self.value(top, "accounts") else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.problem(
                v.span(),
                "`accounts` must be written as [[accounts]] tables",
            );
            return Vec::new();
        };
        let mut out: Vec<Account> = Vec::new();
        for item in items.iter() {
            let DeValue::Table(t) = item.get_ref() else {
                self.problem(item.span(), "each [[accounts]] entry must be a table");
                continue;
            };
            let s = Section {
                table: Some(t),
                name: "accounts",
            };
            let address = self.string(&s, "address", "");
            let password = self.string(&s, "password", "");
            let at = if address.span() == (0..0) {
                item.span()
            } else {
                address.span()
            };
            let lower = address.get_ref().to_ascii_lowercase();
            match parse_mailbox(&lower) {
                _ if address.get_ref().is_empty() => {
                    self.problem(at.clone(), "[[accounts]] needs `address = \"user@domain\"`")
                }
                Ok(m) if !domains.contains(&m.domain) => self.problem(
                    at.clone(),
                    format!(
                        "account `{lower}`: domain `{}` is not in mailboxes.domains",
                        m.domain
                    ),
                ),
                Ok(_) if out.iter().any(|a| a.address == lower) => {
                    self.problem(at.clone(), format!("account `{lower}` is defined twice"))
                }
                Ok(_) => {}
                Err(e) => self.problem(at.clone(), format!("account `{}`: {e}", address.get_ref())),
            }
            if password.get_ref().is_empty() {
                self.problem(
                    at,
                    format!("account `{lower}` needs `password`: a hash made by `smtpctl encrypt`"),
                );
            } else if !crate::auth::password::is_supported(password.get_ref()) {
                self.problem(
                    password.span(),
                    format!(
                        "account `{lower}`: `password` must be a hash made by `smtpctl encrypt` ($argon2id$...) or a SHA512-crypt hash ($6$...), never the password itself"
                    ),
                );
            }
            out.push(Account {
                address: lower,
                password: password.into_inner(),
            });
            self.finish(s);
        }
        out
    }
}

/// Why `token` cannot be a Bearer token (RFC 6750 b64token characters, at least 16 of them), or
/// `None` (also for the empty token: loopback peers only).
fn token_problem(token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if let Some(c) = token.chars().find(|&c| !allowed(c)) {
        return Some(format!(
            "{c:?} cannot be in a Bearer token (letters, digits and - . _ ~ + / = only)"
        ));
    }
    if token.len() < 16 {
        return Some(format!(
            "a token of {} characters is too easy to guess: use at least 16 (e.g. the output of `openssl rand -hex 16`)",
            token.len()
        ));
    }
    None
}
