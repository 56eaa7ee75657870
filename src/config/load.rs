//! TOML → [`Config`], collecting every problem with its line instead of stopping at the first.
//!
//! The document is parsed with spans (`toml::de::DeTable`), then walked key by key against the
//! schema below: unknown keys, wrong types and bad values are each reported where they stand.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::*;
use crate::proto::smtp::address::{is_address_literal, is_domain, parse_mailbox};

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read the configuration file: {e}"),
        }],
    })?;
    parse(&text, path)
}

/// Validates `text` as if read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut l = Loader {
        src: text,
        problems: Vec::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in syntax {
        let line = e.span().map(|s| l.line_of(s.start)).unwrap_or(0);
        l.problems.push(Problem {
            line,
            message: e.message().trim().to_string(),
        });
    }
    if !l.problems.is_empty() {
        // After a syntax error the tree is a best guess; do not pile up follow-on errors.
        return Err(l.finish_err(path));
    }
    let config = l.config(doc.get_ref(), path);
    if l.problems.is_empty() {
        Ok(config)
    } else {
        Err(l.finish_err(path))
    }
}

struct Loader<'s> {
    src: &'s str,
    problems: Vec<Problem>,
}

/// One table being read; remembers which keys the schema knows.
struct Section<'t, 'i> {
    table: Option<&'t DeTable<'i>>,
    name: &'static str,
    known: Vec<&'static str>,
}

impl<'s> Loader<'s> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line where `key = ...` is first set (for problems found after parsing).
    fn key_line(&self, key: &str) -> usize {
        self.src
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.starts_with(key) && l[key.len()..].trim_start().starts_with('=')
            })
            .map(|i| i + 1)
            .unwrap_or(1)
    }

    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }

    fn finish_err(mut self, path: &Path) -> ConfigError {
        self.problems.sort_by_key(|p| p.line);
        ConfigError {
            path: path.to_path_buf(),
            problems: self.problems,
        }
    }

    fn section<'t, 'i>(
        &mut self,
        root: &mut Section<'t, 'i>,
        name: &'static str,
    ) -> Section<'t, 'i> {
        root.known.push(name);
        let table = match root.table.and_then(|t| find(t, name)) {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Some(t),
                other => {
                    self.problem(
                        v.span(),
                        format!("[{name}] must be a table, not {}", other.type_str()),
                    );
                    None
                }
            },
        };
        Section {
            table,
            name,
            known: Vec::new(),
        }
    }

    /// Reports keys the schema does not know.
    fn finish(&mut self, s: Section) {
        let Some(t) = s.table else { return };
        for (k, _) in t.iter() {
            let key: &str = k.get_ref();
            if !s.known.contains(&key) {
                let known = s.known.join(", ");
                let place = if s.name.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in [{}]", s.name)
                };
                self.problem(
                    k.span(),
                    format!("unknown key `{key}` {place} (known keys: {known})"),
                );
            }
        }
    }

    fn value<'t, 'i>(
        &mut self,
        s: &mut Section<'t, 'i>,
        key: &'static str,
    ) -> Option<&'t Spanned<DeValue<'i>>> {
        s.known.push(key);
        s.table.and_then(|t| find(t, key))
    }

    fn type_error(&mut self, s: &Section, key: &str, v: &Spanned<DeValue>, want: &str) {
        let name = qualified(s, key);
        self.problem(
            v.span(),
            format!("`{name}` must be {want}, not {}", v.get_ref().type_str()),
        );
    }

    fn string(&mut self, s: &mut Section, key: &'static str, default: &str) -> Spanned<String> {
        match self.value(s, key) {
            None => Spanned::new(0..0, default.to_string()),
            Some(v) => match v.get_ref() {
                DeValue::String(x) => Spanned::new(v.span(), x.to_string()),
                _ => {
                    self.type_error(s, key, v, "a string");
                    Spanned::new(v.span(), default.to_string())
                }
            },
        }
    }

    fn boolean(&mut self, s: &mut Section, key: &'static str, default: bool) -> bool {
        match self.value(s, key) {
            None => default,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    self.type_error(s, key, v, "true or false");
                    default
                }
            },
        }
    }

    /// A non-negative integer of at least `min`.
    fn uint(&mut self, s: &mut Section, key: &'static str, default: u64, min: u64) -> u64 {
        let Some(v) = self.value(s, key) else {
            return default;
        };
        let DeValue::Integer(i) = v.get_ref() else {
            self.type_error(s, key, v, "an integer");
            return default;
        };
        let digits = i.as_str().replace('_', "");
        let parsed = match digits.strip_prefix('+').unwrap_or(&digits) {
            d if i.radix() == 10 => d.parse::<u64>().ok(),
            d => u64::from_str_radix(d, i.radix()).ok(),
        };
        match parsed {
            Some(n) if n >= min => n,
            _ => {
                let name = qualified(s, key);
                self.problem(
                    v.span(),
                    format!(
                        "`{name}` must be a whole number of at least {min}, not {}",
                        i.as_str()
                    ),
                );
                default
            }
        }
    }

    fn usize(&mut self, s: &mut Section, key: &'static str, default: usize, min: usize) -> usize {
        let n = self.uint(s, key, default as u64, min as u64);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// An array of strings, each with its span.
    fn strings(
        &mut self,
        s: &mut Section,
        key: &'static str,
        default: &[&str],
    ) -> Vec<Spanned<String>> {
        let fallback = || {
            default
                .iter()
                .map(|d| Spanned::new(0..0, d.to_string()))
                .collect()
        };
        let Some(v) = self.value(s, key) else {
            return fallback();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(s, key, v, "an array of strings");
            return fallback();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(x) => out.push(Spanned::new(item.span(), x.to_string())),
                other => {
                    let name = qualified(s, key);
                    self.problem(
                        item.span(),
                        format!("`{name}` must hold strings, not {}", other.type_str()),
                    );
                }
            }
        }
        out
    }

    /// An array of `IP:PORT` listening addresses.
    fn addresses(
        &mut self,
        s: &mut Section,
        key: &'static str,
        default: &[&str],
        seen: &mut BTreeSet<SocketAddr>,
    ) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for item in self.strings(s, key, default) {
            match item.get_ref().parse::<SocketAddr>() {
                Ok(a) => {
                    if a.port() != 0 && !seen.insert(a) {
                        self.problem(
                            item.span(),
                            format!("`{a}` is listed twice among the listeners"),
                        );
                    }
                    out.push(a);
                }
                Err(_) => {
                    let name = qualified(s, key);
                    self.problem(
                        item.span(),
                        format!(
                            "`{name}`: `{}` is not an IP:PORT address (e.g. \"127.0.0.1:2525\" or \"[::1]:2525\"; names are not resolved)",
                            item.get_ref()
                        ),
                    );
                }
            }
        }
        out
    }

    fn choice<T: Copy>(
        &mut self,
        s: &mut Section,
        key: &'static str,
        default: T,
        options: &[(&str, T)],
    ) -> T {
        let v = self.string(s, key, "");
        if v.span() == (0..0) {
            return default;
        }
        match options.iter().find(|(name, _)| *name == v.get_ref()) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                let name = qualified(s, key);
                self.problem(
                    v.span(),
                    format!(
                        "`{name}` must be one of {}, not \"{}\"",
                        names.join(", "),
                        v.get_ref()
                    ),
                );
                default
            }
        }
    }

    fn config(&mut self, doc: &DeTable, path: &Path) -> Config {
        let mut top = Section {
            table: Some(doc),
            name: "",
            known: Vec::new(),
        };

        let hostname = match self.value(&mut top, "hostname") {
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
                    self.type_error(&top, "hostname", v, "a string");
                    String::new()
                }
            },
        };

        let mut seen = BTreeSet::new();

        let mut s = self.section(&mut top, "server");
        let server = Server {
            user: self.string(&mut s, "user", "").into_inner(),
            group: self.string(&mut s, "group", "").into_inner(),
            shutdown_grace_secs: self.uint(&mut s, "shutdown_grace_secs", 30, 0),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "smtp");
        let smtp = Smtp {
            listen: self.addresses(&mut s, "listen", &["127.0.0.1:2525"], &mut seen),
            submission: self.addresses(&mut s, "submission", &[], &mut seen),
            submissions: self.addresses(&mut s, "submissions", &[], &mut seen),
            sender_login_match: self.boolean(&mut s, "sender_login_match", true),
            allow_insecure_auth: self.boolean(&mut s, "allow_insecure_auth", false),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "pop3");
        let d = Pop3::default();
        let pop3 = Pop3 {
            listen: self.addresses(&mut s, "listen", &["127.0.0.1:1110"], &mut seen),
            pop3s: self.addresses(&mut s, "pop3s", &[], &mut seen),
            allow_insecure_auth: self.boolean(&mut s, "allow_insecure_auth", false),
            idle_timeout_secs: self.uint(&mut s, "idle_timeout_secs", d.idle_timeout_secs, 1),
            max_command_line: self.usize(&mut s, "max_command_line", d.max_command_line, 255),
            auth_failure_delay_ms: self.uint(
                &mut s,
                "auth_failure_delay_ms",
                d.auth_failure_delay_ms,
                0,
            ),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "tls");
        let tls = s.table.is_some().then(|| {
            let d = Tls::default();
            Tls {
                cert: PathBuf::from(
                    self.string(&mut s, "cert", &d.cert.to_string_lossy())
                        .into_inner(),
                ),
                key: PathBuf::from(
                    self.string(&mut s, "key", &d.key.to_string_lossy())
                        .into_inner(),
                ),
                self_signed: self.boolean(&mut s, "self_signed", false),
            }
        });
        if tls.is_none() {
            s.known.extend(["cert", "key", "self_signed"]);
        }
        self.finish(s);

        let mut s = self.section(&mut top, "mailboxes");
        let root = self.string(&mut s, "root", "mailboxes");
        if root.get_ref().is_empty() {
            self.problem(root.span(), "`mailboxes.root` must not be empty");
        }
        let mut domains = Vec::new();
        for d in self.strings(&mut s, "domains", &["example.test", "localhost"]) {
            let lower = d.get_ref().to_ascii_lowercase();
            if !is_domain(&lower) {
                self.problem(
                    d.span(),
                    format!(
                        "`mailboxes.domains`: \"{}\" is not a domain name",
                        d.get_ref()
                    ),
                );
            } else if domains.contains(&lower) {
                self.problem(
                    d.span(),
                    format!("`mailboxes.domains`: \"{lower}\" is listed twice"),
                );
            } else {
                domains.push(lower);
            }
        }
        if domains.is_empty() && self.problems.is_empty() {
            let line = s
                .table
                .and_then(|t| find(t, "domains"))
                .map(|v| v.span().start);
            let msg = "`mailboxes.domains` must list at least one local domain";
            match line {
                Some(off) => self.problem(off..off, msg),
                None => self.problems.push(Problem {
                    line: 1,
                    message: msg.into(),
                }),
            }
        }
        let accept = self.choice(
            &mut s,
            "accept",
            AcceptMode::Any,
            &[("any", AcceptMode::Any), ("accounts", AcceptMode::Accounts)],
        );
        let mailboxes = Mailboxes {
            root: PathBuf::from(root.into_inner()),
            domains,
            accept,
        };
        self.finish(s);

        let mut s = self.section(&mut top, "limits");
        let d = Limits::default();
        let limits = Limits {
            max_message_bytes: self.uint(&mut s, "max_message_bytes", d.max_message_bytes, 1),
            max_recipients: self.usize(&mut s, "max_recipients", d.max_recipients, 1),
            max_connections: self.usize(&mut s, "max_connections", d.max_connections, 1),
            max_connections_per_ip: self.usize(
                &mut s,
                "max_connections_per_ip",
                d.max_connections_per_ip,
                1,
            ),
            command_timeout_secs: self.uint(
                &mut s,
                "command_timeout_secs",
                d.command_timeout_secs,
                1,
            ),
            data_timeout_secs: self.uint(&mut s, "data_timeout_secs", d.data_timeout_secs, 1),
            max_errors: u32::try_from(self.uint(&mut s, "max_errors", d.max_errors.into(), 1))
                .unwrap_or(u32::MAX),
            max_command_line: self.usize(&mut s, "max_command_line", d.max_command_line, 512),
            max_line_length: self.usize(&mut s, "max_line_length", d.max_line_length, 1000),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "log");
        let d = Log::default();
        let level = self.string(&mut s, "level", &d.level);
        if tracing_subscriber::EnvFilter::try_new(level.get_ref()).is_err() {
            self.problem(
                level.span(),
                format!(
                    "`log.level`: \"{}\" is not a level (error, warn, info, debug, trace) or a filter",
                    level.get_ref()
                ),
            );
        }
        let log = Log {
            dir: PathBuf::from(self.string(&mut s, "dir", "logs").into_inner()),
            level: level.into_inner(),
            rotation: self.choice(
                &mut s,
                "rotation",
                d.rotation,
                &[
                    ("hourly", Rotation::Hourly),
                    ("daily", Rotation::Daily),
                    ("never", Rotation::Never),
                ],
            ),
            keep: self.usize(&mut s, "keep", d.keep, 1),
            format: self.choice(
                &mut s,
                "format",
                d.format,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            ),
            transcripts: self.boolean(&mut s, "transcripts", d.transcripts),
            transcript_max_kib: self.usize(&mut s, "transcript_max_kib", d.transcript_max_kib, 1),
            transcript_keep_days: self.usize(
                &mut s,
                "transcript_keep_days",
                d.transcript_keep_days,
                1,
            ),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "control");
        let control = Control {
            socket: PathBuf::from(self.string(&mut s, "socket", "run/smtpd.sock").into_inner()),
            pid_file: PathBuf::from(
                self.string(&mut s, "pid_file", "run/smtpd.pid")
                    .into_inner(),
            ),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "testing");
        let testing = Testing {
            fault_addresses: self.boolean(&mut s, "fault_addresses", false),
        };
        self.finish(s);

        let mut s = self.section(&mut top, "metrics");
        let listen = self.string(&mut s, "listen", "");
        let metrics = Metrics {
            listen: match listen.get_ref().as_str() {
                "" => None,
                text => match text.parse::<SocketAddr>() {
                    Ok(_) if !cfg!(feature = "metrics-http") => {
                        self.problem(
                            listen.span(),
                            "`metrics.listen`: this smtpd was built without the `metrics-http` feature; remove the key (and use `smtpctl metrics`) or build with `--features metrics-http`".to_string(),
                        );
                        None
                    }
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.problem(
                            listen.span(),
                            format!("`metrics.listen`: `{text}` is not an IP:PORT address (e.g. \"127.0.0.1:9325\")"),
                        );
                        None
                    }
                },
            },
        };
        self.finish(s);

        let accounts = self.accounts(&mut top, &mailboxes.domains);
        self.finish(top);
        if tls.is_none() {
            for (key, set) in [
                ("submissions", !smtp.submissions.is_empty()),
                ("pop3s", !pop3.pop3s.is_empty()),
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
            tls,
            mailboxes,
            limits,
            log,
            control,
            accounts,
            testing,
            metrics,
        }
    }

    fn accounts(&mut self, top: &mut Section, domains: &[String]) -> Vec<Account> {
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
            let mut s = Section {
                table: Some(t),
                name: "accounts",
                known: Vec::new(),
            };
            let address = self.string(&mut s, "address", "");
            let password = self.string(&mut s, "password", "");
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

fn find<'t, 'i>(t: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    t.iter()
        .find(|(k, _)| {
            let k: &str = k.get_ref();
            k == key
        })
        .map(|(_, v)| v)
}

fn qualified(s: &Section, key: &str) -> String {
    if s.name.is_empty() {
        key.to_string()
    } else {
        format!("{}.{key}", s.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<(usize, String)> {
        match parse(text, Path::new("t.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| (p.line, p.message))
                .collect(),
        }
    }

    #[test]
    fn minimal_config_gets_every_default() {
        let c = parse("hostname = \"mx.test\"\n", Path::new("t.toml")).unwrap();
        assert_eq!(c.hostname, "mx.test");
        assert_eq!(c.smtp, Smtp::default());
        assert_eq!(c.pop3, Pop3::default());
        assert_eq!(c.mailboxes, Mailboxes::default());
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.log, Log::default());
        assert_eq!(c.control, Control::default());
        assert_eq!(c.server, Server::default());
        assert!(c.tls.is_none());
        assert!(c.accounts.is_empty());
    }

    #[test]
    fn bundled_config_is_valid() {
        let text = include_str!("../../config/smtpd.toml");
        let c = parse(text, Path::new("config/smtpd.toml")).unwrap();
        assert_eq!(
            c.smtp.listen,
            vec!["127.0.0.1:2525".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(c.mailboxes.root, PathBuf::from("mailboxes"));
        assert_eq!(c.log.dir, PathBuf::from("logs"));
    }

    #[test]
    fn hostname_is_required() {
        let p = problems("[smtp]\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].1.contains("hostname"));
    }

    #[test]
    fn every_problem_reported_with_its_line() {
        let text = "hostname = \"mx.test\"\n\
                    bogus = 1\n\
                    [smtp]\n\
                    listen = [\"127.0.0.1:2525\", \"localhost:25\"]\n\
                    [limits]\n\
                    max_recipients = \"many\"\n\
                    max_errors = -1\n\
                    max_command_line = 100\n\
                    [mailboxes]\n\
                    accept = \"some\"\n\
                    domains = [\"ok.test\", \"bad/domain\"]\n\
                    [log]\n\
                    rotation = \"weekly\"\n\
                    levle = \"info\"\n";
        let p = problems(text);
        let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 4, 6, 7, 8, 10, 11, 13, 14], "{p:#?}");
        assert!(p[0].1.contains("unknown key `bogus`"));
        assert!(p[1].1.contains("localhost:25"));
        assert!(p[2].1.contains("max_recipients"));
        assert!(p[8].1.contains("unknown key `levle` in [log]"));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let p = problems("hostname = \"mx.test\"\n[smtp]\nlisten = [\n");
        assert!(!p.is_empty());
        assert!(p[0].0 >= 3, "{p:?}");
    }

    #[test]
    fn accounts_are_checked() {
        let text = "hostname = \"mx.test\"\n\
                    [mailboxes]\ndomains = [\"example.test\"]\naccept = \"accounts\"\n\
                    [[accounts]]\naddress = \"Alice@Example.test\"\npassword = \"$argon2id$x\"\n\
                    [[accounts]]\naddress = \"bob@other.test\"\npassword = \"$6$x$y\"\n\
                    [[accounts]]\naddress = \"carol@example.test\"\n";
        let p = problems(text);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert_eq!(p[0].0, 9);
        assert!(p[0].1.contains("not in mailboxes.domains"));
        assert_eq!(p[1].0, 12);
        assert!(p[1].1.contains("password"));
        let ok = "hostname = \"mx.test\"\n[mailboxes]\ndomains = [\"example.test\"]\naccept = \"accounts\"\n[[accounts]]\naddress = \"Alice@Example.test\"\npassword = \"$argon2id$h\"\n";
        let c = parse(ok, Path::new("t.toml")).unwrap();
        assert_eq!(c.accounts[0].address, "alice@example.test");
    }

    #[test]
    fn plaintext_password_is_refused() {
        let p = problems(
            "hostname = \"mx.test\"\n[mailboxes]\ndomains = [\"example.test\"]\n[[accounts]]\naddress = \"a@example.test\"\npassword = \"hunter2\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, 6);
        assert!(p[0].1.contains("never the password itself"));
    }

    #[test]
    fn duplicate_listener_is_an_error() {
        let p = problems(
            "hostname = \"mx.test\"\n[smtp]\nlisten = [\"127.0.0.1:2525\"]\n[pop3]\nlisten = [\"127.0.0.1:2525\"]\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 5);
    }

    #[test]
    fn display_is_path_line_message() {
        let e = parse("hostname = \"mx.test\"\nx = 1\n", Path::new("c/s.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("c/s.toml:2: unknown key `x`"),
            "{e}"
        );
    }
}
