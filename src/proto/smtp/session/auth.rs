//! AUTH (RFC 4954): PLAIN and LOGIN, with the credentials checked by the driver.

use super::{Event, SaslStep, SmtpSession, State};
use crate::proto::sasl;
use crate::proto::smtp::reply::{Reply, canned};

impl SmtpSession {
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

    pub(super) fn auth(
        &mut self,
        mechanism: String,
        initial: Option<String>,
        events: &mut Vec<Event>,
    ) {
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
            ("LOGIN", Some(ir)) => match sasl::decode_text(&ir) {
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
    pub(super) fn sasl_line(&mut self, line: &[u8], events: &mut Vec<Event>) {
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
            SaslStep::LoginUser => match sasl::decode_text(text) {
                Some(user) => self.login_user(user, events),
                None => self.reject(Reply::new(501, "5.5.2", "Error: invalid base64"), events),
            },
            SaslStep::LoginPassword { user } => match sasl::decode_text(text) {
                Some(password) => {
                    self.state = State::Authenticating;
                    events.push(Event::Authenticate { user, password });
                }
                None => self.reject(Reply::new(501, "5.5.2", "Error: invalid base64"), events),
            },
        }
    }
}
