//! How `smtp-send` ends: its exit statuses, and the failure that carries one with the line to
//! print. The modes return these; the binary prints the line and exits with the code.

/// `smtp-send`'s exit statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Delivered to every recipient (or the menu or bench ended without a failure).
    Done,
    /// Refused: the message, a recipient, or (bench) some messages; the reply is shown.
    Rejected,
    /// A usage error: the flags, or a file or stdin they name.
    Usage,
    /// A connection or protocol error.
    Connection,
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Done => 0,
            Status::Rejected => 1,
            Status::Usage => 2,
            Status::Connection => 3,
        }
    }
}

/// A run that stopped with something to say (printed as `smtp-send: {message}`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub status: Status,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Self::new(Status::Usage, message)
    }

    pub fn connection(message: impl std::fmt::Display) -> Failure {
        Self::new(Status::Connection, message)
    }

    pub fn rejected(message: impl std::fmt::Display) -> Failure {
        Self::new(Status::Rejected, message)
    }

    fn new(status: Status, message: impl std::fmt::Display) -> Failure {
        Failure {
            status,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes the man page and the scripts that call smtp-send rely on.
    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes = [
            Status::Done,
            Status::Rejected,
            Status::Usage,
            Status::Connection,
        ]
        .map(Status::code);
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(Failure::usage("x").status.code(), 2);
        assert_eq!(Failure::connection("x").status.code(), 3);
        assert_eq!(Failure::rejected("x").status.code(), 1);
    }
}
