//! FETCH and UID FETCH: FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY / BODYSTRUCTURE,
//! BODY[section]<partial> and BODY.PEEK, RFC822, RFC822.HEADER, RFC822.TEXT, and RFC 3516's
//! BINARY[section]<partial>, BINARY.PEEK and BINARY.SIZE ([`super::binary`]). A message's file
//! is read only when an item needs its content; a non-PEEK body or binary fetch sets \Seen.

use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName, Part, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;

use super::binary::{self, UnknownCte};
use super::encode::{internal_date, literal, literal8, tagged};
use super::mime::{self, Spec};
use super::selected::{flags_list, report_changes, store_failed};
use super::seqset::{out_of_range, resolve};
use super::session::{Event, ImapSession};
use super::store::{Flag, Flags, StoreError};

/// One BODY[...] item, resolved.
struct BodyItem {
    /// What the response names it: `BODY[1.MIME]`, `BODY[HEADER.FIELDS (SUBJECT)]`.
    label: String,
    path: Vec<u32>,
    spec: Spec,
    partial: Option<(u32, u32)>,
    peek: bool,
}

/// One BINARY[...] or BINARY.SIZE[...] item.
struct BinaryItem {
    path: Vec<u32>,
    partial: Option<(u32, u32)>,
    peek: bool,
    size_only: bool,
}

impl BinaryItem {
    /// `BINARY[1.2]` or `BINARY.SIZE[1.2]`.
    fn label(&self) -> String {
        let path: Vec<String> = self.path.iter().map(u32::to_string).collect();
        let name = if self.size_only {
            "BINARY.SIZE"
        } else {
            "BINARY"
        };
        format!("{name}[{}]", path.join("."))
    }
}

enum Item {
    Binary(BinaryItem),
    Flags,
    Uid,
    InternalDate,
    Size,
    Envelope,
    Structure(&'static str),
    Body(BodyItem),
    ModSeq,
}

fn part_path(p: &Part) -> Vec<u32> {
    p.0.as_ref().iter().map(|n| n.get()).collect()
}

fn names(list: &[imap_codec::imap_types::core::AString<'_>]) -> (Vec<String>, String) {
    let lower: Vec<String> = list
        .iter()
        .map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_lowercase())
        .collect();
    let shown: Vec<String> = list
        .iter()
        .map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_uppercase())
        .collect();
    (lower, shown.join(" "))
}

fn body_item(
    section: &Option<Section<'_>>,
    partial: Option<(u32, std::num::NonZeroU32)>,
    peek: bool,
) -> BodyItem {
    let dotted = |p: &Option<Part>| {
        p.as_ref()
            .map(|p| {
                format!(
                    "{}.",
                    part_path(p)
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(".")
                )
            })
            .unwrap_or_default()
    };
    let path_of = |p: &Option<Part>| p.as_ref().map(part_path).unwrap_or_default();
    let (label, path, spec) = match section {
        None => (String::new(), vec![], Spec::Whole),
        Some(Section::Part(p)) => (
            dotted(&Some(p.clone())).trim_end_matches('.').to_string(),
            part_path(p),
            Spec::Whole,
        ),
        Some(Section::Header(p)) => (format!("{}HEADER", dotted(p)), path_of(p), Spec::Header),
        Some(Section::Text(p)) => (format!("{}TEXT", dotted(p)), path_of(p), Spec::Text),
        Some(Section::Mime(p)) => (
            format!("{}MIME", dotted(&Some(p.clone()))),
            part_path(p),
            Spec::Mime,
        ),
        Some(Section::HeaderFields(p, list)) => {
            let (lower, shown) = names(list.as_ref());
            (
                format!("{}HEADER.FIELDS ({shown})", dotted(p)),
                path_of(p),
                Spec::Fields {
                    names: lower,
                    not: false,
                },
            )
        }
        Some(Section::HeaderFieldsNot(p, list)) => {
            let (lower, shown) = names(list.as_ref());
            (
                format!("{}HEADER.FIELDS.NOT ({shown})", dotted(p)),
                path_of(p),
                Spec::Fields {
                    names: lower,
                    not: true,
                },
            )
        }
    };
    BodyItem {
        label: format!("BODY[{label}]"),
        path,
        spec,
        partial: partial.map(|(o, n)| (o, n.get())),
        peek,
    }
}

fn items(m: MacroOrMessageDataItemNames<'_>) -> Vec<Item> {
    let names = match m {
        MacroOrMessageDataItemNames::Macro(Macro::Fast) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ],
        MacroOrMessageDataItemNames::Macro(Macro::All) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
            MessageDataItemName::Envelope,
        ],
        MacroOrMessageDataItemNames::Macro(Macro::Full) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
            MessageDataItemName::Envelope,
            MessageDataItemName::Body,
        ],
        MacroOrMessageDataItemNames::MessageDataItemNames(n) => n,
        MacroOrMessageDataItemNames::Macro(_) => vec![MessageDataItemName::Flags],
    };
    names
        .into_iter()
        .map(|n| match n {
            MessageDataItemName::Flags => Item::Flags,
            MessageDataItemName::Uid => Item::Uid,
            MessageDataItemName::InternalDate => Item::InternalDate,
            MessageDataItemName::Rfc822Size => Item::Size,
            MessageDataItemName::Envelope => Item::Envelope,
            MessageDataItemName::Body => Item::Structure("BODY"),
            MessageDataItemName::BodyStructure => Item::Structure("BODYSTRUCTURE"),
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => Item::Body(body_item(&section, partial, peek)),
            MessageDataItemName::Binary {
                section,
                partial,
                peek,
            } => Item::Binary(BinaryItem {
                path: section.iter().map(|n| n.get()).collect(),
                partial: partial.map(|(o, n)| (o, n.get())),
                peek,
                size_only: false,
            }),
            MessageDataItemName::BinarySize { section } => Item::Binary(BinaryItem {
                path: section.iter().map(|n| n.get()).collect(),
                partial: None,
                peek: true,
                size_only: true,
            }),
            MessageDataItemName::Rfc822 => Item::Body(BodyItem {
                label: "RFC822".into(),
                path: vec![],
                spec: Spec::Whole,
                partial: None,
                peek: false,
            }),
            MessageDataItemName::Rfc822Header => Item::Body(BodyItem {
                label: "RFC822.HEADER".into(),
                path: vec![],
                spec: Spec::Header,
                partial: None,
                peek: true,
            }),
            MessageDataItemName::Rfc822Text => Item::Body(BodyItem {
                label: "RFC822.TEXT".into(),
                path: vec![],
                spec: Spec::Text,
                partial: None,
                peek: false,
            }),
            MessageDataItemName::ModSeq => Item::ModSeq,
        })
        .collect()
}

pub fn fetch(
    s: &mut ImapSession,
    tag: &str,
    set: &SequenceSet,
    what: MacroOrMessageDataItemNames<'_>,
    uid: bool,
    modifiers: &[FetchModifier],
) {
    let mut changed_since = None;
    let mut vanished = false;
    for m in modifiers {
        match m {
            FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
            FetchModifier::Vanished => vanished = true,
        }
    }
    if vanished {
        // RFC 7162 section 3.2.6.
        let why = if !uid {
            Some("VANISHED is a modifier of UID FETCH only")
        } else if !s.qresync {
            Some("VANISHED needs QRESYNC: send ENABLE QRESYNC first")
        } else if changed_since.is_none() {
            Some("VANISHED needs CHANGEDSINCE")
        } else {
            None
        };
        if let Some(why) = why {
            return s.bad(tag, why);
        }
    }
    report_changes(s, uid);
    let mut list = items(what);
    if list.is_empty() {
        return s.bad(tag, "FETCH: no item we know");
    }
    if uid && !list.iter().any(|i| matches!(i, Item::Uid)) {
        list.insert(0, Item::Uid);
    }
    // CHANGEDSINCE implies MODSEQ; either turns CONDSTORE on (RFC 7162 section 3.1).
    if changed_since.is_some() && !list.iter().any(|i| matches!(i, Item::ModSeq)) {
        list.push(Item::ModSeq);
    }
    if list.iter().any(|i| matches!(i, Item::ModSeq)) {
        s.condstore = true;
    }
    let modseq_asked = list.iter().any(|i| matches!(i, Item::ModSeq));
    let needs_content = list.iter().any(|i| {
        matches!(
            i,
            Item::Envelope | Item::Structure(_) | Item::Body(_) | Item::Binary(_)
        )
    });
    let sets_seen = !s.read_only
        && list.iter().any(|i| match i {
            Item::Body(b) => !b.peek,
            Item::Binary(b) => !b.peek,
            _ => false,
        });
    if sets_seen && !list.iter().any(|i| matches!(i, Item::Flags)) {
        list.push(Item::Flags);
    }
    let Some(store) = s.store.as_mut() else {
        return;
    };
    let msgs = store
        .selected()
        .map(|f| f.msgs.to_vec())
        .unwrap_or_default();
    if !uid && out_of_range(set, msgs.len() as u32) {
        return s.bad(
            tag,
            "FETCH: no such message (sequence number past the last one)",
        );
    }
    let mut out = Vec::new();
    if vanished && let Some(since) = changed_since {
        let next = store.selected().map_or(1, |f| f.next_uid);
        let gone = super::condstore::vanished_since(store.as_ref(), Some(set), since, next);
        if !gone.is_empty() {
            out.extend(super::encode::untagged(&format!(
                "VANISHED (EARLIER) {gone}"
            )));
        }
    }
    let picked: Vec<usize> = resolve(set, &msgs, uid)
        .into_iter()
        .filter(|&i| changed_since.is_none_or(|c| msgs[i].modseq > c))
        .collect();
    // \Seen for the whole FETCH at once: one new mod-sequence, one index write. With BINARY
    // parts to decode, message by message after the decoding (an unknown encoding fails the
    // FETCH before \Seen is set).
    let seen_each = sets_seen
        && list
            .iter()
            .any(|i| matches!(i, Item::Binary(b) if !b.path.is_empty()));
    if sets_seen && !seen_each {
        let seen: Vec<(usize, Flags)> = picked
            .iter()
            .filter(|&&i| !msgs[i].flags.contains(Flag::Seen))
            .map(|&i| {
                let mut f = msgs[i].flags;
                f.insert(Flag::Seen);
                (i, f)
            })
            .collect();
        if !seen.is_empty()
            && let Err(e) = store.store_flags(&seen, None)
        {
            return store_failed(s, tag, &e);
        }
    }
    // Only whole messages among the items that need content: streamed by the driver from the
    // file (the engine reads nothing) when the store names one.
    let streamable = list.iter().any(is_whole)
        && list.iter().all(|i| {
            is_whole(i)
                || !matches!(
                    i,
                    Item::Envelope | Item::Structure(_) | Item::Body(_) | Item::Binary(_)
                )
        });
    let mut pieces: Vec<Event> = Vec::new();
    for i in picked {
        let file = if streamable { store.file(i) } else { None };
        let crlf = if needs_content && file.is_none() {
            match store.read(i) {
                Ok(b) => Some(crate::wire::to_crlf(&b)),
                Err(StoreError::Gone) => continue,
                Err(e) => return store_failed(s, tag, &e),
            }
        } else {
            None
        };
        // The decoded BINARY parts, before \Seen is set: an unknown encoding fails the FETCH.
        let mut decoded = Vec::new();
        for item in list.iter().filter(|_| file.is_none()) {
            if let Item::Binary(b) = item {
                match binary::decoded(crlf.as_deref().unwrap_or_default(), &b.path) {
                    Ok(d) => decoded.push(d.unwrap_or_default()),
                    Err(UnknownCte) => {
                        return s.reply(tagged(
                            tag,
                            "NO",
                            "[UNKNOWN-CTE] A part's Content-Transfer-Encoding cannot be decoded; use BODY[]",
                        ));
                    }
                }
            }
        }
        let mut decoded = decoded.into_iter();
        if seen_each && !msgs[i].flags.contains(Flag::Seen) {
            let mut f = msgs[i].flags;
            f.insert(Flag::Seen);
            if let Err(e) = store.set_flags(i, f) {
                return store_failed(s, tag, &e);
            }
        }
        let Some(m) = store.selected().and_then(|f| f.msgs.get(i)).cloned() else {
            continue;
        };
        let parsed = crlf
            .as_deref()
            .filter(|_| {
                list.iter()
                    .any(|i| matches!(i, Item::Envelope | Item::Structure(_)))
            })
            .and_then(mime::parse);
        out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
        for (k, item) in list.iter().enumerate() {
            if k > 0 {
                out.push(b' ');
            }
            if let Some(f) = file.as_ref().filter(|_| is_whole(item)) {
                let (label, binary) = match item {
                    Item::Body(b) => (b.label.clone(), false),
                    _ => ("BINARY[]".to_string(), true),
                };
                out.extend_from_slice(label.as_bytes());
                out.push(b' ');
                pieces.push(Event::Reply(std::mem::take(&mut out)));
                pieces.push(Event::Literal {
                    file: f.clone(),
                    binary,
                });
                continue;
            }
            match item {
                Item::Flags => {
                    let kw = store.selected().map_or(&[][..], |f| f.keywords);
                    out.extend_from_slice(
                        format!("FLAGS {}", flags_list(&m, kw, !s.rev2)).as_bytes(),
                    );
                    if !modseq_asked {
                        out.extend_from_slice(
                            super::condstore::modseq_part(s.condstore, &m).as_bytes(),
                        );
                    }
                }
                Item::ModSeq => {
                    out.extend_from_slice(format!("MODSEQ ({})", m.modseq).as_bytes());
                }
                Item::Uid => out.extend_from_slice(format!("UID {}", m.uid).as_bytes()),
                Item::InternalDate => out.extend_from_slice(
                    format!("INTERNALDATE {}", internal_date(m.internal)).as_bytes(),
                ),
                Item::Size => out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes()),
                Item::Envelope => {
                    out.extend_from_slice(b"ENVELOPE ");
                    match &parsed {
                        Some(p) => mime::envelope(&mut out, p),
                        None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
                    }
                }
                Item::Structure(name) => {
                    out.extend_from_slice(name.as_bytes());
                    out.push(b' ');
                    match &parsed {
                        Some(p) => mime::bodystructure(&mut out, p),
                        None => {
                            out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)")
                        }
                    }
                }
                Item::Binary(b) => {
                    let data = decoded.next().unwrap_or_default();
                    if b.size_only {
                        out.extend_from_slice(format!("{} {}", b.label(), data.len()).as_bytes());
                        continue;
                    }
                    let (from, to, origin) = match b.partial {
                        Some((start, len)) => {
                            let from = (start as usize).min(data.len());
                            let to = from.saturating_add(len as usize).min(data.len());
                            (from, to, format!("<{start}>"))
                        }
                        None => (0, data.len(), String::new()),
                    };
                    out.extend_from_slice(format!("{}{origin} ", b.label()).as_bytes());
                    literal8(&mut out, &data[from..to]);
                }
                Item::Body(b) => {
                    let whole = crlf.as_deref().unwrap_or_default();
                    let data = mime::section(whole, &b.path, &b.spec).unwrap_or_default();
                    match b.partial {
                        Some((start, len)) => {
                            let from = (start as usize).min(data.len());
                            let to = from.saturating_add(len as usize).min(data.len());
                            let label = b.label.clone();
                            out.extend_from_slice(format!("{label}<{start}> ").as_bytes());
                            literal(&mut out, &data[from..to]);
                        }
                        None => {
                            out.extend_from_slice(b.label.as_bytes());
                            out.push(b' ');
                            literal(&mut out, &data);
                        }
                    }
                }
            }
        }
        out.extend_from_slice(b")\r\n");
    }
    for p in pieces {
        match p {
            Event::Reply(b) => s.reply(b),
            other => s.events.push(other),
        }
    }
    s.reply(out);
    s.reply(tagged(tag, "OK", "FETCH completed"));
}

/// BODY[], BODY.PEEK[], RFC822 or BINARY[] (PEEK) without a range: the message as stored.
fn is_whole(i: &Item) -> bool {
    match i {
        Item::Body(b) => b.path.is_empty() && b.spec == Spec::Whole && b.partial.is_none(),
        Item::Binary(b) => b.path.is_empty() && b.partial.is_none() && !b.size_only,
        _ => false,
    }
}
