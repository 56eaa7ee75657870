//! Sequence sets against the selected folder: which messages (indices) a set names. Work is
//! bounded by the number of messages times the number of ranges in the set (the set itself is
//! bounded by the command line), never by the numbers in it, so `1:4294967295` or `*:*` cost
//! no more than `1:*`.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use super::store::Msg;

fn value(v: &SeqOrUid, star: u32) -> u32 {
    match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => star,
    }
}

/// Whether `n` is in `set`, `*` standing for `star`.
pub fn contains(set: &SequenceSet, n: u32, star: u32) -> bool {
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => value(v, star) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a, star), value(b, star));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            (lo..=hi).contains(&n)
        }
    })
}

/// The indices of `msgs` that `set` names, by UID or by sequence number.
pub fn resolve(set: &SequenceSet, msgs: &[Msg], uid: bool) -> Vec<usize> {
    if uid {
        let star = msgs.last().map_or(0, |m| m.uid);
        msgs.iter()
            .enumerate()
            .filter(|(_, m)| contains(set, m.uid, star))
            .map(|(i, _)| i)
            .collect()
    } else {
        let star = msgs.len() as u32;
        (0..msgs.len())
            .filter(|&i| contains(set, i as u32 + 1, star))
            .collect()
    }
}

/// Whether a sequence-number set names a message that does not exist (RFC 3501: BAD).
pub fn out_of_range(set: &SequenceSet, count: u32) -> bool {
    let over = |v: &SeqOrUid| matches!(v, SeqOrUid::Value(n) if n.get() > count);
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => over(v),
        Sequence::Range(a, b) => over(a) && over(b),
    })
}

/// The UIDs of `set` (all of `1:top` when `None`), at most `top`, that no message of `msgs`
/// has, as `1:3,5`; work is bounded by the ranges and the messages, not the numbers.
pub fn missing(set: Option<&SequenceSet>, top: u32, msgs: &[Msg]) -> String {
    let mut ranges: Vec<(u32, u32)> = match set {
        None => vec![(1, top)],
        Some(set) => set
            .0
            .as_ref()
            .iter()
            .map(|s| match s {
                Sequence::Single(v) => (value(v, top), value(v, top)),
                Sequence::Range(a, b) => {
                    let (a, b) = (value(a, top), value(b, top));
                    (a.min(b), a.max(b))
                }
            })
            .collect(),
    };
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    let mut push = |lo: u32, hi: u32| match out.last_mut() {
        Some(last) if last.1.saturating_add(1) >= lo => last.1 = last.1.max(hi),
        _ => out.push((lo, hi)),
    };
    let mut from = 1u32;
    for (lo, hi) in ranges {
        let (lo, hi) = (lo.max(from).max(1), hi.min(top));
        if lo > hi {
            continue;
        }
        from = hi.saturating_add(1);
        let mut next = lo;
        let start = msgs.partition_point(|m| m.uid < lo);
        for m in msgs[start..].iter().take_while(|m| m.uid <= hi) {
            if m.uid > next {
                push(next, m.uid - 1);
            }
            next = m.uid + 1;
        }
        if next <= hi {
            push(next, hi);
        }
    }
    out.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `1:3,5` from sorted UIDs (COPYUID, APPENDUID).
pub fn compact(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::sequence::SequenceSet;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).unwrap()
    }

    fn msgs(uids: &[u32]) -> Vec<Msg> {
        uids.iter()
            .map(|&uid| Msg {
                uid,
                flags: Default::default(),
                recent: false,
                size: 0,
                internal: 0,
                modseq: 1,
            })
            .collect()
    }

    #[test]
    fn missing_uids_are_ranges_of_the_set_without_the_messages() {
        let m = msgs(&[3, 7, 8, 20]);
        assert_eq!(missing(None, 21, &m), "1:2,4:6,9:19,21");
        assert_eq!(missing(Some(&set("5:9,2")), 21, &m), "2,5:6,9");
        assert_eq!(missing(Some(&set("1:4294967295")), 8, &m), "1:2,4:6");
        assert_eq!(missing(Some(&set("7:8,1:3,2:4")), 21, &m), "1:2,4");
        assert_eq!(missing(Some(&set("3,7:8")), 21, &m), "");
        assert_eq!(missing(None, 0, &m), "");
    }

    #[test]
    fn sets_by_sequence_and_uid() {
        let m = msgs(&[3, 7, 8, 20]);
        assert_eq!(resolve(&set("1:*"), &m, false), [0, 1, 2, 3]);
        assert_eq!(resolve(&set("2,4"), &m, false), [1, 3]);
        assert_eq!(resolve(&set("*"), &m, false), [3]);
        assert_eq!(resolve(&set("*:*"), &m, false), [3]);
        assert_eq!(resolve(&set("1:4294967295"), &m, false), [0, 1, 2, 3]);
        assert_eq!(resolve(&set("7:8"), &m, true), [1, 2]);
        assert_eq!(resolve(&set("8:7"), &m, true), [1, 2]);
        // RFC 3501: "n:*" names the last message even when n is past it.
        assert_eq!(resolve(&set("50:*"), &m, true), [3]);
        assert_eq!(resolve(&set("1:*"), &[], true), Vec::<usize>::new());
        assert!(out_of_range(&set("5"), 4));
        assert!(!out_of_range(&set("4:*"), 4));
    }

    #[test]
    fn compact_ranges() {
        assert_eq!(compact(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact(&[9]), "9");
        assert_eq!(compact(&[]), "");
    }
}
