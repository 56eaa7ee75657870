//! What a new configuration changes, in words, for `smtpctl reload` and `smtpctl reload --check`:
//! listeners added and removed, each changed setting with its old and new value, accounts added,
//! removed and changed, the TLS certificate, and what needs a restart.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use super::listeners::wanted;
use crate::config::Config;

/// `section.key: old → new` for each scalar that differs (arrays compared whole).
fn settings<T: Serialize>(section: &str, old: &T, new: &T, skip: &[&str], out: &mut Vec<String>) {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return;
    };
    for (k, v) in &b {
        if skip.contains(&k.as_str()) {
            continue;
        }
        if a.get(k) != Some(v) {
            let was = a
                .get(k)
                .map(|x| x.to_string())
                .unwrap_or_else(|| "-".into());
            out.push(format!("{section}.{k}: {was} → {v}"));
        }
    }
}

/// (changes applied on reload, settings that need a restart).
pub fn describe(
    old: &Config,
    new: &Config,
    running_since: SystemTime,
) -> (Vec<String>, Vec<String>) {
    let mut changes = Vec::new();
    // Compared as multisets: two "127.0.0.1:0" listeners are two listeners.
    let (mut before, mut after) = (wanted(old), wanted(new));
    before.retain(|l| match after.iter().position(|a| a == l) {
        Some(i) => {
            after.remove(i);
            false
        }
        None => true,
    });
    for l in &after {
        changes.push(format!("listener added: {} {}", l.0, l.1));
    }
    for l in &before {
        changes.push(format!("listener removed: {} {}", l.0, l.1));
    }
    if old.hostname != new.hostname {
        changes.push(format!("hostname: {} → {}", old.hostname, new.hostname));
    }
    settings("limits", &old.limits, &new.limits, &[], &mut changes);
    settings(
        "mailboxes",
        &old.mailboxes,
        &new.mailboxes,
        &[],
        &mut changes,
    );
    let skip = ["listen", "submission", "submissions", "pop3s", "imaps"];
    settings("smtp", &old.smtp, &new.smtp, &skip, &mut changes);
    settings("pop3", &old.pop3, &new.pop3, &skip, &mut changes);
    settings("imap", &old.imap, &new.imap, &skip, &mut changes);
    settings(
        "server",
        &old.server,
        &new.server,
        &["user", "group"],
        &mut changes,
    );
    settings("relay", &old.relay, &new.relay, &[], &mut changes);
    settings("dns", &old.dns, &new.dns, &[], &mut changes);
    settings("queue", &old.queue, &new.queue, &["dir"], &mut changes);
    settings(
        "http",
        &old.http,
        &new.http,
        &["listen", "token"],
        &mut changes,
    );
    if old.http.token != new.http.token {
        changes.push("http.token: changed".into());
    }
    if old.aliases != new.aliases {
        let changed = old
            .aliases
            .iter()
            .filter(|(k, v)| new.aliases.get(*k) != Some(v))
            .count()
            + new
                .aliases
                .keys()
                .filter(|k| !old.aliases.contains_key(*k))
                .count();
        changes.push(format!("aliases: {changed} changed"));
    }
    if old.log.level != new.log.level {
        changes.push(format!("log.level: {} → {}", old.log.level, new.log.level));
    }
    let a: BTreeMap<&str, &str> = old
        .accounts
        .iter()
        .map(|x| (x.address.as_str(), x.password.as_str()))
        .collect();
    let b: BTreeMap<&str, &str> = new
        .accounts
        .iter()
        .map(|x| (x.address.as_str(), x.password.as_str()))
        .collect();
    for (addr, hash) in &b {
        match a.get(addr) {
            None => changes.push(format!("account added: {addr}")),
            Some(h) if h != hash => changes.push(format!("account changed: {addr} (new password)")),
            Some(_) => {}
        }
    }
    for addr in a.keys().filter(|k| !b.contains_key(*k)) {
        changes.push(format!("account removed: {addr}"));
    }
    dkim(old, new, &mut changes);
    match (&old.tls, &new.tls) {
        (None, Some(_)) => changes.push("TLS enabled".into()),
        (Some(_), None) => changes.push("TLS disabled".into()),
        (Some(o), Some(n)) if o != n => changes.push("[tls] settings changed".into()),
        (Some(_), Some(n)) => {
            let modified = [&n.cert, &n.key].iter().any(|p| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t > running_since)
            });
            let missing = !n.cert.exists() || !n.key.exists();
            if modified || missing {
                changes.push("TLS certificate changed".into());
            }
        }
        (None, None) => {}
    }
    let mut restart = Vec::new();
    if old.log.dir != new.log.dir
        || old.log.rotation != new.log.rotation
        || old.log.keep != new.log.keep
        || old.log.format != new.log.format
    {
        restart.push("[log] dir/rotation/keep/format".to_string());
    }
    if old.control != new.control {
        restart.push("[control]".to_string());
    }
    if old.queue.dir != new.queue.dir {
        restart.push("[queue] dir".to_string());
    }
    if old.server.user != new.server.user || old.server.group != new.server.group {
        restart.push("[server] user/group".to_string());
    }
    (changes, restart)
}

/// `[dkim]` domains added, removed, or signing with another selector or key (a key file
/// rewritten in place counts: the keys are read again on every reload).
fn dkim(old: &Config, new: &Config, changes: &mut Vec<String>) {
    let alg = |d: &crate::config::Dkim| d.algorithm.map_or("?", |a| a.signature_name());
    for (domain, n) in &new.dkim {
        match old.dkim.get(domain) {
            None => changes.push(format!(
                "dkim added: {domain} (selector {}, {})",
                n.selector,
                alg(n)
            )),
            Some(o) if o.selector != n.selector => changes.push(format!(
                "dkim changed: {domain} (selector {} → {})",
                o.selector, n.selector
            )),
            Some(o) if o != n => {
                changes.push(format!("dkim changed: {domain} (new key, {})", alg(n)))
            }
            Some(_) => {}
        }
    }
    for domain in old.dkim.keys().filter(|k| !new.dkim.contains_key(*k)) {
        changes.push(format!("dkim removed: {domain}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(extra: &str) -> Config {
        crate::config::parse(
            &format!("hostname = \"mx.test\"\n{extra}"),
            Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn semantic_changes() {
        let h = crate::auth::password::hash("x").unwrap();
        let old = cfg(&format!(
            "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n[limits]\nmax_recipients = 100\n[[accounts]]\naddress = \"a@localhost\"\npassword = \"{h}\"\n[[accounts]]\naddress = \"b@localhost\"\npassword = \"{h}\"\n"
        ));
        let h2 = crate::auth::password::hash("y").unwrap();
        let new = cfg(&format!(
            "[smtp]\nlisten = [\"127.0.0.1:2526\"]\n[limits]\nmax_recipients = 5\n[dns]\nnameservers = [\"127.0.0.1:5353\"]\n[log]\nlevel = \"debug\"\nformat = \"json\"\n[relay]\nroutes = {{ \"far.test\" = \"127.0.0.1:2626\" }}\n[queue]\ndelay_warning_secs = 60\n[http]\nmax_wait_secs = 5\ntoken = \"0123456789abcdef\"\n[aliases]\n\"x@localhost\" = \"a@localhost\"\n[[accounts]]\naddress = \"a@localhost\"\npassword = \"{h2}\"\n[[accounts]]\naddress = \"c@localhost\"\npassword = \"{h}\"\n"
        ));
        let (changes, restart) = describe(&old, &new, SystemTime::now());
        for want in [
            "listener added: smtp 127.0.0.1:2526",
            "listener removed: smtp 127.0.0.1:2525",
            "limits.max_recipients: 100 → 5",
            "log.level: info → debug",
            "dns.nameservers: [] → [\"127.0.0.1:5353\"]",
            "account added: c@localhost",
            "account removed: b@localhost",
            "account changed: a@localhost (new password)",
            "relay.routes: {} → {\"far.test\":\"127.0.0.1:2626\"}",
            "queue.delay_warning_secs: 0 → 60",
            "aliases: 1 changed",
            "http.max_wait_secs: 300 → 5",
            "http.token: changed",
        ] {
            assert!(
                changes.iter().any(|c| c == want),
                "{want} missing: {changes:#?}"
            );
        }
        assert!(
            !changes.iter().any(|c| c.contains("0123456789abcdef")),
            "no secret shown"
        );
        assert_eq!(restart, ["[log] dir/rotation/keep/format"]);
        let (none, _) = describe(&old, &old, SystemTime::now());
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn dkim_changes() {
        let old = cfg(
            "[dkim]\n\"a.test\" = { selector = \"s1\", key = \"k\" }\n\"b.test\" = { selector = \"s1\", key = \"k\" }\n\"c.test\" = { selector = \"s1\", key = \"k\" }\n",
        );
        let new = cfg(
            "[dkim]\n\"a.test\" = { selector = \"s2\", key = \"k\" }\n\"c.test\" = { selector = \"s1\", key = \"k2\" }\n\"d.test\" = { selector = \"s1\", key = \"k\", algorithm = \"ed25519\" }\n",
        );
        let (changes, _) = describe(&old, &new, SystemTime::now());
        assert_eq!(
            changes,
            [
                "dkim changed: a.test (selector s1 → s2)",
                "dkim changed: c.test (new key, ?)",
                "dkim added: d.test (selector s1, ed25519-sha256)",
                "dkim removed: b.test",
            ]
        );
    }
}
