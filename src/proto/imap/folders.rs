//! The authenticated state's folder commands: SELECT / EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE / UNSUBSCRIBE, STATUS, APPEND (LIST and LSUB are in [`super::list`]).

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag as ImapFlag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::status::StatusDataItemName;

use super::encode::{astring, tagged, untagged};
use super::selected::{flags_from, flags_lines, keyword_names, report_changes, store_failed};
use super::session::{ImapSession, State};
use super::store::{Flag, Status, Store, StoreError};

/// The folder name a command gave, or a NO already sent. Under IMAP4rev2 names come in UTF-8
/// and are turned into the modified UTF-7 of the names on disk; under IMAP4rev1 they are
/// modified UTF-7 already, so 8-bit ones are refused (as Dovecot does), although imap-codec's
/// `ext_utf8` (for IMAP4rev2) now reads them in quoted strings.
pub fn mailbox_name(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>) -> Option<String> {
    match m {
        Mailbox::Inbox => Some("INBOX".to_string()),
        Mailbox::Other(o) => match std::str::from_utf8(o.as_ref()) {
            Ok(n) if s.rev2 => Some(super::mutf7::encode(n)),
            Ok(n) if n.is_ascii() => Some(n.to_string()),
            _ => {
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

pub fn store_call<T>(
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

pub fn select(
    s: &mut ImapSession,
    tag: &str,
    m: &Mailbox<'_>,
    read_only: bool,
    params: &[SelectParameter],
) {
    let params = match super::condstore::select_params(s, params) {
        Ok(p) => p,
        Err(why) => return s.bad(tag, why),
    };
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    if params.condstore || params.qresync.is_some() {
        s.condstore = true;
    }
    if s.state == State::Selected {
        if let Some(st) = s.store.as_mut() {
            st.deselect();
        }
        s.state = State::Authenticated;
        // RFC 7162: the old folder is closed.
        s.reply(untagged("OK [CLOSED] Previous folder closed"));
    }
    // RFC 5182: a new selection starts with an empty `$`.
    s.saved.clear();
    if store_call(s, tag, |st| st.select(&name, read_only)).is_none() {
        return;
    }
    let Some(f) = s.store.as_ref().and_then(|st| st.selected()) else {
        return;
    };
    let mut out = flags_lines(f.keywords, read_only);
    out.extend(untagged(&format!("{} EXISTS", f.msgs.len())));
    if s.rev2 {
        // RFC 9051 6.3.2: the folder's LIST line, no RECENT, no UNSEEN code.
        out.extend(super::list::line_of(s, &name));
    } else {
        out.extend(untagged(&format!(
            "{} RECENT",
            f.msgs.iter().filter(|m| m.recent).count()
        )));
        if let Some(i) = f.msgs.iter().position(|m| !m.flags.contains(Flag::Seen)) {
            out.extend(untagged(&format!("OK [UNSEEN {}] First unseen", i + 1)));
        }
    }
    out.extend(untagged(&format!(
        "OK [UIDVALIDITY {}] UIDs valid",
        f.uidvalidity
    )));
    out.extend(untagged(&format!(
        "OK [UIDNEXT {}] Predicted next UID",
        f.next_uid
    )));
    // RFC 7162 section 3.1.2.1: every folder has persistent mod-sequences, so never NOMODSEQ.
    out.extend(untagged(&format!(
        "OK [HIGHESTMODSEQ {}] Highest",
        f.highest_modseq
    )));
    if let Some((validity, since, known)) = &params.qresync {
        out.extend(super::condstore::resync_lines(
            s,
            *validity,
            *since,
            known.as_ref(),
        ));
    }
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

pub fn status(s: &mut ImapSession, tag: &str, m: &Mailbox<'_>, items: &[StatusDataItemName]) {
    let Some(name) = mailbox_name(s, tag, m) else {
        return;
    };
    let Some(st) = store_call(s, tag, |st| st.status(&name)) else {
        return;
    };
    if items.contains(&StatusDataItemName::HighestModSeq) {
        s.condstore = true;
    }
    s.reply(status_line(&name, &st, items, s.rev2));
    s.reply(tagged(tag, "OK", "STATUS completed"));
}

/// A stored (modified UTF-7) folder name as the session sends it: UTF-8 under IMAP4rev2.
pub fn wire_name(name: &str, rev2: bool) -> String {
    match rev2.then(|| super::mutf7::decode(name)).flatten() {
        Some(utf8) => utf8,
        None => name.to_string(),
    }
}

/// `* STATUS name (MESSAGES n ...)` with the items asked for, in their order.
pub fn status_line(name: &str, st: &Status, items: &[StatusDataItemName], rev2: bool) -> Vec<u8> {
    let mut parts = Vec::new();
    for it in items {
        let (k, v) = match it {
            StatusDataItemName::Messages => ("MESSAGES", u64::from(st.messages)),
            StatusDataItemName::Recent => ("RECENT", u64::from(st.recent)),
            StatusDataItemName::UidNext => ("UIDNEXT", u64::from(st.uidnext)),
            StatusDataItemName::UidValidity => ("UIDVALIDITY", u64::from(st.uidvalidity)),
            StatusDataItemName::Unseen => ("UNSEEN", u64::from(st.unseen)),
            StatusDataItemName::Deleted => ("DELETED", u64::from(st.deleted)),
            StatusDataItemName::Size => ("SIZE", st.size),
            StatusDataItemName::HighestModSeq => ("HIGHESTMODSEQ", st.highest_modseq),
            _ => continue,
        };
        parts.push(format!("{k} {v}"));
    }
    let mut out = b"* STATUS ".to_vec();
    astring(&mut out, wire_name(name, rev2).as_bytes());
    out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    out
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
