//! LIST and LSUB (RFC 3501), with LIST-EXTENDED (RFC 5258: the selection options SUBSCRIBED,
//! REMOTE and RECURSIVEMATCH, several patterns, the return options SUBSCRIBED and CHILDREN),
//! LIST-STATUS (RFC 5819: RETURN (STATUS (...))) and SPECIAL-USE (RFC 6154: the selection and
//! the return option). Every LIST line carries `\HasChildren` or `\HasNoChildren`, the folder's
//! special-use attribute and `\Subscribed` when it is subscribed (CHILDREN and SPECIAL-USE
//! allow them always, RFC 5258 requires them when asked); a subscribed name with no folder is
//! `\NonExistent` (LIST (SUBSCRIBED) only). A `%` pattern also reaches the missing parent of a
//! folder (`Work` of `Work.2026` made alone), shown `\Noselect` (RFC 3501 6.3.8), or
//! `\NonExistent` once IMAP4rev2 is enabled. The extended arguments are read by
//! [`super::extended`].

use std::collections::HashSet;

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};

use super::encode::{astring, tagged, untagged};
use super::extended::ListCommand;
use super::folders::{status_line, store_call, wire_name};
use super::session::ImapSession;
use super::store::FolderInfo;

/// IMAP LIST wildcards: `*` matches anything, `%` anything but the separator `.`
/// (dynamic programming: linear in name × pattern, whatever the pattern).
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (p, n) = (pattern, name);
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &pc in p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            b'*' | b'%' => {
                next[0] = row[0];
                for j in 1..=n.len() {
                    next[j] = row[j] || (next[j - 1] && (pc == b'*' || n[j - 1] != b'.'));
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

/// LIST or LSUB as imap-codec read it (`LIST reference pattern`).
pub fn list(
    s: &mut ImapSession,
    tag: &str,
    reference: &Mailbox<'_>,
    w: &ListMailbox<'_>,
    lsub: bool,
) {
    let cmd = ListCommand {
        reference: match reference {
            Mailbox::Inbox => b"INBOX".to_vec(),
            Mailbox::Other(o) => o.as_ref().to_vec(),
        },
        patterns: vec![match w {
            ListMailbox::Token(t) => t.as_ref().to_vec(),
            ListMailbox::String(st) => st.as_ref().to_vec(),
        }],
        ..ListCommand::default()
    };
    run(s, tag, &cmd, lsub);
}

/// LIST with RFC 5258's arguments.
pub fn list_extended(s: &mut ImapSession, tag: &str, cmd: &ListCommand) {
    run(s, tag, cmd, false);
}

/// One name LIST may show.
struct Entry {
    name: String,
    special: Option<&'static str>,
    has_children: bool,
    subscribed: bool,
    exists: bool,
    /// A missing parent a `%` pattern may reach.
    parent: bool,
}

impl Entry {
    /// A folder the store has.
    fn existing(f: FolderInfo) -> Entry {
        Entry {
            name: f.name,
            special: f.special,
            has_children: f.has_children,
            subscribed: f.subscribed,
            exists: true,
            parent: false,
        }
    }

    /// `* LIST (attrs) "." name [CHILDINFO]` CRLF.
    fn line(&self, verb: &str, lsub: bool, rev2: bool, childinfo: bool) -> Vec<u8> {
        let mut attrs = Vec::new();
        if !self.exists {
            attrs.push(if self.parent && !rev2 {
                "\\Noselect"
            } else {
                "\\NonExistent"
            });
        }
        attrs.push(if self.has_children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        });
        if let Some(sp) = self.special.filter(|_| !lsub) {
            attrs.push(sp);
        }
        if self.subscribed && !lsub {
            attrs.push("\\Subscribed");
        }
        let mut out = format!("* {verb} ({}) \".\" ", attrs.join(" ")).into_bytes();
        astring(&mut out, wire_name(&self.name, rev2).as_bytes());
        if childinfo {
            out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// The LIST line of folder `name`, which SELECT sends under IMAP4rev2 (RFC 9051 6.3.2).
pub fn line_of(s: &ImapSession, name: &str) -> Vec<u8> {
    let info = s
        .store
        .as_ref()
        .and_then(|st| st.folders().ok())
        .and_then(|list| list.into_iter().find(|f| f.name == name));
    let entry = match info {
        Some(f) => Entry::existing(f),
        None => {
            let mut out = b"* LIST () \".\" ".to_vec();
            astring(&mut out, wire_name(name, s.rev2).as_bytes());
            out.extend_from_slice(b"\r\n");
            return out;
        }
    };
    entry.line("LIST", false, s.rev2, false)
}

fn is_child(child: &str, parent: &str) -> bool {
    child.len() > parent.len() + 1
        && child.starts_with(parent)
        && child.as_bytes()[parent.len()] == b'.'
}

fn run(s: &mut ImapSession, tag: &str, cmd: &ListCommand, lsub: bool) {
    let verb = if lsub { "LSUB" } else { "LIST" };
    if cmd.patterns.iter().all(|p| p.is_empty()) {
        // The hierarchy delimiter and root (RFC 3501 6.3.8).
        s.reply(untagged(&format!("{verb} (\\Noselect) \".\" \"\"")));
        return s.reply(tagged(tag, "OK", &format!("{verb} completed")));
    }
    let Some(folders) = store_call(s, tag, |st| st.folders()) else {
        return;
    };
    let mut entries: Vec<Entry> = folders.into_iter().map(Entry::existing).collect();
    // The names listed so far, so that adding names stays linear in the folder count.
    let mut names: HashSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    if cmd.patterns.iter().any(|p| p.contains(&b'%')) {
        let mut parents: Vec<String> = Vec::new();
        for e in &entries {
            let mut at = e.name.as_str();
            while let Some((parent, _)) = at.rsplit_once('.') {
                if !names.contains(parent) {
                    parents.push(parent.to_string());
                }
                at = parent;
            }
        }
        parents.sort();
        parents.dedup();
        for name in parents {
            names.insert(name.clone());
            entries.push(Entry {
                name,
                special: None,
                has_children: true,
                subscribed: false,
                exists: false,
                parent: true,
            });
        }
    }
    let sel = cmd.select;
    if sel.subscribed {
        let Some(subs) = store_call(s, tag, |st| st.subscriptions()) else {
            return;
        };
        let known = |n: &&String| n.eq_ignore_ascii_case("INBOX") || names.contains(*n);
        let mut missing: Vec<String> = subs.iter().filter(|n| !known(n)).cloned().collect();
        if sel.recursive {
            // Parents of subscribed names, which RECURSIVEMATCH may have to show (CHILDINFO).
            let subscribed: Vec<String> = entries
                .iter()
                .filter(|e| e.subscribed)
                .map(|e| e.name.clone())
                .chain(missing.iter().cloned())
                .collect();
            for n in subscribed {
                let mut at = n.as_str();
                while let Some((parent, _)) = at.rsplit_once('.') {
                    missing.push(parent.to_string());
                    at = parent;
                }
            }
        }
        missing.sort();
        missing.dedup();
        for name in missing {
            if !names.insert(name.clone()) {
                continue;
            }
            let subscribed = subs.contains(&name);
            entries.push(Entry {
                has_children: entries.iter().any(|e| e.exists && is_child(&e.name, &name)),
                name,
                special: None,
                subscribed,
                exists: false,
                parent: false,
            });
        }
    }
    if entries.iter().any(|e| !e.exists) {
        entries.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
    }
    // Under IMAP4rev2 the reference and patterns are UTF-8; the names they match are stored in
    // modified UTF-7 (the wildcards are ASCII and stay as they are).
    let stored = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(t) if s.rev2 => super::mutf7::encode(t).into_bytes(),
        _ => b.to_vec(),
    };
    let fulls: Vec<Vec<u8>> = cmd
        .patterns
        .iter()
        .map(|p| [stored(&cmd.reference), stored(p)].concat())
        .collect();
    let matched: Vec<bool> = entries
        .iter()
        .map(|e| {
            fulls.iter().any(|full| {
                if e.name == "INBOX" {
                    matches(&full.to_ascii_uppercase(), b"INBOX")
                } else {
                    matches(full, e.name.as_bytes())
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if !matched[i] || (lsub && !e.subscribed) {
            continue;
        }
        // RECURSIVEMATCH: a descendant that is subscribed but not matched is told as CHILDINFO.
        let childinfo = sel.recursive
            && sel.subscribed
            && entries
                .iter()
                .zip(&matched)
                .any(|(d, &m)| !m && d.subscribed && is_child(&d.name, &e.name));
        if (sel.subscribed && !e.subscribed && !childinfo)
            || (sel.special_use && e.special.is_none())
            || (!e.exists && !e.parent && !sel.subscribed)
        {
            continue;
        }
        out.extend(e.line(verb, lsub, s.rev2, childinfo));
        if let (Some(items), true) = (&cmd.ret.status, e.exists) {
            // A folder removed meanwhile has no STATUS line; the LIST line stays.
            if let Some(Ok(st)) = s.store.as_ref().map(|store| store.status(&e.name)) {
                out.extend(status_line(&e.name, &st, items, s.rev2));
            }
        }
    }
    s.reply(out);
    s.reply(tagged(tag, "OK", &format!("{verb} completed")));
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn list_wildcards() {
        for (p, n, yes) in [
            ("*", "Work.2026", true),
            ("%", "Work.2026", false),
            ("%", "Work", true),
            ("Work.%", "Work.2026", true),
            ("W*6", "Work.2026", true),
            ("S%", "Sent", true),
            ("s%", "Sent", false),
            ("Sent", "sent", false),
            (
                "*a*a*a*a*a*a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
        ] {
            assert_eq!(matches(p.as_bytes(), n.as_bytes()), yes, "{p} {n}");
        }
    }
}
