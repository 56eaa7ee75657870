//! SEARCHRES (RFC 5182, part of IMAP4rev2): `SEARCH RETURN (SAVE)` keeps a search's result and
//! `$` names it as a sequence set. imap-codec 2.0.0-alpha.10 does not parse `$` (no feature flag
//! adds it), so before a command goes to the codec a bare `$` (outside quoted strings and
//! literals) is replaced here by the saved messages written out: their UIDs for UID commands and,
//! as `UID set`, in SEARCH keys; their current sequence numbers for FETCH, STORE, COPY and MOVE.
//! The result is kept as UIDs, so expunged messages drop out of it and new ones never join it.
//! An empty result cannot be written as a sequence set: FETCH, STORE, COPY, MOVE and UID EXPUNGE
//! of `$` then act on nothing and answer OK, and in SEARCH `$` becomes `NOT ALL`.

/// What to do with a command before the codec reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    Unchanged,
    Command(Vec<u8>),
    /// `$` is empty and the command acts on no message: answer OK for this verb.
    NoMessages(&'static str),
}

/// The offsets of bare `$` tokens in `bytes` (skipping quoted strings and literals).
fn dollars(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    let bare = |b: Option<&u8>| b.is_none_or(|&b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'));
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' => {
                let Some(close) = bytes[i..].iter().position(|&b| b == b'}') else {
                    return out;
                };
                let digits = &bytes[i + 1..i + close];
                let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                let n = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok());
                i += close + 1;
                if let Some(n) = n
                    && bytes[i..].starts_with(b"\r\n")
                {
                    i = i.saturating_add(2).saturating_add(n);
                }
            }
            b'$' if (i == 0 || bare(bytes.get(i - 1))) && bare(bytes.get(i + 1)) => {
                out.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether a command line mentions SAVE (a refused `SEARCH RETURN (SAVE)` empties `$`).
pub fn mentions_save(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w.eq_ignore_ascii_case(b"SAVE"))
}

/// Whether the `$` at `i` of a SEARCH is the string a key takes (`SUBJECT $`, `HEADER X $`),
/// not a sequence set.
fn is_string_argument(bytes: &[u8], i: usize) -> bool {
    const TAKES_STRING: &[&[u8]] = &[
        b"BCC",
        b"BODY",
        b"CC",
        b"FROM",
        b"KEYWORD",
        b"SUBJECT",
        b"TEXT",
        b"TO",
        b"UNKEYWORD",
        b"HEADER",
        b"CHARSET",
    ];
    let mut before = bytes[..i]
        .split(|&b| b == b' ' || b == b'(')
        .rev()
        .filter(|w| !w.is_empty());
    let last = before.next().unwrap_or_default();
    let second = before.next().unwrap_or_default();
    let is = |w: &[u8], names: &[&[u8]]| names.iter().any(|n| w.eq_ignore_ascii_case(n));
    is(last, TAKES_STRING) || is(second, &[b"HEADER"])
}

/// `1:3,5` of sorted numbers.
fn set(nums: &[u32]) -> Vec<u8> {
    super::seqset::compact(nums).into_bytes()
}

/// Replaces `$` in `bytes` by `saved` (UIDs, ascending); `seq_of` gives a UID's sequence number
/// in the selected folder.
pub fn rewrite(bytes: &[u8], saved: &[u32], seq_of: &dyn Fn(u32) -> Option<u32>) -> Rewrite {
    if !bytes.contains(&b'$') {
        return Rewrite::Unchanged;
    }
    let at = dollars(bytes);
    if at.is_empty() {
        return Rewrite::Unchanged;
    }
    let words: Vec<&[u8]> = bytes.splitn(4, |&b| b == b' ').collect();
    let (uid, verb, args_start) = match words.as_slice() {
        [tag, u, v, _] if u.eq_ignore_ascii_case(b"UID") => (
            true,
            v.to_ascii_uppercase(),
            tag.len() + u.len() + v.len() + 3,
        ),
        [tag, v, ..] => (false, v.to_ascii_uppercase(), tag.len() + v.len() + 2),
        _ => return Rewrite::Unchanged,
    };
    let mut out = bytes.to_vec();
    match verb.as_slice() {
        b"FETCH" | b"STORE" | b"COPY" | b"MOVE" | b"EXPUNGE" => {
            if !at.contains(&args_start) || (verb == b"EXPUNGE" && !uid) {
                return Rewrite::Unchanged;
            }
            let nums: Vec<u32> = if uid {
                saved.to_vec()
            } else {
                let mut seqs: Vec<u32> = saved.iter().filter_map(|&u| seq_of(u)).collect();
                seqs.sort_unstable();
                seqs
            };
            if nums.is_empty() {
                return Rewrite::NoMessages(match verb.as_slice() {
                    b"FETCH" => "FETCH",
                    b"STORE" => "STORE",
                    b"COPY" => "COPY",
                    b"MOVE" => "MOVE",
                    _ => "EXPUNGE",
                });
            }
            drop(out.splice(args_start..args_start + 1, set(&nums)));
        }
        b"SEARCH" => {
            // From the last `$` back, so that earlier offsets stay right.
            for &i in at.iter().rev().filter(|&&i| !is_string_argument(bytes, i)) {
                let after_uid = i >= 4 && bytes[i - 4..i].eq_ignore_ascii_case(b"UID ");
                match (saved.is_empty(), after_uid) {
                    (false, true) => drop(out.splice(i..i + 1, set(saved))),
                    (false, false) => {
                        let mut with = b"UID ".to_vec();
                        with.extend(set(saved));
                        drop(out.splice(i..i + 1, with));
                    }
                    (true, true) => drop(out.splice(i - 4..i + 1, b"NOT ALL".to_vec())),
                    (true, false) => drop(out.splice(i..i + 1, b"NOT ALL".to_vec())),
                }
            }
        }
        _ => return Rewrite::Unchanged,
    }
    Rewrite::Command(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(line: &str, saved: &[u32]) -> Rewrite {
        // UIDs 3, 7 and 9 are messages 1, 2 and 3.
        let seq_of = |u: u32| [3, 7, 9].iter().position(|&x| x == u).map(|i| i as u32 + 1);
        rewrite(line.as_bytes(), saved, &seq_of)
    }

    fn cmd(s: &str) -> Rewrite {
        Rewrite::Command(s.as_bytes().to_vec())
    }

    #[test]
    fn dollar_is_replaced_where_it_is_a_sequence_set() {
        for (line, saved, want) in [
            (
                "a UID FETCH $ FLAGS\r\n",
                &[3, 9][..],
                cmd("a UID FETCH 3,9 FLAGS\r\n"),
            ),
            (
                "a FETCH $ FLAGS\r\n",
                &[3, 7, 9],
                cmd("a FETCH 1:3 FLAGS\r\n"),
            ),
            ("a FETCH $ FLAGS\r\n", &[9, 50], cmd("a FETCH 3 FLAGS\r\n")),
            (
                "a STORE $ +FLAGS (\\Seen)\r\n",
                &[7],
                cmd("a STORE 2 +FLAGS (\\Seen)\r\n"),
            ),
            (
                "a uid copy $ Trash\r\n",
                &[7, 9],
                cmd("a uid copy 7,9 Trash\r\n"),
            ),
            ("a UID EXPUNGE $\r\n", &[3], cmd("a UID EXPUNGE 3\r\n")),
            (
                "a SEARCH $ UNSEEN\r\n",
                &[3, 9],
                cmd("a SEARCH UID 3,9 UNSEEN\r\n"),
            ),
            (
                "a SEARCH OR $ (UID $)\r\n",
                &[3],
                cmd("a SEARCH OR UID 3 (UID 3)\r\n"),
            ),
            ("a SEARCH NOT $\r\n", &[], cmd("a SEARCH NOT NOT ALL\r\n")),
            (
                "a UID SEARCH UID $\r\n",
                &[],
                cmd("a UID SEARCH NOT ALL\r\n"),
            ),
            ("a FETCH $ FLAGS\r\n", &[], Rewrite::NoMessages("FETCH")),
            ("a FETCH $ FLAGS\r\n", &[50], Rewrite::NoMessages("FETCH")),
            ("a UID MOVE $ Trash\r\n", &[], Rewrite::NoMessages("MOVE")),
            // Not a sequence set: left to the codec (which says BAD where it is wrong).
            ("a SEARCH SUBJECT \"$\"\r\n", &[3], Rewrite::Unchanged),
            (
                "a SEARCH SUBJECT $\r\n",
                &[3],
                cmd("a SEARCH SUBJECT $\r\n"),
            ),
            (
                "a SEARCH HEADER X-Y $ $\r\n",
                &[3],
                cmd("a SEARCH HEADER X-Y $ UID 3\r\n"),
            ),
            (
                "a SEARCH (FROM $) $\r\n",
                &[3],
                cmd("a SEARCH (FROM $) UID 3\r\n"),
            ),
            ("a SEARCH SUBJECT {1}\r\n$\r\n", &[3], Rewrite::Unchanged),
            ("a STORE 1 +FLAGS ($)\r\n", &[3], Rewrite::Unchanged),
            (
                "a STORE 1 +FLAGS ($Forwarded)\r\n",
                &[3],
                Rewrite::Unchanged,
            ),
            ("a EXPUNGE $\r\n", &[3], Rewrite::Unchanged),
            ("a SELECT $\r\n", &[3], Rewrite::Unchanged),
            ("$", &[3], Rewrite::Unchanged),
        ] {
            assert_eq!(rw(line, saved), want, "{line:?}");
        }
        assert!(mentions_save(b"a SEARCH RETURN (save) FROB"));
    }

    proptest::proptest! {
        /// Whatever the command, the rewrite does not panic.
        #[test]
        fn arbitrary_commands_never_panic(
            tail in proptest::collection::vec(
                proptest::sample::select(b"$ (){}\"\\1+\r\nUIDFETCHSEARCH".to_vec()),
                0..80,
            ),
        ) {
            let _ = rw(&String::from_utf8_lossy(&[&b"a "[..], &tail].concat()), &[3, 9]);
            let _ = rewrite(&tail, &[], &|_| None);
        }
    }
}
