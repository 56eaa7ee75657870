//! SEARCH and UID SEARCH over flags, UIDs, sequence numbers, sizes, dates (INTERNALDATE and
//! Date:), headers and text. A message's file is read only for keys that need its content, and
//! once per message whatever the number of such keys. Text matching is ASCII case-insensitive
//! on the raw bytes (no decoding of MIME encodings yet).

use imap_codec::imap_types::search::SearchKey;

use super::encode::{days_from_civil, string, tagged};
use super::extended::SearchReturn;
use super::selected::{report_changes, store_failed};
use super::seqset::{compact, contains};
use super::session::ImapSession;
use super::store::{Flag, Msg, StoreError};

struct Ctx<'a> {
    msg: &'a Msg,
    seq: u32,
    count: u32,
    max_uid: u32,
    content: Option<Vec<u8>>,
    load: &'a dyn Fn() -> Result<Vec<u8>, StoreError>,
    /// The folder's keyword names by index.
    keywords: &'a [String],
}

impl Ctx<'_> {
    fn content(&mut self) -> Result<&[u8], StoreError> {
        if self.content.is_none() {
            self.content = Some((self.load)()?);
        }
        Ok(self.content.as_deref().unwrap_or_default())
    }

    fn header(&mut self) -> Result<&[u8], StoreError> {
        let c = self.content()?;
        let end = memchr::memmem::find(c, b"\n\n").map_or(c.len(), |i| i + 1);
        Ok(&c[..end])
    }
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let n = needle.to_ascii_lowercase();
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(&n))
}

/// The unfolded values of header `name` (ASCII case-insensitive), joined.
fn header_value(head: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut found: Option<Vec<u8>> = None;
    let mut current = false;
    for line in head.split(|&b| b == b'\n') {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if current && let Some(v) = found.as_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        current = false;
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon].trim_ascii().eq_ignore_ascii_case(name)
        {
            current = true;
            let v = found.get_or_insert_with(Vec::new);
            if !v.is_empty() {
                v.push(b' ');
            }
            v.extend_from_slice(line[colon + 1..].trim_ascii());
        }
    }
    found
}

/// Days since 1970 of a SEARCH date (imap-types gives a chrono date; its Display is ISO).
fn days(d: &imap_codec::imap_types::datetime::NaiveDate) -> i64 {
    let iso = d.as_ref().to_string();
    let mut it = iso.split('-').map(|p| p.parse::<i64>().unwrap_or(0));
    let (y, m, dd) = (
        it.next().unwrap_or(1970),
        it.next().unwrap_or(1),
        it.next().unwrap_or(1),
    );
    days_from_civil(y, m as u32, dd as u32)
}

/// The Date: header's day, as days since 1970 (None when missing or unreadable).
fn sent_day(head: &[u8]) -> Option<i64> {
    let v = header_value(head, b"date")?;
    let v = String::from_utf8_lossy(&v);
    let parts: Vec<&str> = v.split_whitespace().collect();
    // [Day,] DD Mon YYYY ...
    let start = if parts.first()?.ends_with(',') { 1 } else { 0 };
    let day: u32 = parts.get(start)?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mon = parts.get(start + 1)?.to_ascii_lowercase();
    let m = MONTHS.iter().position(|x| mon.starts_with(x))? as u32 + 1;
    let y: i64 = parts.get(start + 2)?.parse().ok()?;
    Some(days_from_civil(y, m, day))
}

fn eval(k: &SearchKey<'_>, c: &mut Ctx<'_>, depth: usize) -> Result<bool, StoreError> {
    if depth > 64 {
        return Ok(false);
    }
    let f = &c.msg.flags;
    let internal_day = c.msg.internal.div_euclid(86_400);
    Ok(match k {
        SearchKey::And(keys) => {
            for k in keys.as_ref() {
                if !eval(k, c, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        SearchKey::Or(a, b) => eval(a, c, depth + 1)? || eval(b, c, depth + 1)?,
        SearchKey::Not(a) => !eval(a, c, depth + 1)?,
        SearchKey::SequenceSet(set) => contains(set, c.seq, c.count),
        SearchKey::Uid(set) => contains(set, c.msg.uid, c.max_uid),
        SearchKey::All => true,
        SearchKey::Answered => f.contains(Flag::Answered),
        SearchKey::Unanswered => !f.contains(Flag::Answered),
        SearchKey::Deleted => f.contains(Flag::Deleted),
        SearchKey::Undeleted => !f.contains(Flag::Deleted),
        SearchKey::Draft => f.contains(Flag::Draft),
        SearchKey::Undraft => !f.contains(Flag::Draft),
        SearchKey::Flagged => f.contains(Flag::Flagged),
        SearchKey::Unflagged => !f.contains(Flag::Flagged),
        SearchKey::Seen => f.contains(Flag::Seen),
        SearchKey::Unseen => !f.contains(Flag::Seen),
        SearchKey::Recent => c.msg.recent,
        SearchKey::Old => !c.msg.recent,
        SearchKey::New => c.msg.recent && !f.contains(Flag::Seen),
        SearchKey::Keyword(k) => has_keyword(c, k.as_ref()),
        SearchKey::Unkeyword(k) => !has_keyword(c, k.as_ref()),
        // RFC 7162 section 3.1.5: the entry name and type are for per-flag modseqs, which a
        // Maildir does not keep: the message's modseq stands for every flag.
        SearchKey::ModSequence { modseq, .. } => c.msg.modseq >= *modseq,
        SearchKey::Larger(n) => c.msg.size > u64::from(*n),
        SearchKey::Smaller(n) => c.msg.size < u64::from(*n),
        SearchKey::Before(d) => internal_day < days(d),
        SearchKey::On(d) => internal_day == days(d),
        SearchKey::Since(d) => internal_day >= days(d),
        SearchKey::SentBefore(d) => sent_day(c.header()?).is_some_and(|x| x < days(d)),
        SearchKey::SentOn(d) => sent_day(c.header()?).is_some_and(|x| x == days(d)),
        SearchKey::SentSince(d) => sent_day(c.header()?).is_some_and(|x| x >= days(d)),
        SearchKey::From(v) => field(c, b"from", v.as_ref())?,
        SearchKey::To(v) => field(c, b"to", v.as_ref())?,
        SearchKey::Cc(v) => field(c, b"cc", v.as_ref())?,
        SearchKey::Bcc(v) => field(c, b"bcc", v.as_ref())?,
        SearchKey::Subject(v) => field(c, b"subject", v.as_ref())?,
        SearchKey::Header(name, v) => field(c, name.as_ref(), v.as_ref())?,
        SearchKey::Body(v) => {
            let head_len = c.header()?.len();
            has(&c.content()?[head_len..], v.as_ref())
        }
        SearchKey::Text(v) => has(c.content()?, v.as_ref()),
    })
}

fn field(c: &mut Ctx<'_>, name: &[u8], v: &[u8]) -> Result<bool, StoreError> {
    Ok(header_value(c.header()?, name).is_some_and(|h| has(&h, v)))
}

fn has_keyword(c: &Ctx<'_>, name: &str) -> bool {
    c.keywords
        .iter()
        .position(|k| k.eq_ignore_ascii_case(name))
        .is_some_and(|i| c.msg.flags.has_keyword(i as u8))
}

/// SEARCH / UID SEARCH; with `ret` (`SEARCH RETURN (...)`, RFC 4731) the answer is one
/// `* ESEARCH` line instead of `* SEARCH`.
pub fn search(
    s: &mut ImapSession,
    tag: &str,
    keys: &[SearchKey<'_>],
    uid: bool,
    ret: Option<SearchReturn>,
) {
    report_changes(s, uid);
    let by_modseq = keys.iter().any(|k| mentions_modseq(k, 0));
    if by_modseq {
        s.condstore = true;
    }
    // IMAP4rev2: a SEARCH without RETURN is `RETURN (ALL)` (RFC 9051 6.4.4).
    let ret = ret.or(s.rev2.then_some(SearchReturn::ALL));
    let Some(store) = s.store.as_ref() else {
        return;
    };
    let (msgs, keywords) = store
        .selected()
        .map(|f| (f.msgs.to_vec(), f.keywords.to_vec()))
        .unwrap_or_default();
    let count = msgs.len() as u32;
    let max_uid = msgs.last().map_or(0, |m| m.uid);
    let mut hits = Vec::new();
    // The highest modseq of the hits, for a search by MODSEQ (RFC 7162 section 3.1.5).
    let mut top_modseq = 0;
    for (i, m) in msgs.iter().enumerate() {
        let load = || store.read(i);
        let mut c = Ctx {
            msg: m,
            seq: i as u32 + 1,
            count,
            max_uid,
            content: None,
            load: &load,
            keywords: &keywords,
        };
        let mut all = true;
        for k in keys {
            match eval(k, &mut c, 0) {
                Ok(true) => {}
                Ok(false) => {
                    all = false;
                    break;
                }
                // Expunged meanwhile: not a hit.
                Err(StoreError::Gone) => {
                    all = false;
                    break;
                }
                Err(e) => {
                    if ret.is_some_and(|r| r.save) {
                        s.saved.clear();
                    }
                    return store_failed(s, tag, &e);
                }
            }
        }
        if all {
            hits.push(if uid { m.uid } else { i as u32 + 1 });
            top_modseq = top_modseq.max(m.modseq);
        }
    }
    if let Some(r) = ret.filter(|r| r.save) {
        // RFC 5182 section 2.4: with MIN and/or MAX but neither ALL nor COUNT, only those.
        let uids: Vec<u32> = hits
            .iter()
            .filter_map(|&h| {
                if uid {
                    Some(h)
                } else {
                    msgs.get(h as usize - 1).map(|m| m.uid)
                }
            })
            .collect();
        s.saved = match (uids.first(), uids.last()) {
            (Some(&first), Some(&last)) if (r.min || r.max) && !r.all && !r.count => {
                let mut v = Vec::new();
                if r.min {
                    v.push(first);
                }
                if r.max && (last != first || !r.min) {
                    v.push(last);
                }
                v
            }
            _ => uids,
        };
    }
    match ret {
        Some(ret) if ret.is_save_only() => {}
        Some(ret) => {
            let mut line = esearch(tag, uid, ret, &hits);
            if by_modseq && !hits.is_empty() {
                line.truncate(line.len() - 2);
                line.extend_from_slice(format!(" MODSEQ {top_modseq}\r\n").as_bytes());
            }
            s.reply(line)
        }
        None => {
            let mut line = String::from("* SEARCH");
            for h in &hits {
                line.push(' ');
                line.push_str(&h.to_string());
            }
            if by_modseq && !hits.is_empty() {
                line.push_str(&format!(" (MODSEQ {top_modseq})"));
            }
            line.push_str("\r\n");
            s.reply(line.into_bytes());
        }
    }
    s.reply(tagged(tag, "OK", "SEARCH completed"));
}

/// Whether a search key uses MODSEQ anywhere.
fn mentions_modseq(k: &SearchKey<'_>, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    match k {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(|k| mentions_modseq(k, depth + 1)),
        SearchKey::Or(a, b) => mentions_modseq(a, depth + 1) || mentions_modseq(b, depth + 1),
        SearchKey::Not(a) => mentions_modseq(a, depth + 1),
        _ => false,
    }
}

/// `* ESEARCH (TAG "a") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]` over ascending `hits`; with
/// no hits MIN, MAX and ALL are left out (RFC 4731 section 3.1), COUNT is 0.
pub fn esearch(tag: &str, uid: bool, ret: SearchReturn, hits: &[u32]) -> Vec<u8> {
    let mut out = b"* ESEARCH (TAG ".to_vec();
    string(&mut out, tag.as_bytes());
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    if let (Some(first), Some(last)) = (hits.first(), hits.last()) {
        if ret.min {
            out.extend_from_slice(format!(" MIN {first}").as_bytes());
        }
        if ret.max {
            out.extend_from_slice(format!(" MAX {last}").as_bytes());
        }
    }
    if ret.count {
        out.extend_from_slice(format!(" COUNT {}", hits.len()).as_bytes());
    }
    if ret.all && !hits.is_empty() {
        out.extend_from_slice(format!(" ALL {}", compact(hits)).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}
