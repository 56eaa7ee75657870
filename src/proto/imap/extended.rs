//! A small pre-parser for the command forms imap-codec 2.0.0-alpha.10 does not parse, tried on
//! each command before the codec (no feature flag of imap-codec or imap-types adds them; its
//! `ext_list_extended` covers only the response side of RFC 5258):
//! - `[UID] SEARCH RETURN (...)` (RFC 4731 / RFC 4466). The RETURN options are taken out here
//!   and the rest of the command is still decoded by imap-codec, so search keys, charsets and
//!   literals keep the codec's rules.
//! - `LIST` with selection options, several patterns or `RETURN (...)` (RFC 5258, RFC 5819's
//!   STATUS, RFC 6154's SPECIAL-USE), read by the tokenizer below (atoms, quoted strings,
//!   literals, parentheses). A plain `LIST ref pattern` is left to the codec.
//!
//! Anything malformed or unknown in what is read here is a tagged BAD.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::status::StatusDataItemName;

/// What `SEARCH RETURN (...)` asks for (RFC 4731). `RETURN ()` is `RETURN (ALL)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub count: bool,
    pub all: bool,
    /// SAVE (RFC 5182): keep the result for `$`.
    pub save: bool,
}

impl SearchReturn {
    pub const ALL: SearchReturn = SearchReturn {
        min: false,
        max: false,
        count: false,
        all: true,
        save: false,
    };

    /// Nothing to answer (`RETURN (SAVE)` alone sends no ESEARCH, RFC 5182 section 2.4).
    pub fn is_save_only(&self) -> bool {
        self.save && !self.min && !self.max && !self.count && !self.all
    }
}

/// A command the pre-parser read.
#[derive(Debug)]
pub enum Extended {
    Search {
        uid: bool,
        ret: SearchReturn,
        criteria: Vec<SearchKey<'static>>,
    },
    List(ListCommand),
}

/// LIST's selection options (RFC 5258 section 3.1, RFC 6154's SPECIAL-USE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    /// Accepted and meaningless here: there are no remote folders.
    pub remote: bool,
    pub recursive: bool,
    pub special_use: bool,
}

/// LIST's return options (RFC 5258 section 3.2, RFC 5819, RFC 6154).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    /// RETURN (STATUS (...)): a STATUS line after each selectable folder's LIST line.
    pub status: Option<Vec<StatusDataItemName>>,
}

/// `LIST [(select)] reference (pattern...) [RETURN (...)]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListCommand {
    pub select: ListSelect,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub ret: ListReturn,
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
    if !uid && let Some(args) = strip_ci(verb, b"LIST ") {
        return list(args).map(|r| r.map(Extended::List));
    }
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
                b"SAVE" => ret.save = true,
                b"" => return Err(MALFORMED),
                _ => {
                    return Err(
                        "Unknown SEARCH RETURN option (MIN, MAX, COUNT, ALL, SAVE are offered)",
                    );
                }
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

/// One token of LIST's arguments.
#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Atom(Vec<u8>),
    /// A quoted string or a literal.
    Str(Vec<u8>),
}

/// LIST's arguments as tokens (they end with the command's CRLF), or `None` when they are not
/// IMAP syntax (a stray CR or LF, an unterminated string, a literal longer than what follows).
fn tokens(mut b: &[u8]) -> Option<Vec<Tok>> {
    b = b
        .strip_suffix(b"\r\n")
        .or_else(|| b.strip_suffix(b"\n"))
        .unwrap_or(b);
    let mut out = Vec::new();
    while let Some(&c) = b.first() {
        match c {
            b' ' => b = &b[1..],
            b'(' => {
                out.push(Tok::Open);
                b = &b[1..];
            }
            b')' => {
                out.push(Tok::Close);
                b = &b[1..];
            }
            b'"' => {
                let mut s = Vec::new();
                let mut i = 1;
                loop {
                    match *b.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            let e = *b.get(i + 1)?;
                            if e != b'"' && e != b'\\' {
                                return None;
                            }
                            s.push(e);
                            i += 2;
                        }
                        b'\r' | b'\n' | 0 => return None,
                        x => {
                            s.push(x);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
                b = &b[i + 1..];
            }
            b'{' => {
                let close = b.iter().position(|&x| x == b'}')?;
                let digits = b[1..close].strip_suffix(b"+").unwrap_or(&b[1..close]);
                if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit)
                {
                    return None;
                }
                let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
                let data = b[close + 1..].strip_prefix(b"\r\n")?;
                out.push(Tok::Str(data.get(..n)?.to_vec()));
                b = &data[n..];
            }
            _ => {
                let end = b
                    .iter()
                    .position(|&x| matches!(x, b' ' | b'(' | b')' | b'"' | b'{'))
                    .unwrap_or(b.len());
                let atom = &b[..end];
                if !atom.iter().all(|&x| x.is_ascii_graphic() && x != b'\\') {
                    return None;
                }
                out.push(Tok::Atom(atom.to_vec()));
                b = &b[end..];
            }
        }
    }
    Some(out)
}

const LIST_MALFORMED: Refusal = "Malformed LIST arguments (RFC 5258)";

/// `None`: a plain `LIST reference pattern` (or not LIST syntax at all), for the codec.
fn list(args: &[u8]) -> Option<Result<ListCommand, Refusal>> {
    let Some(toks) = tokens(args) else {
        return args.starts_with(b"(").then_some(Err(LIST_MALFORMED));
    };
    let mut extended = false;
    let r = list_tokens(&toks, &mut extended);
    extended.then_some(r)
}

fn list_tokens(toks: &[Tok], extended: &mut bool) -> Result<ListCommand, Refusal> {
    let mut cmd = ListCommand::default();
    let mut it = toks.iter().peekable();
    if it.peek() == Some(&&Tok::Open) {
        *extended = true;
        it.next();
        for word in group(&mut it)? {
            match word.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => cmd.select.subscribed = true,
                b"REMOTE" => cmd.select.remote = true,
                b"RECURSIVEMATCH" => cmd.select.recursive = true,
                b"SPECIAL-USE" => cmd.select.special_use = true,
                _ => {
                    return Err(
                        "Unknown LIST selection option (SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE are offered)",
                    );
                }
            }
        }
        if cmd.select.recursive && !cmd.select.subscribed && !cmd.select.special_use {
            return Err("RECURSIVEMATCH needs another selection option (RFC 5258)");
        }
    }
    cmd.reference = match it.next() {
        Some(Tok::Atom(a) | Tok::Str(a)) => a.clone(),
        _ => return Err(LIST_MALFORMED),
    };
    match it.next() {
        Some(Tok::Atom(a) | Tok::Str(a)) => cmd.patterns.push(a.clone()),
        Some(Tok::Open) => {
            *extended = true;
            loop {
                match it.next() {
                    Some(Tok::Atom(a) | Tok::Str(a)) => cmd.patterns.push(a.clone()),
                    Some(Tok::Close) if !cmd.patterns.is_empty() => break,
                    _ => return Err(LIST_MALFORMED),
                }
            }
        }
        _ => return Err(LIST_MALFORMED),
    }
    match it.next() {
        None => return Ok(cmd),
        Some(Tok::Atom(a)) if a.eq_ignore_ascii_case(b"RETURN") => *extended = true,
        Some(_) => return Err(LIST_MALFORMED),
    }
    if it.next() != Some(&Tok::Open) {
        return Err(LIST_MALFORMED);
    }
    loop {
        let word = match it.next() {
            Some(Tok::Close) => break,
            Some(Tok::Atom(a)) => a.to_ascii_uppercase(),
            _ => return Err(LIST_MALFORMED),
        };
        match word.as_slice() {
            b"SUBSCRIBED" => cmd.ret.subscribed = true,
            b"CHILDREN" => cmd.ret.children = true,
            b"SPECIAL-USE" => cmd.ret.special_use = true,
            b"STATUS" if cmd.ret.status.is_none() => {
                if it.next() != Some(&Tok::Open) {
                    return Err(LIST_MALFORMED);
                }
                let mut items = Vec::new();
                for item in group(&mut it)? {
                    items.push(match item.to_ascii_uppercase().as_slice() {
                        b"MESSAGES" => StatusDataItemName::Messages,
                        b"RECENT" => StatusDataItemName::Recent,
                        b"UIDNEXT" => StatusDataItemName::UidNext,
                        b"UIDVALIDITY" => StatusDataItemName::UidValidity,
                        b"UNSEEN" => StatusDataItemName::Unseen,
                        b"DELETED" => StatusDataItemName::Deleted,
                        b"SIZE" => StatusDataItemName::Size,
                        _ => return Err("Unknown STATUS item in LIST RETURN"),
                    });
                }
                if items.is_empty() {
                    return Err(LIST_MALFORMED);
                }
                cmd.ret.status = Some(items);
            }
            _ => {
                return Err(
                    "Unknown LIST return option (SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS are offered)",
                );
            }
        }
    }
    if it.next().is_some() {
        return Err(LIST_MALFORMED);
    }
    Ok(cmd)
}

/// The atoms up to the `)` that closes a group whose `(` was read.
fn group<'t>(it: &mut impl Iterator<Item = &'t Tok>) -> Result<Vec<&'t [u8]>, Refusal> {
    let mut words = Vec::new();
    loop {
        match it.next() {
            Some(Tok::Close) => return Ok(words),
            Some(Tok::Atom(a)) => words.push(a.as_slice()),
            _ => return Err(LIST_MALFORMED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(line: &str) -> Result<(bool, SearchReturn, usize), Refusal> {
        match parse(line.as_bytes()) {
            Some(Ok(Extended::Search { uid, ret, criteria })) => Ok((uid, ret, criteria.len())),
            Some(Ok(other)) => panic!("{other:?}"),
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
            (
                "a SEARCH RETURN (SAVE) ALL\r\n",
                Ok((
                    false,
                    SearchReturn {
                        save: true,
                        ..Default::default()
                    },
                    1,
                )),
            ),
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

    fn list_cmd(line: &str) -> Result<ListCommand, Refusal> {
        match parse(line.as_bytes()) {
            Some(Ok(Extended::List(l))) => Ok(l),
            Some(Ok(other)) => panic!("{other:?}"),
            Some(Err(e)) => Err(e),
            None => Err("not pre-parsed"),
        }
    }

    #[test]
    fn list_extended_arguments() {
        let l = list_cmd(
            "a LIST (SUBSCRIBED SPECIAL-USE) \"\" \"*\" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY))\r\n",
        )
        .unwrap();
        assert!(l.select.subscribed && l.select.special_use && !l.select.recursive);
        assert_eq!(l.reference, b"");
        assert_eq!(l.patterns, [b"*".to_vec()]);
        assert!(l.ret.subscribed && l.ret.children && l.ret.special_use);
        assert_eq!(
            l.ret.status,
            Some(vec![
                StatusDataItemName::Messages,
                StatusDataItemName::Unseen,
                StatusDataItemName::UidNext,
                StatusDataItemName::UidValidity
            ])
        );
        let l = list_cmd("a list () \"\" (INBOX {4}\r\nSe%t \"Tr\\\\sh\")\r\n").unwrap();
        assert_eq!(l.select, ListSelect::default());
        assert_eq!(
            l.patterns,
            [b"INBOX".to_vec(), b"Se%t".to_vec(), b"Tr\\sh".to_vec()]
        );
        let l = list_cmd("a LIST \"\" % RETURN ()\r\n").unwrap();
        assert_eq!(l.ret, ListReturn::default());
        let l = list_cmd("a LIST (RECURSIVEMATCH SUBSCRIBED REMOTE) Work %\r\n").unwrap();
        assert!(l.select.recursive && l.select.remote && l.reference == b"Work");
        // Plain LIST and LSUB are the codec's.
        for line in [
            "a LIST \"\" *\r\n",
            "a LIST \"\" \"unbalanced\r\n",
            "a LSUB (SUBSCRIBED) \"\" *\r\n",
            "a LIST\r\n",
        ] {
            assert!(parse(line.as_bytes()).is_none(), "{line:?}");
        }
        for (line, why) in [
            ("a LIST (FROB) \"\" *\r\n", "Unknown LIST selection"),
            ("a LIST (RECURSIVEMATCH) \"\" *\r\n", "RECURSIVEMATCH"),
            ("a LIST (SUBSCRIBED \"\" *\r\n", "Malformed"),
            ("a LIST ((SUBSCRIBED)) \"\" *\r\n", "Malformed"),
            ("a LIST (SUBSCRIBED) \"\"\r\n", "Malformed"),
            ("a LIST (SUBSCRIBED) \"\" ()\r\n", "Malformed"),
            ("a LIST \"\" (INBOX\r\n", "Malformed"),
            ("a LIST \"\" * RETURN\r\n", "Malformed"),
            ("a LIST \"\" * RETURN (CHILDREN\r\n", "Malformed"),
            ("a LIST \"\" * RETURN (FROB)\r\n", "Unknown LIST return"),
            ("a LIST \"\" * RETURN (STATUS)\r\n", "Malformed"),
            ("a LIST \"\" * RETURN (STATUS ())\r\n", "Malformed"),
            (
                "a LIST \"\" * RETURN (STATUS (HIGHESTMODSEQ))\r\n",
                "Unknown STATUS",
            ),
            (
                "a LIST \"\" * RETURN (STATUS (MESSAGES) STATUS (UNSEEN))\r\n",
                "Unknown LIST return",
            ),
            ("a LIST \"\" * RETURN (CHILDREN) extra\r\n", "Malformed"),
            ("a LIST \"\" * RETURN (CHILDREN))\r\n", "Malformed"),
            ("a LIST (SUBSCRIBED) \"\" {99}\r\nab\r\n", "Malformed"),
            ("a LIST (SUBSCRIBED) \"\" \"a\\qb\"\r\n", "Malformed"),
        ] {
            let got = list_cmd(line).unwrap_err();
            assert!(got.starts_with(why), "{line:?}: {got}");
        }
    }

    /// Where the property tests' arbitrary bytes start.
    const HEADS: [&[u8]; 4] = [
        b"a SEARCH RETURN ",
        b"a UID SEARCH RETURN (",
        b"a LIST ",
        b"a LIST (",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever follows `SEARCH RETURN` or `LIST`, the pre-parser answers without panicking.
        #[test]
        fn arbitrary_arguments_never_panic(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            pick in 0usize..4,
        ) {
            let head = HEADS[pick];
            let _ = parse(&[head, &tail].concat());
            let _ = tokens(&tail);
        }

        /// The same over IMAP's syntax characters, which reach the tokenizer's every branch.
        #[test]
        fn syntax_soup_never_panics(
            tail in proptest::collection::vec(
                proptest::sample::select(b"() \"{}1+\\\r\nAL*%".to_vec()),
                0..80,
            ),
            pick in 0usize..4,
        ) {
            let head = HEADS[pick];
            let _ = parse(&[head, &tail].concat());
        }
    }
}
