//! A MAIL, RCPT or DATA the session refused, reported to the driver ([`super::Event::Refused`])
//! so the operator sees it in the log and the counters. The client gets the reply as usual.

use std::fmt;

use super::reply::Reply;

/// Which step of the transaction was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Mail,
    Rcpt,
    Data,
}

/// Why, in a word an operator (and a metrics label) can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The command does not parse (a bad path or parameter).
    Syntax,
    /// Out of order: MAIL inside a transaction, RCPT or DATA before MAIL, DATA before RCPT.
    Sequence,
    /// Submission without AUTH.
    AuthRequired,
    /// Submission: the sender is not the logged-in user's address.
    SenderNotOwned,
    /// A non-ASCII address without SMTPUTF8.
    NeedsSmtputf8,
    /// An address that cannot be used here (`<>` as recipient, a local part not allowed).
    BadAddress,
    /// Over the size limit (declared with SIZE, or sent).
    TooBig,
    TooManyRecipients,
    /// A recipient outside the local domains.
    Relay,
    /// `accept = "accounts"` and no such account.
    UnknownUser,
    /// `[testing] fault_addresses`.
    Fault,
    /// DATA after every recipient was refused.
    NoRecipients,
    /// A text line over `max_line_length`.
    LineTooLong,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
        }
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Syntax => "syntax",
            Reason::Sequence => "sequence",
            Reason::AuthRequired => "auth_required",
            Reason::SenderNotOwned => "sender_not_owned",
            Reason::NeedsSmtputf8 => "needs_smtputf8",
            Reason::BadAddress => "bad_address",
            Reason::TooBig => "too_big",
            Reason::TooManyRecipients => "too_many_recipients",
            Reason::Relay => "relay",
            Reason::UnknownUser => "unknown_user",
            Reason::Fault => "fault",
            Reason::NoRecipients => "no_recipients",
            Reason::LineTooLong => "line_too_long",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub stage: Stage,
    pub reason: Reason,
    /// The sender (MAIL) or recipient (RCPT) as the client gave it, if there was one.
    pub address: Option<String>,
    /// The reply the client got.
    pub reply: Reply,
}
