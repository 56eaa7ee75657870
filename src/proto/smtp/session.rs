//! One SMTP session as a pure state machine: fed bytes, it returns [`Event`]s in order (replies,
//! the message stream, close). Delivery is slow work done by the driver, which reports back with
//! [`SmtpSession::delivered`]; until then the session holds any pipelined input.
//!
//! No I/O, no clock, no config file: everything comes from the [`Policy`] snapshot.

mod auth;
mod transaction;

use std::sync::Arc;

use super::command::{self, Command, MailParams};
use super::data::{DataReader, DataStatus};
pub use super::envelope::{Envelope, Recipient};
pub use super::policy::{Accept, Mailboxes, Policy, RelayTo};
use super::refusal::{Reason, Refusal, Stage};
use super::reply::{Reply, canned};
use crate::proto::foreign::{self, Foreign};
use crate::proto::line::{Line, LineBuffer};

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Send this reply.
    Reply(Reply),
    /// DATA was accepted: open the spool for this envelope.
    MessageStart(Envelope),
    /// Message content (un-stuffed, LF line ends): append it to the spool.
    MessageData(Vec<u8>),
    /// The message is refused: discard the spool. Its reply comes after the end of DATA.
    MessageAbort,
    /// The final dot arrived: make every copy durable, then call [`SmtpSession::delivered`].
    MessageEnd,
    /// Close the connection (after sending the replies before it).
    Close,
    /// Send the replies so far, then do the TLS handshake and call [`SmtpSession::tls_started`].
    /// Input that came after STARTTLS has been discarded (CVE-2011-0411).
    StartTls,
    /// Check these credentials, then call [`SmtpSession::auth_result`].
    Authenticate { user: String, password: String },
    /// Send the replies so far, then wait this long before the rest (fault injection).
    Pause(std::time::Duration),
    /// A MAIL, RCPT or DATA was refused (for the log and the counters); its reply follows.
    Refused(Refusal),
    /// A line of another protocol (a PROXY header from an untrusted peer, an HTTP request):
    /// log it with the peer; the 421 and [`Event::Close`] follow.
    Foreign(Foreign),
}

/// The driver's report on a [`Event::MessageEnd`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Every copy is durable; `id` names the message in logs and `Received:`.
    Done { id: String },
    /// Nothing was delivered; send this (4xx) reply.
    Failed(Reply),
}

#[derive(Debug)]
struct Transaction {
    from: String,
    params: MailParams,
    recipients: Vec<Recipient>,
    /// Some RCPT was tried (to tell "need RCPT" from "no valid recipients").
    rcpt_tried: bool,
}

#[derive(Debug)]
enum State {
    Command,
    Data {
        reader: DataReader,
        /// False once the message is refused (too big); the rest is read and dropped.
        accepting: bool,
    },
    /// `MessageEnd` was emitted; waiting for [`SmtpSession::delivered`].
    Delivering,
    /// STARTTLS accepted; waiting for [`SmtpSession::tls_started`]. Input is dropped.
    TlsHandshake,
    /// An AUTH exchange: the next line is a SASL response.
    Sasl(SaslStep),
    /// Waiting for [`SmtpSession::auth_result`].
    Authenticating,
    Closed,
}

#[derive(Debug)]
enum SaslStep {
    Plain,
    LoginUser,
    LoginPassword { user: String },
}

pub struct SmtpSession {
    policy: Arc<Policy>,
    state: State,
    /// The partial command line.
    line: LineBuffer,
    helo: Option<String>,
    esmtp: bool,
    tx: Option<Transaction>,
    errors: u32,
    /// Input that arrived after the final dot (or an AUTH line), kept while the driver works.
    pending: Vec<u8>,
    tls_active: bool,
    /// Loopback peer: treated as secure for plaintext AUTH (as Dovecot treats localhost).
    secure_peer: bool,
    /// The peer is in `[relay] networks` (plain SMTP listeners only): it may relay without AUTH.
    relay_peer: bool,
    authenticated: Option<String>,
}

impl SmtpSession {
    pub fn new(policy: Arc<Policy>) -> Self {
        SmtpSession {
            line: LineBuffer::new(policy.max_command_line),
            policy,
            state: State::Command,

            helo: None,
            esmtp: false,
            tx: None,
            errors: 0,
            pending: Vec::new(),
            tls_active: false,
            secure_peer: false,
            relay_peer: false,
            authenticated: None,
        }
    }

    /// The connection is TLS from the start (implicit TLS, RFC 8314).
    pub fn with_tls(mut self) -> Self {
        self.tls_active = true;
        self
    }

    /// The peer is on loopback.
    pub fn with_secure_peer(mut self, secure: bool) -> Self {
        self.secure_peer = secure;
        self
    }

    /// The peer is in `[relay] networks`.
    pub fn with_relay_peer(mut self, relay: bool) -> Self {
        self.relay_peer = relay;
        self
    }

    /// This session may send to remote domains: a relay peer, or a logged-in submission user.
    fn may_relay(&self) -> bool {
        self.relay_peer || (self.policy.submission && self.authenticated.is_some())
    }

    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    fn auth_allowed(&self) -> bool {
        self.tls_active || self.secure_peer || self.policy.allow_insecure_auth
    }

    /// The TLS handshake after STARTTLS succeeded: back to the initial state (RFC 3207 §4.2).
    pub fn tls_started(&mut self) {
        if matches!(self.state, State::TlsHandshake) {
            self.tls_active = true;
            self.helo = None;
            self.esmtp = false;
            self.tx = None;
            self.line.clear();
            self.pending.clear();
            self.state = State::Command;
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Reply {
        Reply::plain(220, vec![format!("{} ESMTP smtpd", self.policy.hostname)])
    }

    /// Inside DATA (the driver applies the data timeout instead of the command timeout).
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::Data { .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The client went quiet too long: 421 and close.
    pub fn timeout(&mut self) -> Vec<Event> {
        self.close_with(canned::timeout(&self.policy.hostname))
    }

    /// The server is stopping: 421 and close.
    pub fn shutdown(&mut self) -> Vec<Event> {
        self.close_with(canned::shutting_down(&self.policy.hostname))
    }

    fn close_with(&mut self, reply: Reply) -> Vec<Event> {
        let mut ev = Vec::new();
        if self.in_data() {
            ev.push(Event::MessageAbort);
        }
        self.state = State::Closed;
        ev.push(Event::Reply(reply));
        ev.push(Event::Close);
        ev
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        self.process(input, &mut events);
        events
    }

    /// Reports the outcome of the delivery asked for by [`Event::MessageEnd`], and goes on with
    /// any input that was pipelined after the final dot.
    pub fn delivered(&mut self, outcome: Delivery) -> Vec<Event> {
        let mut events = Vec::new();
        if !matches!(self.state, State::Delivering) {
            return events;
        }
        self.state = State::Command;
        self.tx = None;
        events.push(Event::Reply(match outcome {
            Delivery::Done { id } => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            Delivery::Failed(reply) => reply,
        }));
        let pending = std::mem::take(&mut self.pending);
        self.process(&pending, &mut events);
        events
    }

    fn process(&mut self, input: &[u8], events: &mut Vec<Event>) {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Closed | State::TlsHandshake => return,
                State::Delivering | State::Authenticating => {
                    self.pending.extend_from_slice(&input[i..]);
                    return;
                }
                State::Data { reader, accepting } => {
                    let mut out = Vec::new();
                    let status = reader.feed(&input[i..], &mut out);
                    if *accepting {
                        if reader.size > self.policy.max_message_bytes {
                            *accepting = false;
                            events.push(Event::MessageAbort);
                        } else if !out.is_empty() {
                            events.push(Event::MessageData(out));
                        }
                    }
                    match status {
                        DataStatus::More => return,
                        DataStatus::End { consumed } => {
                            i += consumed;
                            self.end_of_data(events);
                        }
                    }
                }
                State::Command | State::Sasl(_) => {
                    let (used, line) = self.line.take(&input[i..]);
                    i += used;
                    match line {
                        None => return,
                        Some(Line::TooLong) => {
                            if matches!(self.state, State::Sasl(_)) {
                                self.state = State::Command;
                            }
                            self.reject(canned::line_too_long(), events);
                        }
                        Some(Line::Complete(line)) => {
                            if matches!(self.state, State::Sasl(_)) {
                                self.sasl_line(&line, events);
                            } else {
                                self.command(&line, events);
                            }
                        }
                    }
                }
            }
        }
    }

    fn end_of_data(&mut self, events: &mut Vec<Event>) {
        let State::Data { reader, accepting } = std::mem::replace(&mut self.state, State::Command)
        else {
            return;
        };
        if !accepting {
            self.tx = None;
            let r = canned::message_too_big();
            self.note_refusal(Stage::Data, Reason::TooBig, None, &r, events);
            events.push(Event::Reply(r));
        } else if reader.long_line {
            self.tx = None;
            events.push(Event::MessageAbort);
            let r = Reply::new(
                500,
                "5.5.6",
                format!(
                    "Error: message has a line longer than {} octets",
                    self.policy.max_line_length
                ),
            );
            self.note_refusal(Stage::Data, Reason::LineTooLong, None, &r, events);
            events.push(Event::Reply(r));
        } else {
            self.state = State::Delivering;
            events.push(Event::MessageEnd);
        }
    }

    /// Sends an error reply and counts it; past `max_errors`, 421 and close.
    fn reject(&mut self, reply: Reply, events: &mut Vec<Event>) {
        events.push(Event::Reply(reply));
        self.errors += 1;
        if self.errors >= self.policy.max_errors {
            events.push(Event::Reply(canned::too_many_errors(&self.policy.hostname)));
            events.push(Event::Close);
            self.state = State::Closed;
        }
    }

    fn reply(&mut self, reply: Reply, events: &mut Vec<Event>) {
        events.push(Event::Reply(reply));
    }

    fn command(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if let Some(kind) = foreign::classify(line) {
            events.push(Event::Foreign(kind));
            events.push(Event::Reply(canned::foreign(&self.policy.hostname, kind)));
            events.push(Event::Close);
            self.state = State::Closed;
            return;
        }
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => {
                let reply = e.reply();
                return match transaction_stage(line) {
                    Some(stage) => self.refuse(stage, Reason::Syntax, None, reply, events),
                    None => self.reject(reply, events),
                };
            }
        };
        match cmd {
            Command::Helo(name) => {
                self.tx = None;
                self.helo = Some(name);
                self.esmtp = false;
                let r = Reply::plain(250, vec![self.policy.hostname.clone()]);
                self.reply(r, events);
            }
            Command::Ehlo(name) => {
                self.tx = None;
                self.helo = Some(name);
                self.esmtp = true;
                let r = self.ehlo_reply();
                self.reply(r, events);
            }
            Command::Mail { from, params } => self.mail(from, params, events),
            Command::Rcpt { to, params } => self.rcpt(to, params, events),
            Command::Data => self.data(events),
            Command::Rset => {
                self.tx = None;
                self.reply(canned::ok(), events);
            }
            Command::Noop => self.reply(canned::ok(), events),
            Command::Quit => {
                self.reply(canned::bye(), events);
                events.push(Event::Close);
                self.state = State::Closed;
            }
            Command::Vrfy => self.reply(canned::vrfy(), events),
            Command::Help => self.reply(
                Reply::new(
                    214,
                    "2.0.0",
                    "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
                ),
                events,
            ),
            Command::StartTls => self.starttls(events),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial, events),
            Command::NotImplemented(verb) => self.reject(canned::not_implemented(verb), events),
        }
    }

    fn starttls(&mut self, events: &mut Vec<Event>) {
        if !self.policy.tls_available {
            return self.reject(canned::not_implemented("STARTTLS"), events);
        }
        if self.tls_active {
            return self.reject(
                Reply::new(503, "5.5.1", "Error: TLS already active"),
                events,
            );
        }
        events.push(Event::Reply(Reply::new(220, "2.0.0", "Ready to start TLS")));
        events.push(Event::StartTls);
        // Whatever the client pipelined after STARTTLS is dropped (CVE-2011-0411).
        self.state = State::TlsHandshake;
        self.line.clear();
        self.pending.clear();
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines = vec![
            self.policy.hostname.clone(),
            "PIPELINING".into(),
            format!("SIZE {}", self.policy.max_message_bytes),
        ];
        if self.policy.tls_available && !self.tls_active {
            lines.push("STARTTLS".into());
        }
        if self.policy.auth_available && self.auth_allowed() && self.authenticated.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.extend([
            "8BITMIME".into(),
            "DSN".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ]);
        Reply::plain(250, lines)
    }
}

/// MAIL, RCPT or DATA, by the line's first word (for refusals of lines that do not parse).
fn transaction_stage(line: &[u8]) -> Option<Stage> {
    let verb = line.split(|&b| b == b' ').next().unwrap_or(line);
    let is = |v: &[u8]| verb.eq_ignore_ascii_case(v);
    if is(b"MAIL") {
        Some(Stage::Mail)
    } else if is(b"RCPT") {
        Some(Stage::Rcpt)
    } else if is(b"DATA") {
        Some(Stage::Data)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
