//! The selected state's commands that change or report the folder: NOOP/CHECK, IDLE, CLOSE,
//! UNSELECT, EXPUNGE / UID EXPUNGE, STORE, COPY / MOVE; and how changes made elsewhere (other
//! sessions, POP3, deliveries) are reported: untagged EXPUNGE / EXISTS / FETCH FLAGS.

use imap_codec::imap_types::flag::{Flag as ImapFlag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use tracing::warn;

use super::encode::{tagged, untagged};
use super::folders::mailbox_name;
use super::seqset::{compact, contains, resolve};
use super::session::{Event, ImapSession, State, Wait};
use super::store::{Flag, Flags, Msg, StoreError};

/// `(\Seen \Recent $Forwarded)`, keywords named from the folder's list `kw`; `\Recent` only
/// when `rev1` (IMAP4rev2 has no \Recent).
pub fn flags_list(m: &Msg, kw: &[String], rev1: bool) -> String {
    let mut names: Vec<&str> = m.flags.iter().map(Flag::name).collect();
    if m.recent && rev1 {
        names.push("\\Recent");
    }
    for (i, k) in kw.iter().enumerate() {
        if !k.is_empty() && m.flags.has_keyword(i as u8) {
            names.push(k);
        }
    }
    format!("({})", names.join(" "))
}

/// The untagged FLAGS and PERMANENTFLAGS of a folder with keywords `kw` (at SELECT, and when a
/// STORE defined a keyword). `\*`: new keywords may be made while there is room for them.
pub fn flags_lines(kw: &[String], read_only: bool) -> Vec<u8> {
    let mut names = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for k in kw.iter().filter(|k| !k.is_empty()) {
        names.push(' ');
        names.push_str(k);
    }
    let mut out = untagged(&format!("FLAGS ({names})"));
    if read_only {
        out.extend(untagged("OK [PERMANENTFLAGS ()] Read-only folder"));
    } else {
        let more = if kw.iter().filter(|k| !k.is_empty()).count() < 26 {
            " \\*"
        } else {
            ""
        };
        out.extend(untagged(&format!(
            "OK [PERMANENTFLAGS ({names}{more})] Flags permitted"
        )));
    }
    out
}

/// A storage failure as a tagged NO, with the cause in the log only.
pub fn store_failed(s: &mut ImapSession, tag: &str, e: &StoreError) {
    let text = match e {
        StoreError::BadName(why) => format!("[CANNOT] {why}"),
        StoreError::NoSuchFolder => "[NONEXISTENT] No such folder".to_string(),
        StoreError::Exists => "[ALREADYEXISTS] The folder already exists".to_string(),
        StoreError::Refused(why) => format!("[CANNOT] {why}"),
        StoreError::Gone => "[EXPUNGEISSUED] The message was expunged meanwhile".to_string(),
        StoreError::DiskFull => "[OVERQUOTA] Not enough disk space".to_string(),
        StoreError::Failed(e) => {
            warn!(user = s.user.as_deref().unwrap_or("-"), error = %e, "imap storage failure");
            "[SERVERBUG] Internal storage error; the administrator can find it in the log"
                .to_string()
        }
    };
    s.reply(tagged(tag, "NO", &text));
}

/// Syncs the selected folder and reports what changed. With `expunges` false (FETCH, STORE,
/// SEARCH by sequence number, where RFC 3501 forbids EXPUNGE), nothing is synced.
pub fn report_changes(s: &mut ImapSession, expunges: bool) {
    if s.state != State::Selected || !expunges {
        return;
    }
    sync_and_report(s, false);
}

/// The selected folder awake again after IDLE ([`sleep`]), reporting what changed.
pub fn wake_and_report(s: &mut ImapSession) {
    if s.state == State::Selected {
        sync_and_report(s, true);
    }
}

/// Lets the store drop the selected folder's messages while the session idles.
pub fn sleep(s: &mut ImapSession) {
    if s.state == State::Selected
        && let Some(store) = s.store.as_mut()
    {
        store.sleep();
    }
}

fn sync_and_report(s: &mut ImapSession, wake: bool) {
    let Some(store) = s.store.as_mut() else {
        return;
    };
    let synced = if wake { store.wake() } else { store.sync() };
    let changes = match synced {
        Ok(c) => c,
        Err(e) => {
            warn!(user = s.user.as_deref().unwrap_or("-"), error = %e, "imap folder sync failed");
            return;
        }
    };
    let gone: Vec<(u32, u32)> = changes
        .expunged
        .iter()
        .copied()
        .zip(changes.vanished.iter().copied().chain(std::iter::repeat(0)))
        .collect();
    let mut out = super::condstore::expunged_lines(s.qresync, &gone);
    if let Some(n) = changes.exists {
        out.extend(untagged(&format!("{n} EXISTS")));
        if !s.rev2 {
            let recent = store
                .selected()
                .map_or(0, |f| f.msgs.iter().filter(|m| m.recent).count());
            out.extend(untagged(&format!("{recent} RECENT")));
        }
    }
    if !changes.flags.is_empty()
        && let Some(f) = store.selected()
    {
        for &n in &changes.flags {
            if let Some(m) = f.msgs.get(n as usize - 1) {
                out.extend(untagged(&format!(
                    "{n} FETCH (UID {} FLAGS {}{})",
                    m.uid,
                    flags_list(m, f.keywords, !s.rev2),
                    super::condstore::modseq_part(s.condstore, m)
                )));
            }
        }
    }
    if !out.is_empty() {
        s.reply(out);
    }
}

pub fn noop(s: &mut ImapSession, tag: &str) {
    report_changes(s, true);
    s.reply(tagged(tag, "OK", "NOOP completed"));
}

pub fn idle(s: &mut ImapSession, tag: &str) {
    report_changes(s, true);
    sleep(s);
    s.reply(b"+ idling\r\n".to_vec());
    s.wait = Wait::Idle {
        tag: tag.to_string(),
    };
    s.events.push(Event::Idle);
}

/// CLOSE (expunging when read-write) or UNSELECT.
pub fn close(s: &mut ImapSession, tag: &str, expunge: bool) {
    if let Some(store) = s.store.as_mut() {
        if expunge
            && !s.read_only
            && let Err(e) = store.expunge(&|_, m| m.flags.contains(Flag::Deleted))
        {
            warn!(user = s.user.as_deref().unwrap_or("-"), error = %e, "imap CLOSE expunge failed");
        }
        store.deselect();
    }
    s.state = State::Authenticated;
    s.saved.clear();
    let verb = if expunge { "CLOSE" } else { "UNSELECT" };
    s.reply(tagged(tag, "OK", &format!("{verb} completed")));
}

pub fn expunge(s: &mut ImapSession, tag: &str, uids: Option<&SequenceSet>) {
    if s.read_only {
        return s.reply(tagged(
            tag,
            "NO",
            "[READ-ONLY] The folder is selected read-only (EXAMINE)",
        ));
    }
    report_changes(s, true);
    let Some(store) = s.store.as_mut() else {
        return;
    };
    let star = store
        .selected()
        .and_then(|f| f.msgs.last())
        .map_or(0, |m| m.uid);
    let pick = |_: usize, m: &Msg| {
        m.flags.contains(Flag::Deleted) && uids.is_none_or(|set| contains(set, m.uid, star))
    };
    match store.expunge(&pick) {
        Ok(gone) => {
            let highest = store.selected().map_or(0, |f| f.highest_modseq);
            s.reply(super::condstore::expunged_lines(s.qresync, &gone));
            // RFC 7162 section 3.2.10: the new HIGHESTMODSEQ with the tagged OK.
            let text = if s.condstore {
                format!("[HIGHESTMODSEQ {highest}] EXPUNGE completed")
            } else {
                "EXPUNGE completed".to_string()
            };
            s.reply(tagged(tag, "OK", &text));
        }
        Err(e) => store_failed(s, tag, &e),
    }
}

fn system_flags(flags: &[ImapFlag<'_>]) -> Vec<Flag> {
    flags
        .iter()
        .filter_map(|f| match f {
            ImapFlag::Seen => Some(Flag::Seen),
            ImapFlag::Answered => Some(Flag::Answered),
            ImapFlag::Flagged => Some(Flag::Flagged),
            ImapFlag::Deleted => Some(Flag::Deleted),
            ImapFlag::Draft => Some(Flag::Draft),
            // Keywords: see `keywords`.
            _ => None,
        })
        .collect()
}

/// The keyword names in a flag list (`$Forwarded`, `Junk`...).
pub fn keyword_names<'a>(flags: &'a [ImapFlag<'_>]) -> Vec<&'a str> {
    flags
        .iter()
        .filter_map(|f| match f {
            ImapFlag::Keyword(a) => Some(a.as_ref()),
            _ => None,
        })
        .collect()
}

/// System flags for APPEND (its keywords go by name: [`keyword_names`]).
pub fn flags_from(list: &[ImapFlag<'_>]) -> Flags {
    let mut f = Flags::default();
    for fl in system_flags(list) {
        f.insert(fl);
    }
    f
}

/// How a STORE changes flags and answers.
#[derive(Clone, Copy, Debug)]
pub struct StoreHow {
    pub kind: StoreType,
    pub response: StoreResponse,
    pub uid: bool,
    /// UNCHANGEDSINCE (RFC 7162 section 3.1.3).
    pub unchanged_since: Option<u64>,
}

pub fn store(
    s: &mut ImapSession,
    tag: &str,
    set: &SequenceSet,
    how: StoreHow,
    flags: &[ImapFlag<'_>],
) {
    let StoreHow {
        kind,
        response,
        uid,
        unchanged_since,
    } = how;
    if s.read_only {
        return s.reply(tagged(
            tag,
            "NO",
            "[READ-ONLY] The folder is selected read-only (EXAMINE)",
        ));
    }
    if unchanged_since.is_some() {
        s.condstore = true;
    }
    report_changes(s, uid);
    let wanted = system_flags(flags);
    let Some(store) = s.store.as_mut() else {
        return;
    };
    // Keyword indexes: made for +FLAGS and FLAGS (a folder full of keywords drops the rest),
    // looked up for -FLAGS.
    let known_before = store.selected().map_or(0, |f| f.keywords.len());
    let mut kw_mask = 0u32;
    for name in keyword_names(flags) {
        let index = match kind {
            StoreType::Remove => Ok(store.selected().and_then(|f| {
                f.keywords
                    .iter()
                    .position(|k| k.eq_ignore_ascii_case(name))
                    .map(|i| i as u8)
            })),
            _ => store.keyword(name),
        };
        match index {
            Ok(Some(i)) if i < 32 => kw_mask |= 1 << i,
            Ok(_) => {}
            Err(e) => return store_failed(s, tag, &e),
        }
    }
    let (msgs, keywords) = store
        .selected()
        .map(|f| (f.msgs.to_vec(), f.keywords.to_vec()))
        .unwrap_or_default();
    let mut out = Vec::new();
    if keywords.len() != known_before {
        out.extend(flags_lines(&keywords, false));
    }
    let targets = resolve(set, &msgs, uid);
    let changes: Vec<(usize, Flags)> = targets
        .iter()
        .map(|&i| {
            let mut f = match kind {
                StoreType::Replace => Flags::default(),
                _ => msgs[i].flags,
            };
            for &fl in &wanted {
                match kind {
                    StoreType::Remove => f.remove(fl),
                    _ => f.insert(fl),
                }
            }
            match kind {
                StoreType::Remove => f.keywords &= !kw_mask,
                _ => f.keywords |= kw_mask,
            }
            (i, f)
        })
        .collect();
    let refused = match store.store_flags(&changes, unchanged_since) {
        Ok(r) => r,
        Err(e) => return store_failed(s, tag, &e),
    };
    let now = store
        .selected()
        .map(|f| f.msgs.to_vec())
        .unwrap_or_default();
    for &i in targets.iter().filter(|i| !refused.contains(i)) {
        let Some(m) = now.get(i).filter(|m| m.uid == msgs[i].uid) else {
            continue;
        };
        let uid_part = if uid {
            format!("UID {} ", m.uid)
        } else {
            String::new()
        };
        if response == StoreResponse::Answer {
            out.extend(untagged(&format!(
                "{} FETCH ({uid_part}FLAGS {}{})",
                i + 1,
                flags_list(m, &keywords, !s.rev2),
                super::condstore::modseq_part(s.condstore, m)
            )));
        } else if s.condstore && m.modseq != msgs[i].modseq {
            // .SILENT under CONDSTORE: the new MODSEQ still (RFC 7162 section 3.1.3).
            out.extend(untagged(&format!(
                "{} FETCH ({uid_part}MODSEQ ({}))",
                i + 1,
                m.modseq
            )));
        }
    }
    s.reply(out);
    if refused.is_empty() {
        return s.reply(tagged(tag, "OK", "STORE completed"));
    }
    let mut set: Vec<u32> = if uid {
        refused
            .iter()
            .filter_map(|&i| msgs.get(i))
            .map(|m| m.uid)
            .collect()
    } else {
        refused.iter().map(|&i| i as u32 + 1).collect()
    };
    set.sort_unstable();
    s.reply(tagged(
        tag,
        "OK",
        &format!("[MODIFIED {}] Conditional STORE failed", compact(&set)),
    ));
}

/// COPY, or MOVE (copy, then expunge the originals; RFC 6851).
pub fn copy(
    s: &mut ImapSession,
    tag: &str,
    set: &SequenceSet,
    dest: &Mailbox<'_>,
    uid: bool,
    mv: bool,
) {
    let Some(dest) = mailbox_name(s, tag, dest) else {
        return;
    };
    if mv && s.read_only {
        return s.reply(tagged(
            tag,
            "NO",
            "[READ-ONLY] The folder is selected read-only (EXAMINE)",
        ));
    }
    report_changes(s, uid);
    let Some(store) = s.store.as_mut() else {
        return;
    };
    let msgs = store
        .selected()
        .map(|f| f.msgs.to_vec())
        .unwrap_or_default();
    let idx = resolve(set, &msgs, uid);
    let (validity, pairs) = match store.copy(&idx, &dest) {
        Ok(r) => r,
        Err(StoreError::NoSuchFolder) => {
            return s.reply(tagged(
                tag,
                "NO",
                "[TRYCREATE] No such folder; CREATE it first",
            ));
        }
        Err(e) => return store_failed(s, tag, &e),
    };
    let verb = if mv { "MOVE" } else { "COPY" };
    let code = if pairs.is_empty() {
        String::new()
    } else {
        let (old, new): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
        format!("[COPYUID {validity} {} {}] ", compact(&old), compact(&new))
    };
    if !mv {
        return s.reply(tagged(tag, "OK", &format!("{code}{verb} completed")));
    }
    let moved: std::collections::HashSet<u32> = pairs.iter().map(|p| p.0).collect();
    let gone = store.expunge(&|_, m| moved.contains(&m.uid));
    s.reply(untagged(&format!("OK {code}Moved")));
    match gone {
        Ok(gone) => {
            s.reply(super::condstore::expunged_lines(s.qresync, &gone));
            s.reply(tagged(tag, "OK", "MOVE completed"));
        }
        Err(e) => store_failed(s, tag, &e),
    }
}
