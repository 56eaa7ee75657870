//! One POP3 command line (without CRLF) → a typed [`Command`].

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    User(String),
    /// The whole rest of the line: passwords may contain spaces.
    Pass(String),
    /// `AUTH` alone lists mechanisms; otherwise the mechanism and an optional initial response.
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    Apop,
    Capa,
    Stls,
    Stat,
    /// `LIST [msg]`.
    List(Option<usize>),
    Retr(usize),
    Dele(usize),
    Noop,
    Rset,
    /// `TOP msg n`.
    Top(usize, u64),
    /// `UIDL [msg]`.
    Uidl(Option<usize>),
    Quit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    Unknown,
    /// Wrong or missing arguments; the text says what was expected.
    Syntax(&'static str),
}

fn number(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::Unknown)?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let args: Vec<&str> = rest.split(' ').filter(|a| !a.is_empty()).collect();
    let verb = verb.to_ascii_uppercase();
    let none = |cmd: Command, usage| {
        if args.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax(usage))
        }
    };
    let msg = |usage| match args.as_slice() {
        [n] => number(n).ok_or(CommandError::Syntax(usage)),
        _ => Err(CommandError::Syntax(usage)),
    };
    let opt_msg = |usage| match args.as_slice() {
        [] => Ok(None),
        [n] => number(n).map(Some).ok_or(CommandError::Syntax(usage)),
        _ => Err(CommandError::Syntax(usage)),
    };
    match verb.as_str() {
        "USER" => match args.as_slice() {
            [u] => Ok(Command::User(u.to_string())),
            _ => Err(CommandError::Syntax("USER name")),
        },
        "PASS" => {
            if rest.is_empty() {
                Err(CommandError::Syntax("PASS password"))
            } else {
                Ok(Command::Pass(rest.to_string()))
            }
        }
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            [m] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: None,
            }),
            [m, ir] => Ok(Command::Auth {
                mechanism: Some(m.to_ascii_uppercase()),
                initial: Some(ir.to_string()),
            }),
            _ => Err(CommandError::Syntax("AUTH mechanism [initial-response]")),
        },
        "APOP" => Ok(Command::Apop),
        "CAPA" => none(Command::Capa, "CAPA"),
        "STLS" => none(Command::Stls, "STLS"),
        "STAT" => none(Command::Stat, "STAT"),
        "LIST" => opt_msg("LIST [msg]").map(Command::List),
        "RETR" => msg("RETR msg").map(Command::Retr),
        "DELE" => msg("DELE msg").map(Command::Dele),
        "NOOP" => none(Command::Noop, "NOOP"),
        "RSET" => none(Command::Rset, "RSET"),
        "TOP" => match args.as_slice() {
            [m, n] => match (number(m), number(n)) {
                (Some(m), Some(n)) => Ok(Command::Top(m, n as u64)),
                _ => Err(CommandError::Syntax("TOP msg lines")),
            },
            _ => Err(CommandError::Syntax("TOP msg lines")),
        },
        "UIDL" => opt_msg("UIDL [msg]").map(Command::Uidl),
        "QUIT" => none(Command::Quit, "QUIT"),
        _ => Err(CommandError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        use Command::*;
        let ok: &[(&str, Command)] = &[
            ("USER alice@example.test", User("alice@example.test".into())),
            ("user a", User("a".into())),
            ("PASS secret with spaces", Pass("secret with spaces".into())),
            (
                "AUTH",
                Auth {
                    mechanism: None,
                    initial: None,
                },
            ),
            (
                "auth plain",
                Auth {
                    mechanism: Some("PLAIN".into()),
                    initial: None,
                },
            ),
            (
                "AUTH PLAIN AGFAYg==",
                Auth {
                    mechanism: Some("PLAIN".into()),
                    initial: Some("AGFAYg==".into()),
                },
            ),
            ("APOP x y", Apop),
            ("CAPA", Capa),
            ("STLS", Stls),
            ("STAT", Stat),
            ("LIST", List(None)),
            ("LIST 2", List(Some(2))),
            ("RETR 1", Retr(1)),
            ("DELE 10", Dele(10)),
            ("NOOP", Noop),
            ("RSET", Rset),
            ("TOP 1 0", Top(1, 0)),
            ("TOP 3 10", Top(3, 10)),
            ("UIDL", Uidl(None)),
            ("uidl 4", Uidl(Some(4))),
            ("QUIT", Quit),
        ];
        for (line, want) in ok {
            assert_eq!(parse(line.as_bytes()).as_ref(), Ok(want), "{line}");
        }
        for bad in [
            "LIST x",
            "LIST 1 2",
            "RETR",
            "RETR -1",
            "DELE a",
            "TOP 1",
            "TOP 1 -2",
            "STAT 1",
            "USER",
            "USER a b",
            "PASS",
            "RETR 9999999999",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(CommandError::Syntax(_))),
                "{bad}"
            );
        }
        for unknown in ["", "FOO", "HELO x", "\u{ff}"] {
            assert_eq!(
                parse(unknown.as_bytes()),
                Err(CommandError::Unknown),
                "{unknown:?}"
            );
        }
    }
}
