//! A small pre-parser for the command forms imap-codec 2.0.0-alpha.10 does not parse, tried on
//! each command before the codec: `[UID] SEARCH RETURN (...)` (RFC 4731 / RFC 4466; the codec's
//! SEARCH has no RETURN, and no feature flag adds it). The RETURN options are taken out here and
//! the rest of the command is still decoded by imap-codec, so search keys, charsets and literals
//! keep the codec's rules. Anything malformed or unknown in the part read here is a tagged BAD.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::search::SearchKey;

/// What `SEARCH RETURN (...)` asks for (RFC 4731). `RETURN ()` is `RETURN (ALL)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub count: bool,
    pub all: bool,
}

impl SearchReturn {
    pub const ALL: SearchReturn = SearchReturn {
        min: false,
        max: false,
        count: false,
        all: true,
    };
}

/// A command the pre-parser read.
#[derive(Debug)]
pub enum Extended {
    Search {
        uid: bool,
        ret: SearchReturn,
        criteria: Vec<SearchKey<'static>>,
    },
}

/// Why a command the pre-parser recognised is refused (the BAD text).
pub type Refusal = &'static str;

/// `bytes` without a leading case-insensitive `word`, when it starts with it.
fn strip_ci<'a>(bytes: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    (bytes.len() >= word.len() && bytes[..word.len()].eq_ignore_ascii_case(word))
        .then(|| &bytes[word.len()..])
}

/// `None`: not a form read here (the codec decodes it); else the command or why it is refused.
pub fn parse(bytes: &[u8]) -> Option<Result<Extended, Refusal>> {
    let tag_end = bytes.iter().position(|&b| b == b' ')?;
    let after_tag = &bytes[tag_end + 1..];
    let (uid, verb) = match strip_ci(after_tag, b"UID ") {
        Some(rest) => (true, rest),
        None => (false, after_tag),
    };
    let after = strip_ci(verb, b"SEARCH RETURN")?;
    let start = bytes.len() - verb.len() + b"SEARCH".len();
    Some(search_return(bytes, start, after, uid))
}

/// `bytes[start..]` is ` RETURN` followed by `after`: ` (opts) criteria`.
fn search_return(bytes: &[u8], start: usize, after: &[u8], uid: bool) -> Result<Extended, Refusal> {
    const MALFORMED: Refusal = "Malformed SEARCH RETURN options (RFC 4731)";
    let opts = strip_ci(after, b" (").ok_or(MALFORMED)?;
    let close = opts
        .iter()
        .position(|&b| b == b')' || b == b'(' || b == b'\r' || b == b'\n')
        .filter(|&i| opts[i] == b')')
        .ok_or(MALFORMED)?;
    let mut ret = SearchReturn::default();
    let list = &opts[..close];
    if !list.is_empty() {
        for word in list.split(|&b| b == b' ') {
            match word.to_ascii_uppercase().as_slice() {
                b"MIN" => ret.min = true,
                b"MAX" => ret.max = true,
                b"COUNT" => ret.count = true,
                b"ALL" => ret.all = true,
                b"" => return Err(MALFORMED),
                _ => return Err("Unknown SEARCH RETURN option (MIN, MAX, COUNT, ALL are offered)"),
            }
        }
    }
    if ret == SearchReturn::default() {
        ret = SearchReturn::ALL;
    }
    let rest = &opts[close + 1..];
    if !rest.starts_with(b" ") {
        return Err(MALFORMED);
    }
    // The command without ` RETURN (...)`, for the codec.
    let mut plain = bytes[..start].to_vec();
    plain.extend_from_slice(rest);
    match CommandCodec::default().decode(&plain) {
        Ok(([], cmd)) => match cmd.body {
            CommandBody::Search { criteria, .. } => Ok(Extended::Search {
                uid,
                ret,
                criteria: criteria.into_inner().into_static(),
            }),
            _ => Err(MALFORMED),
        },
        _ => Err("Syntax error in SEARCH criteria (see RFC 3501)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(line: &str) -> Result<(bool, SearchReturn, usize), Refusal> {
        match parse(line.as_bytes()) {
            Some(Ok(Extended::Search { uid, ret, criteria })) => Ok((uid, ret, criteria.len())),
            Some(Err(e)) => Err(e),
            None => Err("not pre-parsed"),
        }
    }

    #[test]
    fn search_return_options() {
        let all = SearchReturn::ALL;
        let mm = SearchReturn {
            min: true,
            max: true,
            ..Default::default()
        };
        for (line, want) in [
            ("a SEARCH RETURN (ALL) ALL\r\n", Ok((false, all, 1))),
            ("a SEARCH RETURN () ALL\r\n", Ok((false, all, 1))),
            (
                "a uid search return (min MAX) UNSEEN FROM x\r\n",
                Ok((true, mm, 2)),
            ),
            (
                "a SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT {3}\r\nabc\r\n",
                Ok((
                    false,
                    SearchReturn {
                        count: true,
                        ..Default::default()
                    },
                    1,
                )),
            ),
            ("a SEARCH RETURN (SAVE) ALL\r\n", Err("Unknown")),
            ("a SEARCH RETURN (PARTIAL 1:5) ALL\r\n", Err("Unknown")),
            ("a SEARCH RETURN (MIN ALL\r\n", Err("Malformed")),
            ("a SEARCH RETURN ((MIN)) ALL\r\n", Err("Malformed")),
            ("a SEARCH RETURN (MIN  MAX) ALL\r\n", Err("Malformed")),
            ("a SEARCH RETURN MIN ALL\r\n", Err("Malformed")),
            ("a SEARCH RETURN (MIN)ALL\r\n", Err("Malformed")),
            ("a SEARCH RETURN (MIN)\r\n", Err("Malformed")),
            ("a SEARCH RETURN\r\n", Err("Malformed")),
            ("a SEARCH RETURN (MIN) FROB\r\n", Err("Syntax")),
        ] {
            match (ret(line), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{line:?}"),
                (Err(got), Err(w)) => assert!(got.starts_with(w), "{line:?}: {got}"),
                (got, _) => panic!("{line:?}: {got:?}"),
            }
        }
        assert!(parse(b"a SEARCH ALL\r\n").is_none());
        assert!(parse(b"a UID FETCH 1 UID\r\n").is_none());
        assert!(parse(b"SEARCH").is_none());
    }
}
