//! The commands of any state and of the not-authenticated state: CAPABILITY, LOGOUT, ID,
//! STARTTLS, LOGIN, AUTHENTICATE PLAIN (with SASL-IR), and ENABLE / NAMESPACE.
//!
//! IMAP4rev2 (RFC 9051), how far it goes. IMAP4rev2 is advertised next to IMAP4rev1, and a
//! session is rev1 until `ENABLE IMAP4rev2` (in the authenticated state; in the selected state
//! ENABLE enables nothing, as RFC 9051 6.3.1 allows ENABLE only before SELECT). The rev2 base that
//! is offered to every session: ESEARCH (`SEARCH RETURN`), SEARCHRES (`RETURN (SAVE)` and `$`,
//! [`super::searchres`]), LIST-EXTENDED and LIST-STATUS, SPECIAL-USE, BINARY (FETCH and literal8
//! APPEND), STATUS SIZE and DELETED, MOVE, UIDPLUS (UID EXPUNGE), UNSELECT, NAMESPACE, IDLE,
//! ENABLE, SASL-IR, LITERAL+ (which covers LITERAL-).
//! Once enabled, the session behaves as rev2 where rev1 and rev2 differ for a client:
//! - no `* n RECENT` (at SELECT/EXAMINE, with new mail) and no `\Recent` in FLAGS lists;
//! - SELECT/EXAMINE send the folder's `* LIST` line and no `OK [UNSEEN n]`;
//! - SEARCH and UID SEARCH without RETURN answer `* ESEARCH (TAG ..) [UID] ALL set`;
//! - `\NonExistent` marks names with no folder (in LIST (SUBSCRIBED), and for the missing
//!   parent of a folder a `%` pattern reaches, which rev1 marks `\Noselect`);
//! - folder names are UTF-8 on the wire ([`super::mutf7`] turns them into the modified UTF-7
//!   names of the Maildir++ folders, as Dovecot stores them, and back); rev1 sessions keep
//!   modified UTF-7 and get NO for 8-bit names.
//!
//! Kept from rev1, as a rev2 server may keep them: RECENT, NEW and OLD in SEARCH, LSUB, CHECK,
//! and the RFC822.* FETCH items. Not done: rev2's UTF-8 in other strings is only what imap-codec's
//! `ext_utf8` reads (quoted UTF-8), and SEARCH still compares raw bytes (no MIME decoding).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use imap_codec::AuthenticateDataCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};

use super::encode::{tagged, untagged};
use super::session::{Event, ImapSession, State, Wait};
use crate::proto::sasl;

impl ImapSession {
    /// The CAPABILITY list for the session as it stands.
    pub fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1".to_string(), "IMAP4rev2".to_string()];
        let secure = self.tls || self.policy.plaintext_allowed;
        if self.state == State::NotAuthenticated {
            if self.policy.tls_available && !self.tls {
                caps.push("STARTTLS".into());
            }
            if secure {
                caps.push("AUTH=PLAIN".into());
            } else {
                caps.push("LOGINDISABLED".into());
            }
        }
        for c in [
            "SASL-IR",
            "LITERAL+",
            "ID",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "SPECIAL-USE",
            "CHILDREN",
            "ESEARCH",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "BINARY",
            "STATUS=SIZE",
            "SEARCHRES",
            "CONDSTORE",
            "QRESYNC",
        ] {
            caps.push(c.into());
        }
        caps.push(format!("APPENDLIMIT={}", self.policy.max_literal));
        caps.join(" ")
    }

    fn secure(&self) -> bool {
        self.tls || self.policy.plaintext_allowed
    }
}

pub fn capability(s: &mut ImapSession, tag: &str) {
    let caps = s.capabilities();
    s.reply(untagged(&format!("CAPABILITY {caps}")));
    s.reply(tagged(tag, "OK", "CAPABILITY completed"));
}

pub fn logout(s: &mut ImapSession, tag: &str) {
    s.reply(untagged("BYE Logging out"));
    s.reply(tagged(tag, "OK", "LOGOUT completed"));
    s.close();
}

pub fn id(s: &mut ImapSession, tag: &str) {
    s.reply(untagged("ID (\"name\" \"smtpd\")"));
    s.reply(tagged(tag, "OK", "ID completed"));
}

/// ENABLE (RFC 5161): IMAP4rev2 (before SELECT), CONDSTORE and QRESYNC (RFC 7162) can be
/// enabled; others are left out of the ENABLED line, as RFC 5161 says of what the server does
/// not know.
pub fn enable(s: &mut ImapSession, tag: &str, names: &[String]) {
    let wants_rev2 = names.iter().any(|n| n.eq_ignore_ascii_case("IMAP4rev2"));
    let mut line = String::from("ENABLED");
    if wants_rev2 && s.state == State::Authenticated {
        s.rev2 = true;
        line.push_str(" IMAP4rev2");
    }
    // RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE; each is named once.
    let wants = |c: &str| names.iter().any(|n| n.eq_ignore_ascii_case(c));
    if wants("CONDSTORE") && !s.condstore {
        s.condstore = true;
        line.push_str(" CONDSTORE");
    }
    if wants("QRESYNC") && !s.qresync {
        s.qresync = true;
        if !s.condstore {
            s.condstore = true;
            line.push_str(" CONDSTORE");
        }
        line.push_str(" QRESYNC");
    }
    s.reply(untagged(&line));
    s.reply(tagged(tag, "OK", "ENABLE completed"));
}

pub fn namespace(s: &mut ImapSession, tag: &str) {
    s.reply(untagged("NAMESPACE ((\"\" \".\")) NIL NIL"));
    s.reply(tagged(tag, "OK", "NAMESPACE completed"));
}

pub fn starttls(s: &mut ImapSession, tag: &str) {
    if s.tls {
        return s.bad(tag, "TLS is already active");
    }
    if !s.policy.tls_available {
        return s.bad(
            tag,
            "STARTTLS is not available here (no certificate configured)",
        );
    }
    s.reply(tagged(tag, "OK", "Begin TLS negotiation now"));
    s.events.push(Event::StartTls);
    // Whatever the client pipelined after STARTTLS was sent in the clear: dropped.
    s.reset_framing();
}

pub fn login(s: &mut ImapSession, tag: &str, user: &[u8], password: &[u8]) {
    if !s.secure() {
        s.reply(tagged(
            tag,
            "NO",
            "[PRIVACYREQUIRED] Plaintext login is disabled here; use STARTTLS or the implicit-TLS port",
        ));
        return;
    }
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
    else {
        s.failed_logins += 1;
        s.reply(tagged(
            tag,
            "NO",
            "[AUTHENTICATIONFAILED] Authentication failed",
        ));
        return;
    };
    begin_login(s, tag, user.to_string(), password.to_string());
}

fn begin_login(s: &mut ImapSession, tag: &str, user: String, password: String) {
    s.wait = Wait::Login {
        tag: tag.to_string(),
        user: user.to_ascii_lowercase(),
    };
    s.events.push(Event::Login { user, password });
}

pub fn authenticate(
    s: &mut ImapSession,
    tag: &str,
    mechanism: &AuthMechanism<'_>,
    initial: Option<&[u8]>,
) {
    if *mechanism != AuthMechanism::Plain {
        s.reply(tagged(tag, "NO", "Unsupported mechanism; use PLAIN"));
        return;
    }
    if !s.secure() {
        s.reply(tagged(
            tag,
            "NO",
            "[PRIVACYREQUIRED] Plaintext authentication is disabled here; use STARTTLS",
        ));
        return;
    }
    match initial {
        Some(ir) => plain(s, tag, ir),
        None => {
            s.reply(b"+ \r\n".to_vec());
            s.wait = Wait::Sasl {
                tag: tag.to_string(),
            };
        }
    }
}

fn plain(s: &mut ImapSession, tag: &str, raw: &[u8]) {
    match sasl::decode_plain(&STANDARD.encode(raw)) {
        Ok(p) => begin_login(s, tag, p.user, p.password),
        Err(_) => s.bad(tag, "Malformed PLAIN response"),
    }
}

impl ImapSession {
    /// The line after `+ ` in AUTHENTICATE.
    pub(super) fn sasl_line(&mut self, tag: &str, line: &[u8]) {
        match AuthenticateDataCodec::default().decode(line) {
            Ok((_, AuthenticateData::Continue(data))) => {
                let raw = data.declassify().to_vec();
                plain(self, tag, &raw);
            }
            Ok((_, AuthenticateData::Cancel)) => self.bad(tag, "AUTHENTICATE cancelled"),
            Err(_) => self.bad(tag, "Malformed AUTHENTICATE response (base64 expected)"),
        }
    }
}
