//! One POP3 session as a pure state machine: AUTHORIZATION → TRANSACTION → UPDATE (RFC 1939).
//! Fed bytes, it returns [`Event`]s in order. Slow work (checking a password and opening the
//! maildrop, sending a message, applying deletions) is done by the driver, which reports back with
//! [`Pop3Session::login`] and [`Pop3Session::updated`]; meanwhile pipelined input is held.

use std::sync::Arc;

use super::command::{self, Command, CommandError};
use crate::proto::foreign::{self, Foreign};
use crate::proto::line::{Line, LineBuffer};
use crate::proto::sasl;

mod transaction;

/// Settings a session needs, from the config at session start.
#[derive(Clone, Debug)]
pub struct Pop3Policy {
    pub hostname: String,
    /// USER/PASS and AUTH PLAIN are allowed on this connection (loopback, TLS, or configured).
    pub plaintext_allowed: bool,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    /// Bad commands and failed logins before the session is closed.
    pub max_errors: u32,
    /// STLS can be offered (a TLS certificate is configured).
    pub tls_available: bool,
}

/// One message of the maildrop as the session sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unique id for UIDL (1-70 printable ASCII characters, stable across sessions).
    pub uid: String,
    /// Octets RETR sends (CRLF line ends, before byte-stuffing).
    pub size: u64,
}

/// The driver's answer to [`Event::Login`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in; the maildrop is locked and listed.
    Ok(Vec<Entry>),
    /// Unknown user or wrong password (the client is told the same for both).
    BadCredentials,
    /// Another session holds the maildrop.
    InUse,
    /// Storage or lock trouble; try later.
    TempFail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Send these bytes (one or more complete reply lines).
    Reply(Vec<u8>),
    /// Check these credentials and open the maildrop, then call [`Pop3Session::login`].
    Login { user: String, password: String },
    /// Send message `index` (0-based): "+OK", its content (all, or the header and `top` body
    /// lines) with CRLF and byte-stuffing, then ".". `size` is the announced size.
    Send {
        index: usize,
        top: Option<u64>,
        size: u64,
    },
    /// UPDATE state: remove `delete`, mark `seen` as read (moving new/ → cur/), then call
    /// [`Pop3Session::updated`].
    Update {
        delete: Vec<usize>,
        seen: Vec<usize>,
    },
    /// Close the connection after what came before.
    Close,
    /// Send the replies so far, do the TLS handshake, then call [`Pop3Session::tls_started`].
    /// Input that came after STLS has been discarded (CVE-2011-0411).
    StartTls,
    /// A line of another protocol (a PROXY header from an untrusted peer, an HTTP request):
    /// log it with the peer; the -ERR and [`Event::Close`] follow.
    Foreign(Foreign),
}

#[derive(Debug)]
enum State {
    Authorization {
        user: Option<String>,
        /// `AUTH PLAIN` without an initial response: the next line is the response.
        awaiting_plain: bool,
    },
    /// Waiting for [`Pop3Session::login`].
    LoggingIn,
    Transaction {
        entries: Vec<Entry>,
        deleted: Vec<bool>,
        retrieved: Vec<bool>,
    },
    /// Waiting for [`Pop3Session::updated`].
    Updating,
    /// STLS accepted; waiting for [`Pop3Session::tls_started`]. Input is dropped.
    TlsHandshake,
    Closed,
}

pub struct Pop3Session {
    policy: Arc<Pop3Policy>,
    state: State,
    line: LineBuffer,
    errors: u32,
    /// Failed logins in this session (the driver delays its answers more each time).
    pub failed_logins: u32,
    pending: Vec<u8>,
    /// The user who logged in (for logs).
    pub user: Option<String>,
    tls_active: bool,
}

fn ok(text: &str) -> Event {
    if text.is_empty() {
        return Event::Reply(b"+OK\r\n".to_vec());
    }
    Event::Reply(format!("+OK {text}\r\n").into_bytes())
}

fn err(text: &str) -> Event {
    Event::Reply(format!("-ERR {text}\r\n").into_bytes())
}

impl Pop3Session {
    pub fn new(policy: Arc<Pop3Policy>) -> Self {
        Pop3Session {
            line: LineBuffer::new(policy.max_command_line),
            policy,
            state: State::Authorization {
                user: None,
                awaiting_plain: false,
            },

            errors: 0,
            failed_logins: 0,
            pending: Vec::new(),
            user: None,
            tls_active: false,
        }
    }

    /// The connection is TLS from the start (implicit TLS, RFC 8314).
    pub fn with_tls(mut self) -> Self {
        self.tls_active = true;
        self
    }

    fn plaintext_allowed(&self) -> bool {
        self.policy.plaintext_allowed || self.tls_active
    }

    /// The handshake after STLS succeeded: a fresh AUTHORIZATION state (RFC 2595 §4).
    pub fn tls_started(&mut self) {
        if matches!(self.state, State::TlsHandshake) {
            self.tls_active = true;
            self.line.clear();
            self.pending.clear();
            self.state = State::Authorization {
                user: None,
                awaiting_plain: false,
            };
        }
    }

    pub fn greeting(&self) -> Vec<u8> {
        format!("+OK {} POP3 server ready\r\n", self.policy.hostname).into_bytes()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The autologout timer fired: close without entering UPDATE (nothing is deleted).
    pub fn timeout(&mut self) -> Vec<Event> {
        self.state = State::Closed;
        vec![err("Autologout: idle for too long"), Event::Close]
    }

    /// The server is stopping: close without entering UPDATE.
    pub fn shutdown(&mut self) -> Vec<Event> {
        self.state = State::Closed;
        vec![err("[SYS/TEMP] Server shutting down"), Event::Close]
    }

    pub fn feed(&mut self, input: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        self.process(input, &mut events);
        events
    }

    /// The driver's answer to [`Event::Login`].
    pub fn login(&mut self, outcome: LoginOutcome, user: &str) -> Vec<Event> {
        let mut events = Vec::new();
        if !matches!(self.state, State::LoggingIn) {
            return events;
        }
        match outcome {
            LoginOutcome::Ok(entries) => {
                let total: u64 = entries.iter().map(|e| e.size).sum();
                events.push(ok(&format!(
                    "Logged in: {} messages ({} octets)",
                    entries.len(),
                    total
                )));
                self.user = Some(user.to_string());
                let n = entries.len();
                self.state = State::Transaction {
                    entries,
                    deleted: vec![false; n],
                    retrieved: vec![false; n],
                };
            }
            other => {
                self.failed_logins += 1;
                self.state = State::Authorization {
                    user: None,
                    awaiting_plain: false,
                };
                let reply = match other {
                    LoginOutcome::InUse => {
                        err("[IN-USE] Mailbox is locked by another POP3 session")
                    }
                    LoginOutcome::TempFail => {
                        err("[SYS/TEMP] Temporary server failure, try again later")
                    }
                    _ => err("[AUTH] Authentication failed"),
                };
                self.count_error(reply, &mut events);
            }
        }
        let pending = std::mem::take(&mut self.pending);
        self.process(&pending, &mut events);
        events
    }

    /// The driver's answer to [`Event::Update`]: `true` when every change was applied.
    pub fn updated(&mut self, done: bool) -> Vec<Event> {
        if !matches!(self.state, State::Updating) {
            return Vec::new();
        }
        self.state = State::Closed;
        let reply = if done {
            ok("Logging out")
        } else {
            err("[SYS/TEMP] Some deleted messages could not be removed")
        };
        vec![reply, Event::Close]
    }

    fn process(&mut self, input: &[u8], events: &mut Vec<Event>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Closed | State::TlsHandshake => return,
                State::LoggingIn | State::Updating => {
                    self.pending.extend_from_slice(&input[i..]);
                    return;
                }
                _ => {}
            }
            let (used, line) = self.line.take(&input[i..]);
            i += used;
            match line {
                None => return,
                Some(Line::TooLong) => self.count_error(err("Line too long"), events),
                Some(Line::Complete(line)) => self.line_in(&line, events),
            }
        }
    }

    fn count_error(&mut self, reply: Event, events: &mut Vec<Event>) {
        events.push(reply);
        self.errors += 1;
        if self.errors >= self.policy.max_errors {
            events.push(err("Too many errors, closing the connection"));
            events.push(Event::Close);
            self.state = State::Closed;
        }
    }

    fn line_in(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if let State::Authorization {
            awaiting_plain: true,
            ..
        } = self.state
        {
            self.state = State::Authorization {
                user: None,
                awaiting_plain: false,
            };
            let text = String::from_utf8_lossy(line);
            if text.trim() == "*" {
                return self.count_error(err("[AUTH] Authentication cancelled"), events);
            }
            return self.plain_response(&text, events);
        }
        if let Some(kind) = foreign::classify(line) {
            events.push(Event::Foreign(kind));
            events.push(err(&format!("{kind} is not POP3; closing")));
            events.push(Event::Close);
            self.state = State::Closed;
            return;
        }
        match command::parse(line) {
            Err(CommandError::Unknown) => self.count_error(err("Unknown command"), events),
            Err(CommandError::Syntax(usage)) => {
                self.count_error(err(&format!("Syntax: {usage}")), events)
            }
            Ok(cmd) => match self.state {
                State::Authorization { .. } => self.authorization(cmd, events),
                State::Transaction { .. } => self.transaction(cmd, events),
                _ => {}
            },
        }
    }

    fn capa(&self, events: &mut Vec<Event>) {
        let mut lines = vec!["+OK Capability list follows", "TOP", "UIDL", "RESP-CODES"];
        lines.extend(["AUTH-RESP-CODE", "PIPELINING"]);
        let in_auth = matches!(self.state, State::Authorization { .. });
        if in_auth && self.policy.tls_available && !self.tls_active {
            lines.push("STLS");
        }
        if in_auth && self.plaintext_allowed() {
            lines.extend(["USER", "SASL PLAIN"]);
        }
        lines.extend(["IMPLEMENTATION smtpd", "."]);
        let mut text = lines.join("\r\n");
        text.push_str("\r\n");
        events.push(Event::Reply(text.into_bytes()));
    }

    fn plaintext_refused(&mut self, events: &mut Vec<Event>) {
        self.count_error(
            err("[AUTH] Plaintext authentication disallowed on non-secure connections"),
            events,
        );
    }

    fn authorization(&mut self, cmd: Command, events: &mut Vec<Event>) {
        match cmd {
            Command::Capa => self.capa(events),
            Command::Quit => {
                events.push(ok("Bye"));
                events.push(Event::Close);
                self.state = State::Closed;
            }
            Command::User(name) => {
                if !self.plaintext_allowed() {
                    return self.plaintext_refused(events);
                }
                self.state = State::Authorization {
                    user: Some(name),
                    awaiting_plain: false,
                };
                events.push(ok("Send your password"));
            }
            Command::Pass(password) => {
                let State::Authorization { user, .. } = &mut self.state else {
                    return;
                };
                match user.take() {
                    None => self.count_error(err("No user name given: send USER first"), events),
                    Some(user) => {
                        self.state = State::LoggingIn;
                        events.push(Event::Login { user, password });
                    }
                }
            }
            Command::Auth {
                mechanism: None, ..
            } => {
                let mechs = if self.plaintext_allowed() {
                    "PLAIN\r\n"
                } else {
                    ""
                };
                events.push(Event::Reply(
                    format!("+OK Supported mechanisms follow\r\n{mechs}.\r\n").into_bytes(),
                ));
            }
            Command::Auth {
                mechanism: Some(m),
                initial,
            } => {
                if m != "PLAIN" {
                    return self.count_error(err("Unsupported authentication mechanism"), events);
                }
                if !self.plaintext_allowed() {
                    return self.plaintext_refused(events);
                }
                match initial {
                    Some(ir) => self.plain_response(&ir, events),
                    None => {
                        self.state = State::Authorization {
                            user: None,
                            awaiting_plain: true,
                        };
                        events.push(Event::Reply(b"+ \r\n".to_vec()));
                    }
                }
            }
            Command::Apop => self.count_error(err("APOP is not supported"), events),
            Command::Stls => {
                if !self.policy.tls_available || self.tls_active {
                    return self.count_error(err("STLS is not available"), events);
                }
                events.push(ok("Begin TLS negotiation"));
                events.push(Event::StartTls);
                // Whatever the client pipelined after STLS is dropped (CVE-2011-0411).
                self.state = State::TlsHandshake;
                self.line.clear();
                self.pending.clear();
            }
            _ => self.count_error(err("Not logged in"), events),
        }
    }

    fn plain_response(&mut self, b64: &str, events: &mut Vec<Event>) {
        match sasl::decode_plain(b64) {
            Ok(creds) => {
                self.state = State::LoggingIn;
                events.push(Event::Login {
                    user: creds.user,
                    password: creds.password,
                });
            }
            Err(e) => {
                self.failed_logins += 1;
                self.count_error(err(&format!("[AUTH] {e}")), events);
            }
        }
    }
}

#[cfg(test)]
mod tests;
