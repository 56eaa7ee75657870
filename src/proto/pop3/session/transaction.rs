//! The TRANSACTION state (RFC 1939 §5): STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT
//! (which moves the session to UPDATE).

use super::{Entry, Event, Pop3Session, State, err, ok};
use crate::proto::pop3::command::Command;

impl Pop3Session {
    pub(super) fn transaction(&mut self, cmd: Command, events: &mut Vec<Event>) {
        let State::Transaction {
            entries,
            deleted,
            retrieved,
        } = &mut self.state
        else {
            return;
        };
        // A 1-based message number that exists and is not deleted.
        let lookup = |n: usize, deleted: &[bool]| -> Result<usize, Event> {
            if n == 0 || n > deleted.len() {
                Err(err(&format!("There is no message {n}")))
            } else if deleted[n - 1] {
                Err(err(&format!("Message {n} is deleted")))
            } else {
                Ok(n - 1)
            }
        };
        match cmd {
            Command::Capa => self.capa(events),
            Command::Stat => {
                let (n, size) = live(entries, deleted);
                events.push(ok(&format!("{n} {size}")));
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(cmd, Command::Uidl(None));
                let (n, size) = live(entries, deleted);
                let mut out = if uidl {
                    String::from("+OK Unique-id listing follows\r\n")
                } else {
                    format!("+OK {n} messages ({size} octets)\r\n")
                };
                for (i, e) in entries.iter().enumerate() {
                    if !deleted[i] {
                        if uidl {
                            out.push_str(&format!("{} {}\r\n", i + 1, e.uid));
                        } else {
                            out.push_str(&format!("{} {}\r\n", i + 1, e.size));
                        }
                    }
                }
                out.push_str(".\r\n");
                events.push(Event::Reply(out.into_bytes()));
            }
            Command::List(Some(n)) => match lookup(n, deleted) {
                Ok(i) => events.push(ok(&format!("{n} {}", entries[i].size))),
                Err(e) => self.count_error(e, events),
            },
            Command::Uidl(Some(n)) => match lookup(n, deleted) {
                Ok(i) => events.push(ok(&format!("{n} {}", entries[i].uid))),
                Err(e) => self.count_error(e, events),
            },
            Command::Retr(n) => match lookup(n, deleted) {
                Ok(i) => {
                    retrieved[i] = true;
                    events.push(Event::Send {
                        index: i,
                        top: None,
                        size: entries[i].size,
                    });
                }
                Err(e) => self.count_error(e, events),
            },
            Command::Top(n, lines) => match lookup(n, deleted) {
                Ok(i) => events.push(Event::Send {
                    index: i,
                    top: Some(lines),
                    size: entries[i].size,
                }),
                Err(e) => self.count_error(e, events),
            },
            Command::Dele(n) => match lookup(n, deleted) {
                Ok(i) => {
                    deleted[i] = true;
                    events.push(ok(&format!("Message {n} deleted")));
                }
                Err(e) => self.count_error(e, events),
            },
            Command::Noop => events.push(ok("")),
            Command::Rset => {
                deleted.iter_mut().for_each(|d| *d = false);
                let (n, size) = live(entries, deleted);
                events.push(ok(&format!("{n} messages ({size} octets)")));
            }
            Command::Quit => {
                let delete: Vec<usize> = (0..deleted.len()).filter(|&i| deleted[i]).collect();
                let seen: Vec<usize> = (0..deleted.len())
                    .filter(|&i| retrieved[i] && !deleted[i])
                    .collect();
                self.state = State::Updating;
                events.push(Event::Update { delete, seen });
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Apop => {
                self.count_error(err("Already logged in"), events)
            }
            Command::Stls => self.count_error(err("STLS is only valid before login"), events),
        }
    }
}

/// Messages not marked deleted, and their total size.
fn live(entries: &[Entry], deleted: &[bool]) -> (usize, u64) {
    entries
        .iter()
        .zip(deleted)
        .filter(|(_, d)| !**d)
        .fold((0, 0), |(n, s), (e, _)| (n + 1, s + e.size))
}
