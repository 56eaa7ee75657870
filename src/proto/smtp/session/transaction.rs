//! One mail transaction: MAIL (sender rules of submission), RCPT (local domains, the mailbox
//! lookup, fault-injection addresses) and DATA.

use super::{Event, SmtpSession, State, Transaction};
use crate::proto::smtp::address::{Path, is_safe_local};
use crate::proto::smtp::command::{MailParams, RcptParams, printable};
use crate::proto::smtp::data::DataReader;
use crate::proto::smtp::policy::{Accept, RelayTo};
use crate::proto::smtp::refusal::{Reason, Refusal, Stage};
use crate::proto::smtp::reply::{Reply, canned};
use crate::proto::smtp::{Envelope, Recipient};

impl SmtpSession {
    pub(super) fn mail(&mut self, from: Path, params: MailParams, events: &mut Vec<Event>) {
        let sender = match &from {
            Path::Mailbox(m) => Some(m.to_address()),
            Path::Null => Some(String::new()),
            Path::Postmaster => Some("postmaster".into()),
        };
        let refuse = |s: &mut Self, reason, reply, events: &mut Vec<Event>| {
            s.refuse(Stage::Mail, reason, sender.clone(), reply, events)
        };
        if self.tx.is_some() {
            return refuse(self, Reason::Sequence, canned::nested_mail(), events);
        }
        if self.policy.submission && self.authenticated.is_none() {
            let r = Reply::new(530, "5.7.0", "Authentication required");
            return refuse(self, Reason::AuthRequired, r, events);
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
                return refuse(self, Reason::SenderNotOwned, r, events);
            }
        }
        let from = match from {
            Path::Null => String::new(),
            Path::Mailbox(m) => {
                if !m.is_ascii() && !params.smtputf8 {
                    let r = Reply::new(
                        553,
                        "5.6.7",
                        "Error: non-ASCII sender address needs the SMTPUTF8 parameter",
                    );
                    return refuse(self, Reason::NeedsSmtputf8, r, events);
                }
                m.to_address()
            }
            Path::Postmaster => {
                return refuse(self, Reason::BadAddress, canned::need_mail(), events);
            }
        };
        if params
            .size
            .is_some_and(|s| s > self.policy.max_message_bytes)
        {
            return refuse(self, Reason::TooBig, canned::message_too_big(), events);
        }
        self.tx = Some(Transaction {
            from,
            params,
            recipients: Vec::new(),
            rcpt_tried: false,
        });
        self.reply(Reply::new(250, "2.1.0", "Ok"), events);
    }

    pub(super) fn rcpt(&mut self, to: Path, params: RcptParams, events: &mut Vec<Event>) {
        let given = match &to {
            Path::Mailbox(m) => m.to_address(),
            Path::Null => String::new(),
            Path::Postmaster => "postmaster".into(),
        };
        let refuse = |s: &mut Self, reason, reply, events: &mut Vec<Event>| {
            s.refuse(Stage::Rcpt, reason, Some(given.clone()), reply, events)
        };
        let Some(tx) = self.tx.as_mut() else {
            return refuse(self, Reason::Sequence, canned::need_mail(), events);
        };
        tx.rcpt_tried = true;
        let smtputf8 = tx.params.smtputf8;
        if tx.recipients.len() >= self.policy.max_recipients {
            // A 452 the client is meant to follow (RFC 5321 4.5.3.1.10): not an error.
            let r = canned::too_many_recipients();
            self.note_refusal(
                Stage::Rcpt,
                Reason::TooManyRecipients,
                Some(given),
                &r,
                events,
            );
            return self.reply(r, events);
        }
        let recipient = match to {
            Path::Null => return refuse(self, Reason::BadAddress, canned::need_rcpt(), events),
            Path::Postmaster => {
                let domain = self.policy.domains.first().cloned().unwrap_or_default();
                if let Some(targets) = self.policy.alias(&format!("postmaster@{domain}"), false) {
                    let alias = format!("postmaster@{domain}");
                    return self.accept_alias(targets, &alias, &params, events);
                }
                Recipient::new("postmaster".into(), domain, "postmaster".into(), false)
            }
            Path::Mailbox(m) => {
                let address = m.to_address();
                let shown = printable(&address);
                if !m.is_ascii() && !smtputf8 {
                    let r = Reply::new(
                        553,
                        "5.6.7",
                        "Error: non-ASCII recipient address needs SMTPUTF8 in MAIL FROM",
                    );
                    return refuse(self, Reason::NeedsSmtputf8, r, events);
                }
                let domain = m.domain.to_ascii_lowercase();
                if !self.policy.domains.contains(&domain)
                    && self.may_relay()
                    && self.policy.relay_to == RelayTo::Anywhere
                {
                    if let Some(tx) = self.tx.as_mut() {
                        let local = m.local.to_ascii_lowercase();
                        tx.recipients
                            .push(Recipient::new(address, domain, local, true).with(&params));
                    }
                    return self.reply(Reply::new(250, "2.1.5", "Ok"), events);
                }
                if !self.policy.domains.contains(&domain) {
                    let why = if self.policy.submission {
                        "relaying is not offered: this server delivers only to its own domains"
                    } else {
                        "Relay access denied: this server accepts mail only for its own domains"
                    };
                    let r = Reply::new(550, "5.7.1", format!("<{shown}>: {why}"));
                    return refuse(self, Reason::Relay, r, events);
                }
                if !is_safe_local(&m.local) {
                    let r = Reply::new(
                        553,
                        "5.1.3",
                        format!("<{shown}>: Recipient address rejected: local part not allowed"),
                    );
                    return refuse(self, Reason::BadAddress, r, events);
                }
                let local = m.local.to_ascii_lowercase();
                if self.policy.fault_addresses
                    && let Some(fault) = fault_of(&local)
                {
                    match fault {
                        Fault::Reply(code) => {
                            let class = code / 100;
                            let r = Reply::new(
                                code,
                                if class == 4 { "4.0.0" } else { "5.0.0" },
                                format!("Fault injected for <{shown}>"),
                            );
                            self.note_refusal(
                                Stage::Rcpt,
                                Reason::Fault,
                                Some(address),
                                &r,
                                events,
                            );
                            events.push(Event::Reply(r));
                            if code == 421 {
                                events.push(Event::Close);
                                self.state = State::Closed;
                            }
                            return;
                        }
                        Fault::Delay(d) => events.push(Event::Pause(d)),
                    }
                }
                // alice+tag@ is alice's mailbox (the address keeps its tag).
                let local = self.policy.base_local(&local).to_string();
                let known = match &self.policy.accept {
                    Accept::Known(mailboxes) => mailboxes.exists(&format!("{local}@{domain}")),
                    Accept::Any => false,
                };
                let full = format!("{}@{domain}", m.local.to_ascii_lowercase());
                if let Some(targets) = self
                    .policy
                    .alias(&full, known)
                    .or_else(|| self.policy.alias(&format!("{local}@{domain}"), known))
                {
                    return self.accept_alias(targets, &address, &params, events);
                }
                if let Accept::Known(_) = &self.policy.accept
                    && local != "postmaster"
                    && !known
                {
                    let r = Reply::new(
                        550,
                        "5.1.1",
                        format!("<{shown}>: Recipient address rejected: user unknown"),
                    );
                    return refuse(self, Reason::UnknownUser, r, events);
                }
                Recipient::new(address, domain, local, false)
            }
        };
        if let Some(tx) = self.tx.as_mut() {
            tx.recipients.push(recipient.with(&params));
        }
        self.reply(Reply::new(250, "2.1.5", "Ok"), events);
    }

    /// RCPT of an alias: each of its addresses becomes a recipient (in a local domain: its
    /// Maildir; elsewhere: through the queue), with the RCPT's DSN parameters; a report names
    /// the alias as the original recipient unless the client gave one.
    fn accept_alias(
        &mut self,
        targets: Vec<String>,
        alias: &str,
        params: &RcptParams,
        events: &mut Vec<Event>,
    ) {
        let params = RcptParams {
            notify: params.notify,
            orcpt: params
                .orcpt
                .clone()
                .or_else(|| Some(format!("rfc822;{}", crate::dsn::xtext_encode(alias)))),
        };
        let recipients: Vec<Recipient> = targets
            .into_iter()
            .map(|t| {
                let (local, domain) = t.rsplit_once('@').unwrap_or((t.as_str(), ""));
                let remote = !self.policy.domains.iter().any(|d| d == domain);
                let local = if remote {
                    local.to_string()
                } else {
                    self.policy.base_local(local).to_string()
                };
                let mut r =
                    Recipient::new(t.clone(), domain.to_string(), local, remote).with(&params);
                r.alias = Some(alias.to_ascii_lowercase());
                r
            })
            .collect();
        if let Some(tx) = self.tx.as_mut() {
            for r in recipients {
                if !tx.recipients.iter().any(|x| x.address == r.address) {
                    tx.recipients.push(r);
                }
            }
        }
        self.reply(Reply::new(250, "2.1.5", "Ok"), events);
    }

    /// Reports a refusal to the driver, then sends its reply as an error.
    pub(super) fn refuse(
        &mut self,
        stage: Stage,
        reason: Reason,
        address: Option<String>,
        reply: Reply,
        events: &mut Vec<Event>,
    ) {
        self.note_refusal(stage, reason, address, &reply, events);
        self.reject(reply, events);
    }

    /// Reports a refusal to the driver (the reply is sent by the caller).
    pub(super) fn note_refusal(
        &self,
        stage: Stage,
        reason: Reason,
        address: Option<String>,
        reply: &Reply,
        events: &mut Vec<Event>,
    ) {
        events.push(Event::Refused(Refusal {
            stage,
            reason,
            address,
            reply: reply.clone(),
        }));
    }

    pub(super) fn data(&mut self, events: &mut Vec<Event>) {
        let Some(tx) = self.tx.as_ref() else {
            return self.refuse(
                Stage::Data,
                Reason::Sequence,
                None,
                canned::need_mail(),
                events,
            );
        };
        if tx.recipients.is_empty() {
            let (reason, r) = if tx.rcpt_tried {
                (Reason::NoRecipients, canned::no_valid_recipients())
            } else {
                (Reason::Sequence, canned::need_rcpt())
            };
            return self.refuse(Stage::Data, reason, None, r, events);
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
            ret: tx.params.ret,
            envid: tx.params.envid.clone(),
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
