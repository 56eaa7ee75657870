//! The commands of any state and of the not-authenticated state: CAPABILITY, LOGOUT, ID,
//! STARTTLS, LOGIN, AUTHENTICATE PLAIN (with SASL-IR), and ENABLE / NAMESPACE.

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
        let mut caps = vec!["IMAP4rev1".to_string()];
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

pub fn enable(s: &mut ImapSession, tag: &str) {
    // Nothing we offer needs enabling yet (no CONDSTORE, no UTF8=ACCEPT, no IMAP4rev2).
    s.reply(untagged("ENABLED"));
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
