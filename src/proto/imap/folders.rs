//! The authenticated state's folder commands: SELECT / EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE / UNSUBSCRIBE, LIST / LSUB (with SPECIAL-USE and CHILDREN attributes), STATUS,
//! APPEND.

use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag as ImapFlag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

use super::encode::{astring, tagged, untagged};
use super::selected::{flags_from, flags_lines, keyword_names, report_changes, store_failed};
use super::session::{ImapSession, State};
use super::store::{Flag, Store, StoreError};

/// The folder name a command gave, or a NO already sent.
pub fn mailbox_name(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>) -> Option<String> {
    match m {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(o) => match std::str::from_utf8(o.as_ref()) {
            Ok(n) => Some(n.to_string()),
            Err(_) => {
                s.reply(tagged(
                    tag,
                    "NO",
                    "[CANNOT] Folder names are modified UTF-7 (ASCII)",
                ));
                None
            }
        },
    }
}

fn store_call<T>(
    s: &mut ImapSession,
    tag: &str,
    f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
) -> Option<T> {
    let store = s.store.as_mut()?;
    match f(store.as_mut()) {
        Ok(v) => Some(v),
        Err(e) => {
            store_failed(s, tag, &e);
            None
        }
    }
}

pub fn select(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>, read_only: bool) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    if s.state == State::Selected {
        if let Some(st) = s.store.as_mut() {
            st.deselect();
        }
        s.state = State::Authenticated;
        // RFC 7162: the old folder is closed.
        s.reply(untagged("OK [CLOSED] Previous folder closed"));
    }
    if store_call(s, tag, |st| st.select(&name, read_only)).is_none() {
        return;
    }
    let Some(f) = s.store.as_ref().and_then(|st| st.selected()) else {
        return;
    };
    let mut out = flags_lines(f.keywords, read_only);
    out.extend(untagged(&format!("{} EXISTS", f.msgs.len())));
    out.extend(untagged(&format!(
        "{} RECENT",
        f.msgs.iter().filter(|m| m.recent).count()
    )));
    if let Some(i) = f.msgs.iter().position(|m| !m.flags.contains(Flag::Seen)) {
        out.extend(untagged(&format!("OK [UNSEEN {}] First unseen", i + 1)));
    }
    out.extend(untagged(&format!(
        "OK [UIDVALIDITY {}] UIDs valid",
        f.uidvalidity
    )));
    out.extend(untagged(&format!(
        "OK [UIDNEXT {}] Predicted next UID",
        f.next_uid
    )));
    let (code, verb) = if read_only {
        ("READ-ONLY", "EXAMINE")
    } else {
        ("READ-WRITE", "SELECT")
    };
    out.extend(tagged(tag, "OK", &format!("[{code}] {verb} completed")));
    s.reply(out);
    s.state = State::Selected;
    s.read_only = read_only;
    s.selected_name = name;
}

pub fn create(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    if store_call(s, tag, |st| st.create(&name)).is_some() {
        s.reply(tagged(tag, "OK", "CREATE completed"));
    }
}

pub fn delete(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    if s.state == State::Selected && s.selected_name == name {
        return s.reply(tagged(
            tag,
            "NO",
            "[INUSE] The folder is selected; CLOSE it first",
        ));
    }
    if store_call(s, tag, |st| st.delete(&name)).is_some() {
        s.reply(tagged(tag, "OK", "DELETE completed"));
    }
}

pub fn rename(s: &mut ImapSession, tag: &str, from: &Mailbox<'_>, to: &Mailbox<'_>) {
    let Some(from) = mailbox_name(s, tag, from) else {
        return;
    };
    let Some(to) = mailbox_name(s, tag, to) else {
        return;
    };
    if store_call(s, tag, |st| st.rename(&from, &to)).is_some() {
        s.reply(tagged(tag, "OK", "RENAME completed"));
    }
}

pub fn subscribe(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>, on: bool) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    if store_call(s, tag, |st| st.subscribe(&name, on)).is_some() {
        let verb = if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
        s.reply(tagged(tag, "OK", &format!("{verb} completed")));
    }
}

fn list_pattern(w: &ListMailbox<'_>) -> Vec<u8> {
    match w {
        ListMailbox::Token(t) => t.as_ref().to_vec(),
        ListMailbox::String(st) => st.as_ref().to_vec(),
    }
}

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

pub fn list(
    s: &mut ImapSession,
    tag: &str,
    reference: &Mailbox<'_>,
    w: &ListMailbox<'_>,
    lsub: bool,
) {
    let verb = if lsub { "LSUB" } else { "LIST" };
    let pattern = list_pattern(w);
    if pattern.is_empty() {
        // The hierarchy delimiter and root (RFC 3501 6.3.8).
        s.reply(untagged(&format!("{verb} (\\Noselect) \".\" \"\"")));
        return s.reply(tagged(tag, "OK", &format!("{verb} completed")));
    }
    let mut full = match reference {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.as_ref().to_vec(),
    };
    full.extend_from_slice(&pattern);
    let Some(folders) = store_call(s, tag, |st| st.folders()) else {
        return;
    };
    let mut out = Vec::new();
    for f in folders {
        let name_matches = if f.name == "INBOX" {
            matches(&full.to_ascii_uppercase(), b"INBOX")
        } else {
            matches(&full, f.name.as_bytes())
        };
        if !name_matches || (lsub && !f.subscribed) {
            continue;
        }
        let mut attrs = vec![if f.has_children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        }];
        if let Some(sp) = f.special.filter(|_| !lsub) {
            attrs.push(sp);
        }
        if f.subscribed && !lsub {
            attrs.push("\\Subscribed");
        }
        out.extend_from_slice(format!("* {verb} ({}) \".\" ", attrs.join(" ")).as_bytes());
        astring(&mut out, f.name.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    s.reply(out);
    s.reply(tagged(tag, "OK", &format!("{verb} completed")));
}

pub fn status(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>, items: &[StatusDataItemName]) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    let Some(st) = store_call(s, tag, |st| st.status(&name)) else {
        return;
    };
    let mut parts = Vec::new();
    for it in items {
        let (k, v) = match it {
            StatusDataItemName::Messages => ("MESSAGES", st.messages),
            StatusDataItemName::Recent => ("RECENT", st.recent),
            StatusDataItemName::UidNext => ("UIDNEXT", st.uidnext),
            StatusDataItemName::UidValidity => ("UIDVALIDITY", st.uidvalidity),
            StatusDataItemName::Unseen => ("UNSEEN", st.unseen),
            StatusDataItemName::Deleted => ("DELETED", st.deleted),
            _ => continue,
        };
        parts.push(format!("{k} {v}"));
    }
    let mut out = b"* STATUS ".to_vec();
    astring(&mut out, name.as_bytes());
    out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    s.reply(out);
    s.reply(tagged(tag, "OK", "STATUS completed"));
}

pub fn append(
    s: &mut ImapSession,
    tag: &str,
    m: &Mailbox<'_>,
    flags: &[ImapFlag<'_>],
    date: Option<&DateTime>,
    message: &LiteralOrLiteral8<'_>,
) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    let body: &[u8] = match message {
        LiteralOrLiteral8::Literal(l) => l.data(),
        LiteralOrLiteral8::Literal8(l) => &l.data,
    };
    if body.is_empty() {
        return s.reply(tagged(tag, "NO", "Empty message refused"));
    }
    let internal = date.map(|d| d.as_ref().timestamp());
    let f = flags_from(flags);
    let keywords = keyword_names(flags);
    match s
        .store
        .as_mut()
        .map(|st| st.append(&name, body, f, &keywords, internal))
    {
        Some(Ok((validity, uid))) => {
            report_changes(s, true);
            s.reply(tagged(
                tag,
                "OK",
                &format!("[APPENDUID {validity} {uid}] APPEND completed"),
            ));
        }
        Some(Err(StoreError::NoSuchFolder)) => {
            s.reply(tagged(
                tag,
                "NO",
                "[TRYCREATE] No such folder; CREATE it first",
            ));
        }
        Some(Err(e)) => store_failed(s, tag, &e),
        None => {}
    }
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
