use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::config::parse;

fn doc(section: &str, key: &str) -> KeyDoc {
    reference()
        .into_iter()
        .find(|d| d.section == section && d.key == key)
        .unwrap_or_else(|| panic!("no reference for [{section}] {key}"))
}

/// Parses one TOML value (`["a", "b"]`, `30`, `"x"`).
fn value(text: &str) -> Result<toml::Value, String> {
    let mut t: toml::Table = format!("v = {text}").parse().map_err(|e| format!("{e}"))?;
    Ok(t.remove("v").unwrap())
}

/// Every field of a `Default` impl has a reference entry (a new key cannot go undocumented).
#[test]
fn every_default_is_documented() {
    for s in sections() {
        let Some(table) = defaults(s.name) else {
            continue;
        };
        let known = known_keys(s.name);
        for key in table.keys() {
            assert!(
                known.contains(&key.as_str()),
                "[{}] {key} has no doc",
                s.name
            );
        }
    }
    let named: BTreeSet<&str> = SECTION_DOCS.iter().map(|s| s.0).collect();
    assert!(KEYS.iter().all(|(s, ..)| named.contains(s)));
    assert_eq!(named.len(), SECTION_DOCS.len());
}

#[test]
fn defaults_are_rendered_as_toml() {
    assert_eq!(
        doc("smtp", "listen").default.unwrap(),
        r#"["127.0.0.1:2525"]"#
    );
    assert_eq!(
        doc("pop3", "listen").default.unwrap(),
        r#"["127.0.0.1:1110"]"#
    );
    assert_eq!(doc("smtp", "submission").default.unwrap(), "[]");
    assert_eq!(
        doc("limits", "max_message_bytes").default.unwrap(),
        "26214400"
    );
    assert_eq!(doc("log", "rotation").default.unwrap(), r#""daily""#);
    assert_eq!(
        doc("tls", "cert").default.unwrap(),
        r#""config/tls/cert.pem""#
    );
    let metrics = doc("metrics", "listen");
    assert_eq!((metrics.default, metrics.required), (None, false));
    let hostname = doc("", "hostname");
    assert_eq!((hostname.default, hostname.required), (None, true));
    assert!(doc("dkim", "selector").required);
    let algorithm = doc("dkim", "algorithm");
    assert_eq!((algorithm.default, algorithm.required), (None, false));
}

/// The loader reads every key of the reference: a value of the wrong type is reported as such,
/// never as an unknown key or silently ignored.
#[test]
fn loader_reads_every_key() {
    for d in reference() {
        let wrong = match &d.default {
            Some(v) if !v.starts_with('"') => "\"x\"",
            _ => "1",
        };
        let text = match d.section {
            "" => format!("{} = {wrong}\n", d.key),
            "accounts" => format!(
                "hostname = \"mx.test\"\n[[accounts]]\n{} = {wrong}\n",
                d.key
            ),
            "dkim" => format!(
                "hostname = \"mx.test\"\n[dkim]\n\"example.test\" = {{ {} = {wrong} }}\n",
                d.key
            ),
            s => format!("hostname = \"mx.test\"\n[{s}]\n{} = {wrong}\n", d.key),
        };
        let name = match d.section {
            "" => d.key.to_string(),
            s => format!("{s}.{}", d.key),
        };
        let err = parse(&text, Path::new("t.toml")).unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.message.starts_with(&format!("`{name}` must be"))),
            "{text}: {err}"
        );
    }
}

/// The "known keys" list of the unknown-key message, as README shows it.
#[test]
fn unknown_key_lists_the_reference() {
    let err = parse(
        "hostname = \"mx.test\"\n[smtp]\nlisen = []\n",
        Path::new("t.toml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.toml:3: unknown key `lisen` in [smtp] (known keys: listen, submission, submissions, sender_login_match, allow_insecure_auth)"
    );
    let err = parse("hostname = \"mx.test\"\nx = 1\n", Path::new("t.toml")).unwrap_err();
    assert!(
        err.to_string().ends_with("(known keys: hostname, server, smtp, pop3, imap, tls, mailboxes, limits, log, control, testing, metrics, relay, dns, queue, http, aliases, dkim, accounts)"),
        "{err}"
    );
}

/// Splits a line `key = value  # comment` (outside any string) into its three parts.
fn key_line(line: &str) -> Option<(&str, &str, &str)> {
    let (key, rest) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let mut quote = None;
    let mut escaped = false;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => {
                end = i;
                break;
            }
            _ => {}
        }
        escaped = false;
    }
    let comment = rest.get(end + 1..).unwrap_or("");
    Some((key, rest[..end].trim(), comment))
}

/// Checks a config file's key lines against the reference: every key is known, every
/// `(default: V)` in a comment is the real default, and (when `all_defaults`: the file says its
/// values are the defaults unless said otherwise) a value other than the default says so.
fn check_stated_defaults(path: &str, text: &str, all_defaults: bool) {
    let mut section = "";
    for (n, line) in text.lines().enumerate() {
        let at = format!("{path}:{}", n + 1);
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split_once("]]")) {
            section = name.0;
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            section = name.0;
            continue;
        }
        let Some((key, set, comment)) = key_line(line) else {
            continue;
        };
        let Some(d) = reference()
            .into_iter()
            .find(|d| d.section == section && d.key == key)
        else {
            panic!("{at}: [{section}] {key} is not in the reference");
        };
        let set = value(set).unwrap_or_else(|e| panic!("{at}: {e}"));
        let default = d.default.as_deref().map(|v| value(v).unwrap());
        let stated = comment
            .split_once("(default: ")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(v, _)| v);
        match stated {
            Some("none") => assert_eq!(default, None, "{at}: the default is not none"),
            Some(v) => assert_eq!(
                Some(value(v).unwrap_or_else(|e| panic!("{at}: {e}"))),
                default,
                "{at}: the stated default is not the default"
            ),
            None if all_defaults && !d.required => assert_eq!(
                Some(&set),
                default.as_ref(),
                "{at}: not the default; say `(default: {})` in the comment",
                d.default.as_deref().unwrap_or("none")
            ),
            None => {}
        }
    }
}

#[test]
fn bundled_config_states_the_defaults() {
    check_stated_defaults(
        "config/smtpd.toml",
        include_str!("../../../config/smtpd.toml"),
        true,
    );
}

#[test]
fn packaged_config_is_valid_and_states_no_wrong_default() {
    let text = include_str!("../../../packaging/smtpd.toml");
    parse(text, Path::new("packaging/smtpd.toml")).unwrap();
    check_stated_defaults("packaging/smtpd.toml", text, false);
}

#[test]
fn stated_defaults_are_checked() {
    let text = "[smtp]\nlisten = [\"127.0.0.1:25\"]  # (default: [\"127.0.0.1:2525\"])\n";
    check_stated_defaults("t", text, true);
    let wrong = "[smtp]\nlisten = []  # (default: [])\n";
    assert!(std::panic::catch_unwind(|| check_stated_defaults("t", wrong, false)).is_err());
    let unsaid = "[pop3]\nidle_timeout_secs = 60\n";
    assert!(std::panic::catch_unwind(|| check_stated_defaults("t", unsaid, true)).is_err());
    assert_eq!(
        key_line(r##"a = "x # y" # z"##),
        Some(("a", "\"x # y\"", " z"))
    );
}
