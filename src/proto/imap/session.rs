//! `ImapSession`: one IMAP connection's protocol state, fed bytes, returning ordered events.
//! Framing (lines and literals) is `imap-codec`'s `Fragmentizer`, which keeps at most one
//! command in memory (`max_literal` + `max_line` octets) and skips what is over it; commands are
//! decoded by `imap-codec`. The states are RFC 3501's: not authenticated → authenticated →
//! selected → logout, plus three waits: for the driver's password check, for an AUTHENTICATE
//! line, and inside IDLE. Storage goes through [`Store`]; the engine does no I/O itself.

use std::sync::Arc;

use imap_codec::CommandCodec;
use imap_codec::decode::{CommandDecodeError, Decoder};
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer};
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::LiteralMode;

use super::encode::{tagged, untagged};
use super::searchres::{Rewrite, rewrite};
use super::store::Store;
use crate::proto::foreign::{self, Foreign};

/// What a session is allowed and told, fixed when it starts.
#[derive(Clone, Debug)]
pub struct ImapPolicy {
    pub hostname: String,
    /// LOGIN / AUTHENTICATE PLAIN without TLS (loopback peer, or `allow_insecure_auth`).
    pub plaintext_allowed: bool,
    pub tls_available: bool,
    /// BAD replies before `* BYE` and the end of the session.
    pub max_errors: u32,
    /// Largest literal accepted (APPEND's message): `[imap] max_literal`, APPENDLIMIT.
    pub max_literal: u32,
    /// Longest command line, literals excluded: `[imap] max_line`.
    pub max_line: u32,
}

/// What the driver is to do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Reply(Vec<u8>),
    /// Check these credentials, then call [`ImapSession::login`].
    Login {
        user: String,
        password: String,
    },
    /// Write what came before, do the TLS handshake, then call [`ImapSession::tls_started`].
    StartTls,
    /// IDLE began: wake the session with [`ImapSession::idle_poll`] when the folder may have
    /// changed, until it leaves IDLE.
    Idle,
    /// Write the wire form (CRLF line ends) of this message file as a literal (`~{n}` when
    /// `binary` and it holds a NUL, RFC 3516), streamed in chunks; `NIL` when it is gone.
    Literal {
        file: super::store::MessageFile,
        binary: bool,
    },
    Close,
    /// A line of another protocol (a PROXY header from an untrusted peer, an HTTP request):
    /// log it with the peer; the BYE and [`Event::Close`] follow.
    Foreign(Foreign),
}

/// The driver's answer to [`Event::Login`].
pub enum LoginOutcome {
    Ok(Box<dyn Store>),
    BadCredentials,
    TempFail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
    Logout,
}

#[derive(Debug)]
pub(super) enum Wait {
    None,
    Login { tag: String, user: String },
    Sasl { tag: String },
    Idle { tag: String },
}

pub struct ImapSession {
    pub(super) policy: Arc<ImapPolicy>,
    frag: Fragmentizer,
    pub(super) state: State,
    pub(super) wait: Wait,
    pub(super) tls: bool,
    errors: u32,
    /// The logged-in address.
    pub user: Option<String>,
    pub failed_logins: u32,
    pub(super) store: Option<Box<dyn Store>>,
    pub(super) selected_name: String,
    pub(super) read_only: bool,
    /// `ENABLE IMAP4rev2` was given (RFC 9051): see [`super::auth`] for what changes.
    pub(super) rev2: bool,
    /// CONDSTORE is on (RFC 7162 section 3.1: ENABLE, or a command that uses it): FETCH
    /// responses that carry FLAGS carry MODSEQ too.
    pub(super) condstore: bool,
    /// `ENABLE QRESYNC` was given: SELECT (QRESYNC ...), UID FETCH (VANISHED), and VANISHED
    /// instead of EXPUNGE.
    pub(super) qresync: bool,
    /// The UIDs `SEARCH RETURN (SAVE)` kept, ascending: what `$` names (RFC 5182).
    pub(super) saved: Vec<u32>,
    pub(super) events: Vec<Event>,
}

impl ImapSession {
    pub fn new(policy: Arc<ImapPolicy>) -> Self {
        let limit = policy.max_literal.saturating_add(policy.max_line);
        ImapSession {
            policy,
            frag: Fragmentizer::new(limit),
            state: State::NotAuthenticated,
            wait: Wait::None,
            tls: false,
            errors: 0,
            user: None,
            failed_logins: 0,
            store: None,
            selected_name: String::new(),
            read_only: false,
            rev2: false,
            condstore: false,
            qresync: false,
            saved: Vec::new(),
            events: Vec::new(),
        }
    }

    /// On an implicit-TLS listener: TLS from the start.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub fn greeting(&self) -> Vec<u8> {
        untagged(&format!(
            "OK [CAPABILITY {}] {} IMAP4rev1 smtpd ready",
            self.capabilities(),
            self.policy.hostname
        ))
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.wait, Wait::Idle { .. })
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Logout
    }

    /// Bytes from the client.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Event> {
        if self.state != State::Logout {
            self.frag.enqueue_bytes(input);
            self.run();
        }
        std::mem::take(&mut self.events)
    }

    /// The client said nothing for too long.
    pub fn timeout(&mut self) -> Vec<Event> {
        self.bye("Autologout; idle for too long")
    }

    /// The server is stopping.
    pub fn shutdown(&mut self) -> Vec<Event> {
        self.bye("Server shutting down")
    }

    fn bye(&mut self, text: &str) -> Vec<Event> {
        if self.state != State::Logout {
            self.reply(untagged(&format!("BYE {text}")));
            self.close();
        }
        std::mem::take(&mut self.events)
    }

    pub(super) fn reply(&mut self, bytes: Vec<u8>) {
        match self.events.last_mut() {
            Some(Event::Reply(b)) => b.extend_from_slice(&bytes),
            _ => self.events.push(Event::Reply(bytes)),
        }
    }

    pub(super) fn close(&mut self) {
        self.state = State::Logout;
        self.store = None;
        self.events.push(Event::Close);
    }

    /// A BAD reply, counted; past `max_errors` the session ends.
    pub(super) fn bad(&mut self, tag: &str, text: &str) {
        self.reply(tagged(tag, "BAD", text));
        self.errors += 1;
        if self.errors >= self.policy.max_errors {
            self.reply(untagged("BYE Too many invalid commands"));
            self.close();
        }
    }

    /// Drops whatever is buffered (after STARTTLS).
    pub(super) fn reset_framing(&mut self) {
        let limit = self.policy.max_literal.saturating_add(self.policy.max_line);
        self.frag = Fragmentizer::new(limit);
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self) {
        self.tls = true;
    }

    /// Processes complete commands while no wait stops it.
    pub(super) fn run(&mut self) {
        while self.state != State::Logout && !matches!(self.wait, Wait::Login { .. }) {
            let Some(info) = self.frag.progress() else {
                break;
            };
            if let FragmentInfo::Line {
                start,
                end,
                announcement,
                ..
            } = info
            {
                if end - start > self.policy.max_line as usize {
                    self.frag.poison_message();
                }
                if let Some(lit) = announcement.filter(|_| !self.frag.is_message_complete()) {
                    self.literal_announced(lit.length, lit.mode);
                    continue;
                }
            }
            if self.frag.is_message_complete() {
                self.message();
            }
        }
    }

    fn literal_announced(&mut self, length: u32, mode: LiteralMode) {
        let tag = self.frag.decode_tag().map(|t| t.inner().to_string());
        let too_big = length > self.policy.max_literal || self.frag.is_message_poisoned();
        match (mode, too_big) {
            (LiteralMode::Sync, false) => self.reply(b"+ Ready for literal data\r\n".to_vec()),
            // Refused before it is sent: the client does not send a literal it was not invited to.
            (LiteralMode::Sync, true) => {
                self.frag.skip_message();
                let text = format!(
                    "[TOOBIG] Literal over {} octets refused",
                    self.policy.max_literal
                );
                match tag {
                    Some(t) => self.reply(tagged(&t, "NO", &text)),
                    None => self.bad("*", "Literal without a tag"),
                }
            }
            // A non-synchronizing literal comes anyway: it is read and dropped past the limit
            // (the Fragmentizer keeps none of it), and the command fails when it ends.
            (LiteralMode::NonSync, _) => {}
        }
    }

    /// One whole command (or IDLE's DONE, or an AUTHENTICATE line).
    fn message(&mut self) {
        let bytes = self.frag.message_bytes().to_vec();
        let too_long = self.frag.is_max_message_size_exceeded();
        let poisoned = self.frag.is_message_poisoned();
        let tag = self.frag.decode_tag().map(|t| t.inner().to_string());
        match std::mem::replace(&mut self.wait, Wait::None) {
            Wait::Idle { tag } => return self.idle_line(&tag, &bytes),
            Wait::Sasl { tag } => return self.sasl_line(&tag, &bytes),
            w => self.wait = w,
        }
        if too_long || poisoned {
            let t = tag.as_deref().unwrap_or("*");
            if too_long && bytes.len() > self.policy.max_line as usize {
                let text = format!(
                    "[TOOBIG] Command over {} octets refused",
                    self.policy.max_literal
                );
                self.reply(tagged(t, "NO", &text));
            } else {
                self.bad(
                    t,
                    &format!("Command line over {} octets", self.policy.max_line),
                );
            }
            return;
        }
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let line = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if let Some(kind) = foreign::classify(line.strip_suffix(b"\r").unwrap_or(line)) {
            self.events.push(Event::Foreign(kind));
            self.reply(untagged(&format!("BYE {kind} is not IMAP")));
            return self.close();
        }
        let bytes = match self.expand_saved(&bytes) {
            Rewrite::Unchanged => bytes,
            Rewrite::Command(b) => b,
            Rewrite::NoMessages(verb) => {
                let t = tag.as_deref().unwrap_or("*");
                return self.reply(tagged(t, "OK", &format!("{verb} completed ($ is empty)")));
            }
        };
        match super::extended::parse(&bytes) {
            Some(Ok(ext)) => {
                return super::verbs::dispatch_extended(self, tag.as_deref().unwrap_or("*"), ext);
            }
            Some(Err(why)) => {
                // RFC 5182: a refused SEARCH ... RETURN (SAVE) leaves `$` empty.
                if super::searchres::mentions_save(&bytes) {
                    self.saved.clear();
                }
                return self.bad(tag.as_deref().unwrap_or("*"), why);
            }
            None => {}
        }
        match CommandCodec::default().decode(&bytes) {
            Ok(([], cmd)) => {
                let cmd: Command<'static> = imap_codec::imap_types::IntoStatic::into_static(cmd);
                self.command(cmd);
            }
            Ok(_)
            | Err(CommandDecodeError::Failed)
            | Err(CommandDecodeError::Incomplete)
            | Err(CommandDecodeError::LiteralFound { .. }) => {
                let t = tag.unwrap_or_else(|| "*".to_string());
                let text = match bytes.split(|&b| b == b' ').nth(1) {
                    Some(verb) if !super::verbs::is_known(verb) => "Unknown command",
                    _ => "Syntax error in command (see RFC 3501)",
                };
                self.bad(&t, text);
            }
        }
    }

    /// `$` replaced by the saved search result, in the selected state (SEARCHRES).
    fn expand_saved(&self, bytes: &[u8]) -> Rewrite {
        if self.state != State::Selected {
            return Rewrite::Unchanged;
        }
        let msgs = self
            .store
            .as_ref()
            .and_then(|st| st.selected())
            .map_or(&[][..], |f| f.msgs);
        let seq_of = |uid: u32| {
            msgs.binary_search_by_key(&uid, |m| m.uid)
                .ok()
                .map(|i| i as u32 + 1)
        };
        rewrite(bytes, &self.saved, &seq_of)
    }

    fn command(&mut self, cmd: Command<'static>) {
        let tag = cmd.tag.inner().to_string();
        super::verbs::dispatch(self, &tag, cmd.body);
    }

    fn idle_line(&mut self, tag: &str, line: &[u8]) {
        super::selected::wake_and_report(self);
        let text = String::from_utf8_lossy(line);
        if text.trim().eq_ignore_ascii_case("DONE") {
            self.reply(tagged(tag, "OK", "IDLE terminated"));
        } else {
            self.bad(tag, "Expected DONE to end IDLE");
        }
    }

    /// While in IDLE: the folder may have changed (a delivery, a timer); untagged updates.
    pub fn idle_poll(&mut self) -> Vec<Event> {
        if self.is_idle() {
            super::selected::report_changes(self, true);
            super::selected::sleep(self);
        }
        std::mem::take(&mut self.events)
    }

    /// The driver checked the credentials of [`Event::Login`].
    pub fn login(&mut self, outcome: LoginOutcome) -> Vec<Event> {
        let Wait::Login { tag, user } = std::mem::replace(&mut self.wait, Wait::None) else {
            return std::mem::take(&mut self.events);
        };
        match outcome {
            LoginOutcome::Ok(store) => {
                self.store = Some(store);
                self.user = Some(user);
                self.state = State::Authenticated;
                let text = format!("[CAPABILITY {}] Logged in", self.capabilities());
                self.reply(tagged(&tag, "OK", &text));
            }
            LoginOutcome::BadCredentials => {
                self.failed_logins += 1;
                self.reply(tagged(
                    &tag,
                    "NO",
                    "[AUTHENTICATIONFAILED] Authentication failed",
                ));
                if self.failed_logins >= self.policy.max_errors {
                    self.reply(untagged("BYE Too many failed logins"));
                    self.close();
                }
            }
            LoginOutcome::TempFail => {
                self.reply(tagged(
                    &tag,
                    "NO",
                    "[UNAVAILABLE] Mailbox unavailable; try again later",
                ));
            }
        }
        self.run();
        std::mem::take(&mut self.events)
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
