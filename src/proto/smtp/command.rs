//! One SMTP command line (without its line ending) → a typed [`Command`], or a [`CommandError`]
//! that names the reply to give.

use super::address::{AddressError, Path, parse_path};
use super::reply::Reply;
use crate::dsn::{self, Notify, Ret};

/// `BODY=` values (RFC 6152).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    SevenBit,
    EightBitMime,
}

/// Parameters of `MAIL FROM` we support.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870 `SIZE=`.
    pub size: Option<u64>,
    /// RFC 6152 `BODY=`.
    pub body: Option<BodyType>,
    /// RFC 6531 `SMTPUTF8`.
    pub smtputf8: bool,
    /// RFC 3461 `RET=`.
    pub ret: Option<Ret>,
    /// RFC 3461 `ENVID=` (xtext, as given).
    pub envid: Option<String>,
}

/// Parameters of `RCPT TO` we support (RFC 3461).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// `ORCPT=` as given (`addr-type;xtext`).
    pub orcpt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail {
        from: Path,
        params: MailParams,
    },
    Rcpt {
        to: Path,
        params: RcptParams,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954); the mechanism upper-cased.
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// Recognised, not offered: EXPN, BDAT, ETRN, TURN.
    NotImplemented(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Not a verb we know: 502.
    Unknown,
    /// Wrong arguments: 501 with the expected syntax.
    Syntax(&'static str),
    /// A path that does not parse or is too long.
    Address { err: AddressError, recipient: bool },
    /// A parameter we do not support: 555.
    UnknownParameter(String),
    /// A supported parameter with a bad value or given twice: 501.
    BadParameter(String),
}

impl CommandError {
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Unknown => super::reply::canned::unknown_command(),
            CommandError::Syntax(usage) => Reply::new(501, "5.5.4", format!("Syntax: {usage}")),
            CommandError::Address { err, recipient } => {
                let what = if *recipient { "recipient" } else { "sender" };
                match err {
                    AddressError::Syntax => {
                        Reply::new(501, "5.1.3", format!("Bad {what} address syntax"))
                    }
                    other => Reply::new(553, "5.1.3", format!("Bad {what} address: {other}")),
                }
            }
            CommandError::UnknownParameter(p) => Reply::new(
                555,
                "5.5.4",
                format!("Unsupported parameter: {}", printable(p)),
            ),
            CommandError::BadParameter(p) => {
                Reply::new(501, "5.5.4", format!("Bad parameter: {}", printable(p)))
            }
        }
    }
}

/// Echo client text safely: printable ASCII only, at most 64 characters.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

const MAIL_SYNTAX: &str =
    "MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=xtext]";
const RCPT_SYNTAX: &str =
    "RCPT TO:<address> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=rfc822;xtext]";

/// Parses one command line (no CR/LF).
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    // The verb is ASCII; arguments may carry UTF-8 (SMTPUTF8).
    let line = std::str::from_utf8(line).map_err(|_| {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        match verb_end {
            4 if line[..4].eq_ignore_ascii_case(b"MAIL") => CommandError::Syntax(MAIL_SYNTAX),
            4 if line[..4].eq_ignore_ascii_case(b"RCPT") => CommandError::Syntax(RCPT_SYNTAX),
            _ => CommandError::Unknown,
        }
    })?;
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, args) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let upper = verb.to_ascii_uppercase();
    let no_args = |cmd: Command, usage: &'static str| {
        if args.trim().is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax(usage))
        }
    };
    match upper.as_str() {
        "HELO" => domain_arg(args, "HELO hostname").map(Command::Helo),
        "EHLO" => domain_arg(args, "EHLO hostname").map(Command::Ehlo),
        "MAIL" => parse_mail(args),
        "RCPT" => parse_rcpt(args),
        "DATA" => no_args(Command::Data, "DATA"),
        "RSET" => no_args(Command::Rset, "RSET"),
        "QUIT" => no_args(Command::Quit, "QUIT"),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => {
            if args.trim().is_empty() {
                Err(CommandError::Syntax("VRFY address"))
            } else {
                Ok(Command::Vrfy)
            }
        }
        "STARTTLS" => no_args(Command::StartTls, "STARTTLS"),
        "AUTH" => {
            let mut words = args.split(' ').filter(|w| !w.is_empty());
            match (words.next(), words.next(), words.next()) {
                (Some(m), ir, None) => Ok(Command::Auth {
                    mechanism: m.to_ascii_uppercase(),
                    initial: ir.map(str::to_string),
                }),
                _ => Err(CommandError::Syntax("AUTH mechanism [initial-response]")),
            }
        }
        "EXPN" => Ok(Command::NotImplemented("EXPN")),
        "BDAT" => Ok(Command::NotImplemented("BDAT")),
        "ETRN" => Ok(Command::NotImplemented("ETRN")),
        "TURN" => Ok(Command::NotImplemented("TURN")),
        _ => Err(CommandError::Unknown),
    }
}

fn domain_arg(args: &str, usage: &'static str) -> Result<String, CommandError> {
    let arg = args.trim();
    if arg.is_empty() || arg.contains(' ') {
        return Err(CommandError::Syntax(usage));
    }
    // Keep only what is safe to echo into a Received: header.
    if arg.chars().any(|c| c.is_control()) {
        return Err(CommandError::Syntax(usage));
    }
    Ok(arg.to_string())
}

/// `FROM:` / `TO:` prefix, case-insensitive.
fn strip_keyword<'a>(args: &'a str, kw: &str) -> Option<&'a str> {
    if args.len() >= kw.len() && args.is_char_boundary(kw.len()) {
        let (head, tail) = args.split_at(kw.len());
        if head.eq_ignore_ascii_case(kw) {
            return Some(tail);
        }
    }
    None
}

fn bad(p: &str) -> CommandError {
    CommandError::BadParameter(p.to_string())
}

fn parse_mail(args: &str) -> Result<Command, CommandError> {
    let rest = strip_keyword(args, "FROM:").ok_or(CommandError::Syntax(MAIL_SYNTAX))?;
    let (from, params) = parse_path(rest).map_err(|err| CommandError::Address {
        err,
        recipient: false,
    })?;
    if from == Path::Postmaster {
        return Err(CommandError::Address {
            err: AddressError::Syntax,
            recipient: false,
        });
    }
    let mut out = MailParams::default();
    for p in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) if out.size.is_none() => {
                let n = (!v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| v.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| CommandError::BadParameter(p.to_string()))?;
                out.size = Some(n);
            }
            ("BODY", Some(v)) if out.body.is_none() => {
                out.body = Some(match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    _ => return Err(CommandError::UnknownParameter(p.to_string())),
                });
            }
            ("SMTPUTF8", None) if !out.smtputf8 => out.smtputf8 = true,
            ("RET", Some(v)) if out.ret.is_none() => {
                out.ret = Some(Ret::parse(v).ok_or_else(|| bad(p))?);
            }
            ("ENVID", Some(v))
                if out.envid.is_none()
                    && !v.is_empty()
                    && v.len() <= dsn::MAX_ENVID
                    && dsn::is_xtext(v) =>
            {
                out.envid = Some(v.to_string());
            }
            ("SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID", _) => {
                return Err(CommandError::BadParameter(p.to_string()));
            }
            _ => return Err(CommandError::UnknownParameter(p.to_string())),
        }
    }
    Ok(Command::Mail { from, params: out })
}

fn parse_rcpt(args: &str) -> Result<Command, CommandError> {
    let rest = strip_keyword(args, "TO:").ok_or(CommandError::Syntax(RCPT_SYNTAX))?;
    let (to, params) = parse_path(rest).map_err(|err| CommandError::Address {
        err,
        recipient: true,
    })?;
    if to == Path::Null {
        return Err(CommandError::Address {
            err: AddressError::Syntax,
            recipient: true,
        });
    }
    let mut out = RcptParams::default();
    for p in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("NOTIFY", Some(v)) if out.notify.is_none() => {
                out.notify = Some(Notify::parse(v).ok_or_else(|| bad(p))?);
            }
            ("ORCPT", Some(v)) if out.orcpt.is_none() => {
                out.orcpt = Some(dsn::parse_orcpt(v).ok_or_else(|| bad(p))?);
            }
            ("NOTIFY" | "ORCPT", _) => return Err(bad(p)),
            _ => return Err(CommandError::UnknownParameter(p.to_string())),
        }
    }
    Ok(Command::Rcpt { to, params: out })
}

#[cfg(test)]
mod tests {
    use super::super::address::Mailbox;
    use super::*;

    fn mb(l: &str, d: &str) -> Path {
        Path::Mailbox(Mailbox {
            local: l.into(),
            domain: d.into(),
        })
    }

    #[test]
    fn every_verb() {
        use Command::*;
        let ok: &[(&str, Command)] = &[
            ("HELO client.test", Helo("client.test".into())),
            ("helo client.test", Helo("client.test".into())),
            ("EHLO [192.0.2.1]", Ehlo("[192.0.2.1]".into())),
            ("EHLO client.test ", Ehlo("client.test".into())),
            (
                "MAIL FROM:<a@b.test>",
                Mail {
                    from: mb("a", "b.test"),
                    params: MailParams::default(),
                },
            ),
            (
                "mail from: <a@b.test>",
                Mail {
                    from: mb("a", "b.test"),
                    params: MailParams::default(),
                },
            ),
            (
                "MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8",
                Mail {
                    from: Path::Null,
                    params: MailParams {
                        size: Some(100),
                        body: Some(BodyType::EightBitMime),
                        smtputf8: true,
                        ..Default::default()
                    },
                },
            ),
            (
                "MAIL FROM:<a@b.test> ret=hdrs ENVID=QQ+2B314",
                Mail {
                    from: mb("a", "b.test"),
                    params: MailParams {
                        ret: Some(Ret::Hdrs),
                        envid: Some("QQ+2B314".into()),
                        ..Default::default()
                    },
                },
            ),
            (
                "RCPT TO:<c@d.test> NOTIFY=SUCCESS,FAILURE orcpt=rfc822;C+2Bx@d.test",
                Rcpt {
                    to: mb("c", "d.test"),
                    params: RcptParams {
                        notify: Notify::parse("SUCCESS,FAILURE"),
                        orcpt: Some("rfc822;C+2Bx@d.test".into()),
                    },
                },
            ),
            (
                "MAIL FROM:<a@b.test> body=7bit",
                Mail {
                    from: mb("a", "b.test"),
                    params: MailParams {
                        body: Some(BodyType::SevenBit),
                        ..Default::default()
                    },
                },
            ),
            (
                "RCPT TO:<c@d.test>",
                Rcpt {
                    to: mb("c", "d.test"),
                    params: RcptParams::default(),
                },
            ),
            (
                "RCPT TO:<postmaster>",
                Rcpt {
                    to: Path::Postmaster,
                    params: RcptParams::default(),
                },
            ),
            (
                "Rcpt To:<POSTMASTER>",
                Rcpt {
                    to: Path::Postmaster,
                    params: RcptParams::default(),
                },
            ),
            ("DATA", Data),
            ("RSET", Rset),
            ("NOOP", Noop),
            ("NOOP anything", Noop),
            ("QUIT", Quit),
            ("VRFY alice", Vrfy),
            ("HELP", Help),
            ("HELP MAIL", Help),
            ("STARTTLS", StartTls),
            (
                "AUTH PLAIN",
                Auth {
                    mechanism: "PLAIN".into(),
                    initial: None,
                },
            ),
            (
                "auth login dXNlcg==",
                Auth {
                    mechanism: "LOGIN".into(),
                    initial: Some("dXNlcg==".into()),
                },
            ),
            ("EXPN list", NotImplemented("EXPN")),
            ("BDAT 10 LAST", NotImplemented("BDAT")),
        ];
        for (line, want) in ok {
            assert_eq!(parse(line.as_bytes()).as_ref(), Ok(want), "{line:?}");
        }
    }

    #[test]
    fn errors() {
        type Check = fn(&CommandError) -> bool;
        let table: &[(&[u8], Check)] = &[
            (b"", |e| *e == CommandError::Unknown),
            (b"FOO", |e| *e == CommandError::Unknown),
            (b"GET / HTTP/1.0", |e| *e == CommandError::Unknown),
            (b"HELO", |e| matches!(e, CommandError::Syntax(_))),
            (b"EHLO", |e| matches!(e, CommandError::Syntax(_))),
            (b"EHLO a b", |e| matches!(e, CommandError::Syntax(_))),
            (b"MAIL", |e| matches!(e, CommandError::Syntax(_))),
            (b"MAIL TO:<a@b.test>", |e| {
                matches!(e, CommandError::Syntax(_))
            }),
            (b"MAIL FROM:<a@b.test", |e| {
                matches!(e, CommandError::Address { .. })
            }),
            (b"MAIL FROM:<postmaster>", |e| {
                matches!(e, CommandError::Address { .. })
            }),
            (b"MAIL FROM:<a@b.test> FOO=1", |e| {
                matches!(e, CommandError::UnknownParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> BODY=BINARYMIME", |e| {
                matches!(e, CommandError::UnknownParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> SIZE=abc", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> SIZE=99999999999999999999999", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> SIZE=1 SIZE=2", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> BODY=7BIT BODY=8BITMIME", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> SMTPUTF8=yes", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> RET=BODY", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> RET=FULL RET=HDRS", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> ENVID=a=b", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"MAIL FROM:<a@b.test> ENVID=", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"RCPT TO:<a@b.test> NOTIFY=NEVER,DELAY", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"RCPT TO:<a@b.test> NOTIFY=SUCCESS NOTIFY=DELAY", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"RCPT TO:<a@b.test> ORCPT=bob@b.test", |e| {
                matches!(e, CommandError::BadParameter(_))
            }),
            (b"RCPT TO:<a@b.test> FOO=1", |e| {
                matches!(e, CommandError::UnknownParameter(_))
            }),
            (b"RCPT TO:<>", |e| matches!(e, CommandError::Address { .. })),
            (b"RCPT FROM:<a@b.test>", |e| {
                matches!(e, CommandError::Syntax(_))
            }),
            (b"DATA x", |e| matches!(e, CommandError::Syntax(_))),
            (b"QUIT now", |e| matches!(e, CommandError::Syntax(_))),
            (b"VRFY", |e| matches!(e, CommandError::Syntax(_))),
            (b"STARTTLS now", |e| matches!(e, CommandError::Syntax(_))),
            (b"AUTH", |e| matches!(e, CommandError::Syntax(_))),
            (b"AUTH PLAIN a b", |e| matches!(e, CommandError::Syntax(_))),
            (b"MAIL FROM:<\xff@b.test>", |e| {
                matches!(e, CommandError::Syntax(_))
            }),
            (b"\xff\xfe", |e| *e == CommandError::Unknown),
        ];
        for (line, check) in table {
            let got = parse(line);
            assert!(
                got.as_ref().is_err_and(check),
                "{:?} gave {got:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn error_replies_have_the_right_codes() {
        assert_eq!(CommandError::Unknown.reply().code, 502);
        assert_eq!(CommandError::Syntax("x").reply().code, 501);
        assert_eq!(CommandError::UnknownParameter("X".into()).reply().code, 555);
        assert_eq!(CommandError::BadParameter("X".into()).reply().code, 501);
        let e = CommandError::Address {
            err: AddressError::PathTooLong,
            recipient: true,
        };
        assert_eq!(e.reply().code, 553);
    }
}
