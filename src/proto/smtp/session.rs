//! One SMTP session as a pure state machine: fed bytes, it returns [`Event`]s in order (replies,
//! the message stream, close). Delivery is slow work done by the driver, which reports back with
//! [`SmtpSession::delivered`]; until then the session holds any pipelined input.
//!
//! No I/O, no clock, no config file: everything comes from the [`Policy`] snapshot.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::address::{Path, is_safe_local};
use super::command::{self, BodyType, Command, MailParams, printable};
use super::data::{DataReader, DataStatus};
use super::reply::{Reply, canned};
use crate::proto::line::{Line, LineBuffer};

/// Which local parts are accepted in the local domains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Any safe local part; its Maildir is made on first delivery.
    Any,
    /// Only these addresses (lower-cased `local@domain`), plus postmaster.
    Accounts(BTreeSet<String>),
}

/// The settings a session needs, taken from the config when the session starts.
#[derive(Clone, Debug)]
pub struct Policy {
    pub hostname: String,
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    pub max_errors: u32,
    /// Longest command line, CRLF included (RFC 5321: 512).
    pub max_command_line: usize,
    /// Longest text line in DATA, CRLF included (RFC 5321: 1000).
    pub max_line_length: usize,
    /// Local domains, lower-cased. The first one receives `<postmaster>` without a domain.
    pub domains: Vec<String>,
    pub accept: Accept,
    /// STARTTLS can be offered (a TLS certificate is configured).
    pub tls_available: bool,
    /// AUTH can be offered (there are accounts).
    pub auth_available: bool,
    /// AUTH without TLS from non-loopback peers.
    pub allow_insecure_auth: bool,
    /// A submission listener: AUTH before MAIL, sender must match the login (RFC 6409).
    pub submission: bool,
    /// Submission: MAIL FROM must be the authenticated address.
    pub sender_login_match: bool,
    /// `[testing] fault_addresses`: `fail-NNN@` and `slow-Ns@` local parts inject faults.
    pub fault_addresses: bool,
    /// A deliberately broken build for the selftest's own test: DATA keeps stuffing dots. Set
    /// only by debug builds from `SMTPD_TEST_BREAK=dot_unstuff`.
    pub test_keep_dot_stuffing: bool,
}

impl Policy {
    /// A policy with RFC minimum limits, for tests and examples.
    pub fn example(hostname: &str, domains: &[&str]) -> Self {
        Policy {
            hostname: hostname.to_string(),
            max_message_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            max_command_line: 512,
            max_line_length: 1000,
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            accept: Accept::Any,
            tls_available: false,
            auth_available: false,
            allow_insecure_auth: false,
            submission: false,
            sender_login_match: true,
            fault_addresses: false,
            test_keep_dot_stuffing: false,
        }
    }
}

/// One accepted recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address as the client gave it (canonical quoting), for `Received: ... for <...>`.
    pub address: String,
    /// Mailbox directory names: ASCII-lower-cased domain and local part.
    pub domain: String,
    pub local: String,
}

/// The transaction handed to the driver when DATA starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// HELO/EHLO argument, if any was given.
    pub helo: Option<String>,
    /// The client used EHLO.
    pub esmtp: bool,
    /// Reverse-path; empty for `<>`.
    pub from: String,
    pub recipients: Vec<Recipient>,
    pub smtputf8: bool,
    pub body: Option<BodyType>,
    pub declared_size: Option<u64>,
    /// The session is under TLS.
    pub tls: bool,
    /// The account the client authenticated as.
    pub authenticated: Option<String>,
    /// Received on a submission listener (Date and Message-ID are added when missing).
    pub submission: bool,
}

impl Envelope {
    /// The `with` keyword of the Received: header (RFC 3848, RFC 6531).
    pub fn protocol(&self) -> String {
        let base = match (self.esmtp, self.smtputf8) {
            (false, _) => return "SMTP".into(),
            (true, false) => "ESMTP",
            (true, true) => "UTF8SMTP",
        };
        let s = if self.tls { "S" } else { "" };
        let a = if self.authenticated.is_some() {
            "A"
        } else {
            ""
        };
        format!("{base}{s}{a}")
    }
}

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

    /// The driver's answer to [`Event::Authenticate`]; `user` is the account logged in.
    pub fn auth_result(&mut self, ok: bool, user: &str) -> Vec<Event> {
        let mut events = Vec::new();
        if !matches!(self.state, State::Authenticating) {
            return events;
        }
        self.state = State::Command;
        if ok {
            self.authenticated = Some(user.to_ascii_lowercase());
            events.push(Event::Reply(Reply::new(
                235,
                "2.7.0",
                "Authentication successful",
            )));
        } else {
            self.reject(
                Reply::new(535, "5.7.8", "Authentication credentials invalid"),
                &mut events,
            );
        }
        let pending = std::mem::take(&mut self.pending);
        self.process(&pending, &mut events);
        events
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
            events.push(Event::Reply(canned::message_too_big()));
        } else if reader.long_line {
            self.tx = None;
            events.push(Event::MessageAbort);
            events.push(Event::Reply(Reply::new(
                500,
                "5.5.6",
                format!(
                    "Error: message has a line longer than {} octets",
                    self.policy.max_line_length
                ),
            )));
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
        let cmd = match command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => return self.reject(e.reply(), events),
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
            Command::Rcpt { to } => self.rcpt(to, events),
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

    fn auth(&mut self, mechanism: String, initial: Option<String>, events: &mut Vec<Event>) {
        if !self.policy.auth_available {
            return self.reject(canned::not_implemented("AUTH"), events);
        }
        if self.authenticated.is_some() {
            return self.reject(
                Reply::new(503, "5.5.1", "Error: already authenticated"),
                events,
            );
        }
        if self.tx.is_some() {
            return self.reject(
                Reply::new(
                    503,
                    "5.5.1",
                    "Error: AUTH not allowed during a mail transaction",
                ),
                events,
            );
        }
        if !self.auth_allowed() {
            return self.reject(
                Reply::new(
                    538,
                    "5.7.11",
                    "Encryption required for requested authentication mechanism",
                ),
                events,
            );
        }
        match (mechanism.as_str(), initial) {
            ("PLAIN", Some(ir)) => self.plain_response(&ir, events),
            ("PLAIN", None) => {
                self.state = State::Sasl(SaslStep::Plain);
                events.push(Event::Reply(Reply::plain(334, vec![String::new()])));
            }
            ("LOGIN", Some(ir)) => match decode_b64(&ir) {
                Some(user) => self.login_user(user, events),
                None => self.reject(Reply::new(501, "5.5.2", "Error: invalid base64"), events),
            },
            ("LOGIN", None) => {
                self.state = State::Sasl(SaslStep::LoginUser);
                events.push(Event::Reply(Reply::plain(334, vec!["VXNlcm5hbWU6".into()])));
            }
            _ => self.reject(
                Reply::new(504, "5.5.4", "Error: unsupported authentication mechanism"),
                events,
            ),
        }
    }

    fn login_user(&mut self, user: String, events: &mut Vec<Event>) {
        self.state = State::Sasl(SaslStep::LoginPassword { user });
        events.push(Event::Reply(Reply::plain(334, vec!["UGFzc3dvcmQ6".into()])));
    }

    fn plain_response(&mut self, b64: &str, events: &mut Vec<Event>) {
        match crate::proto::sasl::decode_plain(b64) {
            Ok(p) => {
                self.state = State::Authenticating;
                events.push(Event::Authenticate {
                    user: p.user,
                    password: p.password,
                });
            }
            Err(crate::proto::sasl::SaslError::Base64) => {
                self.reject(Reply::new(501, "5.5.2", "Error: invalid base64"), events)
            }
            Err(_) => self.reject(
                Reply::new(535, "5.7.8", "Authentication credentials invalid"),
                events,
            ),
        }
    }

    /// A line inside an AUTH exchange.
    fn sasl_line(&mut self, line: &[u8], events: &mut Vec<Event>) {
        let State::Sasl(step) = std::mem::replace(&mut self.state, State::Command) else {
            return;
        };
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text == "*" {
            return self.reject(Reply::new(501, "5.0.0", "Authentication cancelled"), events);
        }
        match step {
            SaslStep::Plain => self.plain_response(text, events),
            SaslStep::LoginUser => match decode_b64(text) {
                Some(user) => self.login_user(user, events),
                None => self.reject(Reply::new(501, "5.5.2", "Error: invalid base64"), events),
            },
            SaslStep::LoginPassword { user } => match decode_b64(text) {
                Some(password) => {
                    self.state = State::Authenticating;
                    events.push(Event::Authenticate { user, password });
                }
                None => self.reject(Reply::new(501, "5.5.2", "Error: invalid base64"), events),
            },
        }
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
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ]);
        Reply::plain(250, lines)
    }

    fn mail(&mut self, from: Path, params: MailParams, events: &mut Vec<Event>) {
        if self.tx.is_some() {
            return self.reject(canned::nested_mail(), events);
        }
        if self.policy.submission && self.authenticated.is_none() {
            return self.reject(Reply::new(530, "5.7.0", "Authentication required"), events);
        }
        if let (Some(user), Path::Mailbox(m)) = (&self.authenticated, &from)
            && self.policy.sender_login_match
            && self.policy.submission
        {
            let sender = format!("{}@{}", m.local, m.domain).to_ascii_lowercase();
            if &sender != user {
                let r = Reply::new(
                    553,
                    "5.7.1",
                    format!(
                        "<{}>: Sender address rejected: not owned by user {}",
                        printable(&m.to_address()),
                        printable(user)
                    ),
                );
                return self.reject(r, events);
            }
        }
        let from = match from {
            Path::Null => String::new(),
            Path::Mailbox(m) => {
                if !m.is_ascii() && !params.smtputf8 {
                    return self.reject(
                        Reply::new(
                            553,
                            "5.6.7",
                            "Error: non-ASCII sender address needs the SMTPUTF8 parameter",
                        ),
                        events,
                    );
                }
                m.to_address()
            }
            Path::Postmaster => return self.reject(canned::need_mail(), events),
        };
        if params
            .size
            .is_some_and(|s| s > self.policy.max_message_bytes)
        {
            return self.reject(canned::message_too_big(), events);
        }
        self.tx = Some(Transaction {
            from,
            params,
            recipients: Vec::new(),
            rcpt_tried: false,
        });
        self.reply(Reply::new(250, "2.1.0", "Ok"), events);
    }

    fn rcpt(&mut self, to: Path, events: &mut Vec<Event>) {
        let Some(tx) = self.tx.as_mut() else {
            return self.reject(canned::need_mail(), events);
        };
        tx.rcpt_tried = true;
        let smtputf8 = tx.params.smtputf8;
        if tx.recipients.len() >= self.policy.max_recipients {
            return self.reply(canned::too_many_recipients(), events);
        }
        let recipient = match to {
            Path::Null => return self.reject(canned::need_rcpt(), events),
            Path::Postmaster => {
                let domain = self.policy.domains.first().cloned().unwrap_or_default();
                Recipient {
                    address: "postmaster".into(),
                    domain,
                    local: "postmaster".into(),
                }
            }
            Path::Mailbox(m) => {
                let address = m.to_address();
                if !m.is_ascii() && !smtputf8 {
                    return self.reject(
                        Reply::new(
                            553,
                            "5.6.7",
                            "Error: non-ASCII recipient address needs SMTPUTF8 in MAIL FROM",
                        ),
                        events,
                    );
                }
                let domain = m.domain.to_ascii_lowercase();
                if !self.policy.domains.contains(&domain) {
                    let why = if self.policy.submission {
                        "relaying is not offered: this server delivers only to its own domains"
                    } else {
                        "Relay access denied: this server accepts mail only for its own domains"
                    };
                    return self.reject(
                        Reply::new(550, "5.7.1", format!("<{}>: {why}", printable(&address))),
                        events,
                    );
                }
                if !is_safe_local(&m.local) {
                    return self.reject(
                        Reply::new(
                            553,
                            "5.1.3",
                            format!(
                                "<{}>: Recipient address rejected: local part not allowed",
                                printable(&address)
                            ),
                        ),
                        events,
                    );
                }
                let local = m.local.to_ascii_lowercase();
                if self.policy.fault_addresses
                    && let Some(fault) = fault_of(&local)
                {
                    match fault {
                        Fault::Reply(code) => {
                            let class = code / 100;
                            events.push(Event::Reply(Reply::new(
                                code,
                                if class == 4 { "4.0.0" } else { "5.0.0" },
                                format!("Fault injected for <{}>", printable(&address)),
                            )));
                            if code == 421 {
                                events.push(Event::Close);
                                self.state = State::Closed;
                            }
                            return;
                        }
                        Fault::Delay(d) => events.push(Event::Pause(d)),
                    }
                }
                if let Accept::Accounts(accounts) = &self.policy.accept
                    && local != "postmaster"
                    && !accounts.contains(&format!("{local}@{domain}"))
                    && !crate::auth::accounts::is_probe_address(&format!("{local}@{domain}"))
                {
                    return self.reject(
                        Reply::new(
                            550,
                            "5.1.1",
                            format!(
                                "<{}>: Recipient address rejected: user unknown",
                                printable(&address)
                            ),
                        ),
                        events,
                    );
                }
                Recipient {
                    address,
                    domain,
                    local,
                }
            }
        };
        if let Some(tx) = self.tx.as_mut() {
            tx.recipients.push(recipient);
        }
        self.reply(Reply::new(250, "2.1.5", "Ok"), events);
    }

    fn data(&mut self, events: &mut Vec<Event>) {
        let Some(tx) = self.tx.as_ref() else {
            return self.reject(canned::need_mail(), events);
        };
        if tx.recipients.is_empty() {
            let r = if tx.rcpt_tried {
                canned::no_valid_recipients()
            } else {
                canned::need_rcpt()
            };
            return self.reject(r, events);
        }
        let envelope = Envelope {
            helo: self.helo.clone(),
            esmtp: self.esmtp,
            from: tx.from.clone(),
            recipients: tx.recipients.clone(),
            smtputf8: tx.params.smtputf8,
            body: tx.params.body,
            declared_size: tx.params.size,
            tls: self.tls_active,
            authenticated: self.authenticated.clone(),
            submission: self.policy.submission,
        };
        events.push(Event::Reply(canned::start_data()));
        events.push(Event::MessageStart(envelope));
        self.state = State::Data {
            reader: DataReader::new(self.policy.max_line_length)
                .keep_dot_stuffing(self.policy.test_keep_dot_stuffing),
            accepting: true,
        };
    }
}

/// A fault-injection local part.
enum Fault {
    Reply(u16),
    Delay(std::time::Duration),
}

/// `fail-452` → reply 452; `slow-5s` → wait 5 s (at most 600).
fn fault_of(local: &str) -> Option<Fault> {
    if let Some(code) = local.strip_prefix("fail-") {
        let code: u16 = code.parse().ok()?;
        return (400..600).contains(&code).then_some(Fault::Reply(code));
    }
    let secs: u64 = local
        .strip_prefix("slow-")?
        .strip_suffix('s')?
        .parse()
        .ok()?;
    (1..=600)
        .contains(&secs)
        .then(|| Fault::Delay(std::time::Duration::from_secs(secs)))
}

fn decode_b64(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests;
