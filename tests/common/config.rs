//! Config for a test server: [`Overrides`] of the harness defaults, rendered by [`config_text`].

use std::collections::BTreeMap;
use std::path::Path;

/// Config overrides: section → key → TOML value ("" is the top level), and accounts.
#[derive(Clone, Debug, Default)]
pub struct Overrides(
    BTreeMap<String, BTreeMap<String, String>>,
    Vec<(String, String)>,
);

/// The password of every account the harness makes.
pub const PASSWORD: &str = "s3cret pass";

impl Overrides {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, section: &str, key: &str, value: &str) -> Self {
        self.0
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }
    /// A POP3 listener on a free port, a short failed-login delay, and these accounts
    /// (password [`PASSWORD`]).
    pub fn pop3(mut self, accounts: &[&str]) -> Self {
        self = self.set("pop3", "listen", "[\"127.0.0.1:0\"]").set(
            "pop3",
            "auth_failure_delay_ms",
            "200",
        );
        for a in accounts {
            self = self.account(a, PASSWORD);
        }
        self
    }
    /// TLS with a self-signed certificate made at start, and every TLS listener: submission,
    /// submissions, pop3, pop3s; plus these accounts.
    pub fn tls(self, accounts: &[&str]) -> Self {
        self.pop3(accounts)
            .set("tls", "cert", "\"tls/cert.pem\"")
            .set("tls", "key", "\"tls/key.pem\"")
            .set("tls", "self_signed", "true")
            .set("smtp", "submission", "[\"127.0.0.1:0\"]")
            .set("smtp", "submissions", "[\"127.0.0.1:0\"]")
            .set("pop3", "pop3s", "[\"127.0.0.1:0\"]")
    }
    pub fn account(self, address: &str, password: &str) -> Self {
        let hash = smtpd::auth::password::hash(password).unwrap();
        self.account_hash(address, &hash)
    }
    /// An account with a ready-made password hash.
    pub fn account_hash(mut self, address: &str, hash: &str) -> Self {
        self.1.push((address.to_string(), hash.to_string()));
        self
    }
}

/// Builds a config for `dir`, the harness defaults overridden by `o`.
pub fn config_text(dir: &Path, o: &Overrides) -> String {
    let d = dir.display();
    let base = Overrides::new()
        .set("", "hostname", "\"mx.example.test\"")
        .set("smtp", "listen", "[\"127.0.0.1:0\"]")
        .set("pop3", "listen", "[]")
        .set("mailboxes", "root", &format!("\"{d}/mailboxes\""))
        .set("mailboxes", "domains", "[\"example.test\", \"localhost\"]")
        .set("log", "dir", &format!("\"{d}/logs\""))
        .set("queue", "dir", &format!("\"{d}/queue\""))
        .set("control", "socket", &format!("\"{d}/run/smtpd.sock\""))
        .set("control", "pid_file", &format!("\"{d}/run/smtpd.pid\""));
    let mut merged = base.0;
    for (section, keys) in &o.0 {
        for (k, v) in keys {
            merged
                .entry(section.clone())
                .or_default()
                .insert(k.clone(), v.clone());
        }
    }
    let mut text = String::new();
    if let Some(top) = merged.remove("") {
        for (k, v) in top {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    for (section, keys) in merged {
        text.push_str(&format!("\n[{section}]\n"));
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    for (address, hash) in &o.1 {
        text.push_str(&format!(
            "\n[[accounts]]\naddress = \"{address}\"\npassword = \"{hash}\"\n"
        ));
    }
    text
}
