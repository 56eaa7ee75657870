//! Refusals reported to the driver (issue 14: the operator could not see them).

use super::*;

/// Every refusal of MAIL, RCPT or DATA is reported with its stage, reason and address (issue 14:
/// the operator could not see them); commands outside a transaction are not refusals.
#[test]
fn refusals_are_reported_with_their_reason() {
    use Reason::*;
    let mut p = policy();
    p.max_recipients = 2;
    p.max_message_bytes = 100;
    p.max_errors = 100;
    p.accept = Accept::Known(Arc::new(std::collections::BTreeSet::from([
        "alice@example.test".to_string(),
    ])));
    let run = transcript(
        &p,
        "RCPT TO:<a@example.test>\r\nDATA\r\nMAIL FROM:<a@b.test> SIZE=101\r\n\
         MAIL FROM:<a@b.test>\r\nMAIL FROM:<x@b.test>\r\nRCPT TO:<x@elsewhere.test>\r\n\
         RCPT TO:<bob@example.test>\r\nRCPT TO:<a/b@example.test>\r\nDATA\r\n\
         RCPT TO:<alice@example.test>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<alice@example.test>\r\n\
         NOOP\r\nFOO\r\nRCPT TO:<a b@example.test>\r\nMAIL FROM:<a@b.test> FOO=1\r\nDATA x\r\n",
    );
    let a = |s: &str| Some(s.to_string());
    assert_eq!(
        run.refused,
        [
            (Stage::Rcpt, Sequence, a("a@example.test")),
            (Stage::Data, Sequence, None),
            (Stage::Mail, TooBig, a("a@b.test")),
            (Stage::Mail, Sequence, a("x@b.test")),
            (Stage::Rcpt, Relay, a("x@elsewhere.test")),
            (Stage::Rcpt, UnknownUser, a("bob@example.test")),
            (Stage::Rcpt, BadAddress, a("a/b@example.test")),
            (Stage::Data, NoRecipients, None),
            (Stage::Rcpt, TooManyRecipients, a("alice@example.test")),
            (Stage::Rcpt, Syntax, None),
            (Stage::Mail, Syntax, None),
            (Stage::Data, Syntax, None),
        ]
    );
    let mut p = super::tls_auth::submission_policy();
    p.tls_available = false;
    let ok = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let run = drive_with(
        &p,
        format!(
            "EHLO c\r\nMAIL FROM:<alice@example.test>\r\nAUTH PLAIN {ok}\r\nMAIL FROM:<eve@example.test>\r\n"
        )
        .as_bytes(),
        usize::MAX,
        true,
    );
    assert_eq!(
        run.refused,
        [
            (Stage::Mail, AuthRequired, a("alice@example.test")),
            (Stage::Mail, SenderNotOwned, a("eve@example.test")),
        ]
    );
    let run = transcript(
        &policy(),
        &format!(
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{}\r\n.\r\n",
            "y".repeat(1000)
        ),
    );
    assert_eq!(run.refused, [(Stage::Data, LineTooLong, None)]);
}
