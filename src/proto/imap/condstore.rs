//! RFC 7162 (CONDSTORE and QRESYNC) pieces shared by the selected state's commands: the MODSEQ
//! of FETCH responses, EXPUNGE or VANISHED, VANISHED (EARLIER) for QRESYNC's SELECT and UID FETCH
//! (VANISHED), and the changed messages a QRESYNC SELECT reports. imap-codec (feature
//! `ext_condstore_qresync`) parses every command form used here, so there is no pre-parsing.

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::sequence::SequenceSet;

use super::encode::untagged;
use super::selected::flags_list;
use super::seqset::{compact, contains, missing};
use super::session::ImapSession;
use super::store::{Msg, Store};

/// ` MODSEQ (n)` to follow FLAGS in a FETCH response once CONDSTORE is on (section 3.1.4.1).
pub fn modseq_part(condstore: bool, m: &Msg) -> String {
    if condstore {
        format!(" MODSEQ ({})", m.modseq)
    } else {
        String::new()
    }
}

/// Expunged messages as the session reports them: `* n EXPUNGE` each, or once QRESYNC is on
/// one `* VANISHED uids` (section 3.2.10). `gone` is (sequence number, UID) in sending order.
pub fn expunged_lines(qresync: bool, gone: &[(u32, u32)]) -> Vec<u8> {
    if gone.is_empty() {
        return Vec::new();
    }
    if qresync {
        let mut uids: Vec<u32> = gone.iter().map(|g| g.1).collect();
        uids.sort_unstable();
        return untagged(&format!("VANISHED {}", compact(&uids)));
    }
    let mut out = Vec::new();
    for (n, _) in gone {
        out.extend(untagged(&format!("{n} EXPUNGE")));
    }
    out
}

/// The UIDs of `set` (or any UID below `next_uid`) expunged after `since`, as a set: from the
/// store's list when it still holds them all, else every such UID that is not in the folder
/// (section 3.2.5.1 allows that answer). Empty: nothing to report.
pub fn vanished_since(
    store: &dyn Store,
    set: Option<&SequenceSet>,
    since: u64,
    next_uid: u32,
) -> String {
    let Some(f) = store.selected() else {
        return String::new();
    };
    let top = next_uid.saturating_sub(1);
    match store.expunged_since(since) {
        Some(uids) => {
            let picked: Vec<u32> = uids
                .into_iter()
                .filter(|&u| u <= top && set.is_none_or(|s| contains(s, u, top)))
                .collect();
            compact(&picked)
        }
        None => missing(set, top, f.msgs),
    }
}

/// What SELECT / EXAMINE's parameters ask for.
#[derive(Debug, Default)]
pub struct SelectParams {
    pub condstore: bool,
    /// QRESYNC (uidvalidity modseq [known-uids]); seq-match-data is accepted and not needed:
    /// the expunges are known by UID.
    pub qresync: Option<(u32, u64, Option<SequenceSet>)>,
}

/// The parameters, or the BAD text.
pub fn select_params(
    s: &ImapSession,
    params: &[SelectParameter],
) -> Result<SelectParams, &'static str> {
    let mut out = SelectParams::default();
    for p in params {
        match p {
            SelectParameter::CondStore => out.condstore = true,
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => {
                if !s.qresync {
                    return Err("QRESYNC is not enabled: send ENABLE QRESYNC first (RFC 7162)");
                }
                out.qresync = Some((
                    uid_validity.get(),
                    mod_sequence_value.get(),
                    known_uids.clone(),
                ));
            }
        }
    }
    Ok(out)
}

/// After a QRESYNC SELECT of the folder the client knew with this UIDVALIDITY: `* VANISHED
/// (EARLIER)` for what went since `since`, then a FETCH of each (known) message changed since.
/// Another UIDVALIDITY: nothing (the client starts over).
pub fn resync_lines(
    s: &ImapSession,
    validity: u32,
    since: u64,
    known: Option<&SequenceSet>,
) -> Vec<u8> {
    let Some(store) = s.store.as_deref() else {
        return Vec::new();
    };
    let Some(f) = store.selected() else {
        return Vec::new();
    };
    if f.uidvalidity != validity {
        return Vec::new();
    }
    let mut out = Vec::new();
    let gone = vanished_since(store, known, since, f.next_uid);
    if !gone.is_empty() {
        out.extend(untagged(&format!("VANISHED (EARLIER) {gone}")));
    }
    let top = f.next_uid.saturating_sub(1);
    for (i, m) in f.msgs.iter().enumerate() {
        if m.modseq > since && known.is_none_or(|k| contains(k, m.uid, top)) {
            out.extend(untagged(&format!(
                "{} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                i + 1,
                m.uid,
                flags_list(m, f.keywords, !s.rev2),
                m.modseq
            )));
        }
    }
    out
}
