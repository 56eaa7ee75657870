//! Transcript tables for the SMTP engine. Each script runs whole, one byte at a time, and in
//! small pieces; every run must give the same replies and messages.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Default, PartialEq)]
struct Run {
    replies: Vec<Reply>,
    messages: Vec<(Envelope, Vec<u8>)>,
    aborted: usize,
    closed: bool,
    tls_started: usize,
    paused: Vec<std::time::Duration>,
    /// (stage, reason, address) of each refusal, whose reply must be the next one.
    refused: Vec<(Stage, Reason, Option<String>)>,
    foreign: Vec<Foreign>,
}

impl Run {
    fn codes(&self) -> Vec<u16> {
        self.replies.iter().map(|r| r.code).collect()
    }
    fn enhanced(&self) -> Vec<&str> {
        self.replies
            .iter()
            .map(|r| r.enhanced.unwrap_or("-"))
            .collect()
    }
}

fn drive(policy: &Policy, input: &[u8], step: usize) -> Run {
    drive_with(policy, input, step, false)
}

/// `secure`: the peer is on loopback. The fake driver accepts alice@example.test / "secret";
/// STARTTLS "succeeds" at once and shows as "<TLS>" in `tls`.
fn drive_with(policy: &Policy, input: &[u8], step: usize, secure: bool) -> Run {
    let chunks: Vec<&[u8]> = input.chunks(step.max(1)).collect();
    drive_reads(policy, &chunks, secure)
}

/// Each element is one read from the socket (what a STARTTLS handshake separates).
fn drive_reads(policy: &Policy, reads: &[&[u8]], secure: bool) -> Run {
    let mut s = SmtpSession::new(Arc::new(policy.clone())).with_secure_peer(secure);
    let mut run = Run::default();
    let mut current: Option<(Envelope, Vec<u8>)> = None;
    let mut queue: std::collections::VecDeque<Event> = Default::default();
    for chunk in reads.iter().copied() {
        queue.extend(s.feed(chunk));
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(r) => run.replies.push(r),
                Event::MessageStart(env) => current = Some((env, Vec::new())),
                Event::MessageData(d) => current.as_mut().expect("open message").1.extend(d),
                Event::MessageAbort => {
                    current = None;
                    run.aborted += 1;
                }
                Event::MessageEnd => {
                    run.messages.push(current.take().expect("open message"));
                    queue.extend(s.delivered(Delivery::Done { id: "ID".into() }));
                }
                Event::Close => run.closed = true,
                Event::StartTls => {
                    run.tls_started += 1;
                    s.tls_started();
                }
                Event::Pause(d) => run.paused.push(d),
                Event::Foreign(kind) => run.foreign.push(kind),
                Event::Refused(r) => {
                    assert_eq!(
                        queue.front(),
                        Some(&Event::Reply(r.reply.clone())),
                        "a refusal's reply follows it"
                    );
                    run.refused.push((r.stage, r.reason, r.address));
                }
                Event::Authenticate { user, password } => {
                    let ok =
                        user.eq_ignore_ascii_case("alice@example.test") && password == "secret";
                    queue.extend(s.auth_result(ok, &user));
                }
            }
        }
    }
    run
}

fn policy() -> Policy {
    Policy::example("mx.example.test", &["example.test", "localhost"])
}

/// Runs `script` whole, byte by byte and in 7-byte pieces; asserts all agree; returns the run.
fn transcript(policy: &Policy, script: &str) -> Run {
    let whole = drive(policy, script.as_bytes(), script.len());
    for step in [1, 7] {
        assert_eq!(drive(policy, script.as_bytes(), step), whole, "step {step}");
    }
    whole
}

/// Same, and also with bare LF line ends for the commands (no DATA in such scripts).
fn commands(script: &str) -> Run {
    let p = policy();
    let crlf = transcript(&p, script);
    let lf = transcript(&p, &script.replace("\r\n", "\n"));
    assert_eq!(
        crlf.codes(),
        lf.codes(),
        "LF line ends must behave like CRLF"
    );
    let spaced = transcript(&p, &script.replace("\r\n", " \r\n"));
    assert_eq!(crlf.codes(), spaced.codes(), "trailing space before CRLF");
    crlf
}

#[test]
fn greeting() {
    let s = SmtpSession::new(Arc::new(policy()));
    assert_eq!(
        s.greeting().to_string(),
        "220 mx.example.test ESMTP smtpd\r\n"
    );
}

#[test]
fn every_verb() {
    let table: &[(&str, &[u16])] = &[
        ("HELO client.test\r\n", &[250]),
        ("EHLO client.test\r\n", &[250]),
        ("NOOP\r\n", &[250]),
        ("RSET\r\n", &[250]),
        ("VRFY alice\r\n", &[252]),
        ("HELP\r\n", &[214]),
        ("QUIT\r\n", &[221]),
        ("EXPN list\r\n", &[502]),
        ("STARTTLS\r\n", &[502]),
        ("AUTH PLAIN\r\n", &[502]),
        ("BDAT 1 LAST\r\n", &[502]),
        ("XYZZY\r\n", &[502]),
        ("MAIL FROM:<a@b.test>\r\n", &[250]),
        (
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<bob@example.test>\r\n",
            &[250, 250],
        ),
        (
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n",
            &[250, 250, 354],
        ),
    ];
    for (script, codes) in table {
        assert_eq!(commands(script).codes(), *codes, "{script:?}");
    }
}

#[test]
fn ehlo_advertises_extensions() {
    let run = commands("EHLO client.test\r\n");
    let lines = &run.replies[0].lines;
    assert_eq!(lines[0], "mx.example.test");
    for kw in [
        "PIPELINING",
        "SIZE 10485760",
        "8BITMIME",
        "DSN",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(lines.iter().any(|l| l == kw), "{kw} missing from {lines:?}");
    }
    assert!(run.replies[0].enhanced.is_none());
}

#[test]
fn every_reply_after_greeting_and_ehlo_has_an_enhanced_code() {
    let run = commands(
        "NOOP\r\nRSET\r\nVRFY x\r\nHELP\r\nXX\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nMAIL FROM:<a@b.test>\r\nDATA\r\nQUIT\r\n",
    );
    assert!(
        run.replies.iter().all(|r| r.enhanced.is_some()),
        "{:?}",
        run.enhanced()
    );
}

#[test]
fn sequencing_errors_are_503() {
    let table: &[(&str, &[u16])] = &[
        ("RCPT TO:<bob@example.test>\r\n", &[503]),
        ("DATA\r\n", &[503]),
        ("MAIL FROM:<a@b.test>\r\nDATA\r\n", &[250, 503]),
        (
            "MAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n",
            &[250, 503],
        ),
        // Every recipient refused: 554 "no valid recipients" (as Postfix).
        (
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@other.test>\r\nDATA\r\n",
            &[250, 550, 554],
        ),
        // RSET and EHLO end the transaction.
        (
            "MAIL FROM:<a@b.test>\r\nRSET\r\nRCPT TO:<bob@example.test>\r\n",
            &[250, 250, 503],
        ),
        (
            "MAIL FROM:<a@b.test>\r\nEHLO c\r\nRCPT TO:<bob@example.test>\r\n",
            &[250, 250, 503],
        ),
        (
            "MAIL FROM:<a@b.test>\r\nHELO c\r\nMAIL FROM:<a@b.test>\r\n",
            &[250, 250, 250],
        ),
    ];
    for (script, codes) in table {
        assert_eq!(commands(script).codes(), *codes, "{script:?}");
    }
}

#[test]
fn syntax_errors() {
    let table: &[(&str, u16)] = &[
        ("HELO\r\n", 501),
        ("EHLO\r\n", 501),
        ("MAIL\r\n", 501),
        ("MAIL FROM\r\n", 501),
        ("MAIL FROM:<a@b.test\r\n", 501),
        ("MAIL FROM:<a@b.test> FOO=BAR\r\n", 555),
        ("MAIL FROM:<a@b.test> SIZE=x\r\n", 501),
        ("RCPT TO:\r\n", 501),
        ("DATA now\r\n", 501),
        ("QUIT now\r\n", 501),
        ("VRFY\r\n", 501),
    ];
    for (script, code) in table {
        assert_eq!(commands(script).codes(), [*code], "{script:?}");
    }
    let run = commands(
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<bob@example.test> XNOTIFY=NEVER\r\nRCPT TO:<bob@example.test> NOTIFY=SOMETIMES\r\nRCPT TO:<>\r\nRCPT TO:bad\r\n",
    );
    assert_eq!(run.codes(), [250, 555, 501, 501, 501]);
}

#[test]
fn original_telnet_session_without_helo() {
    let run = transcript(
        &policy(),
        "MAIL FROM:<prof@univ.test>\r\nRCPT TO:<etudiant@example.test>\r\nDATA\r\nSubject: test\r\n\r\nBonjour\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 354, 250, 221]);
    assert!(run.closed);
    let (env, body) = &run.messages[0];
    assert_eq!(env.from, "prof@univ.test");
    assert_eq!(env.protocol(), "SMTP");
    assert_eq!(env.recipients[0].local, "etudiant");
    assert_eq!(body, b"Subject: test\n\nBonjour\n");
}

#[test]
fn pipelined_transactions_answer_in_order() {
    let script = "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nRCPT TO:<y@nowhere.test>\r\nRCPT TO:<z@localhost>\r\nDATA\r\none\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\ntwo\r\n.\r\nNOOP\r\nQUIT\r\n";
    let run = transcript(&policy(), script);
    assert_eq!(
        run.codes(),
        [
            250, 250, 250, 550, 250, 354, 250, 250, 250, 354, 250, 250, 221
        ]
    );
    assert_eq!(run.messages.len(), 2);
    assert_eq!(run.messages[0].0.recipients.len(), 2);
    assert_eq!(run.messages[0].1, b"one\n");
    assert_eq!(run.messages[1].0.from, "");
    assert_eq!(run.messages[1].0.recipients[0].domain, "example.test");
    assert_eq!(run.messages[1].0.recipients[0].local, "postmaster");
    assert_eq!(run.messages[1].1, b"two\n");
}

#[test]
fn input_after_final_dot_waits_for_delivery() {
    let mut s = SmtpSession::new(Arc::new(policy()));
    let ev =
        s.feed(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nhi\r\n.\r\nNOOP\r\n");
    assert_eq!(ev.last(), Some(&Event::MessageEnd));
    assert!(
        s.feed(b"QUIT\r\n").is_empty(),
        "nothing runs while delivering"
    );
    let ev = s.delivered(Delivery::Failed(canned::disk_full()));
    let codes: Vec<u16> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Reply(r) => Some(r.code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [452, 250, 221]);
    assert_eq!(ev.last(), Some(&Event::Close));
}

#[test]
fn overlong_command_line_is_500_and_session_continues() {
    let long = format!("NOOP {}\r\n", "x".repeat(600));
    let run = commands(&format!("{long}NOOP\r\n"));
    assert_eq!(run.codes(), [500, 250]);
    assert_eq!(run.enhanced()[0], "5.5.6");
    // 510 octets + CRLF = 512 is the limit and passes.
    let max = format!("NOOP {}\r\n", "x".repeat(505));
    assert_eq!(max.len(), 512);
    assert_eq!(transcript(&policy(), &max).codes(), [250]);
    let over = format!("NOOP {}\r\n", "x".repeat(506));
    assert_eq!(transcript(&policy(), &over).codes(), [500]);
}

#[test]
fn recipients() {
    let run = commands(
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<Bob@Example.TEST>\r\nRCPT TO:<x@relay.test>\r\nRCPT TO:<postmaster@localhost>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<\"../etc\"@example.test>\r\nRCPT TO:<\"a/b\"@example.test>\r\nRCPT TO:<j\u{f6}rg@example.test>\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 550, 250, 250, 553, 553, 553]);
    assert_eq!(run.enhanced()[2], "5.7.1");
    assert_eq!(run.enhanced()[7], "5.6.7");
    let run = transcript(
        &policy(),
        "MAIL FROM:<a@b.test> SMTPUTF8\r\nRCPT TO:<J\u{f6}rg@example.test>\r\nRCPT TO:<Bob@Example.TEST>\r\nDATA\r\n.\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 250, 354, 250]);
    let env = &run.messages[0].0;
    assert_eq!(env.protocol(), "SMTP");
    assert_eq!(env.recipients[0].local, "j\u{f6}rg");
    assert_eq!(env.recipients[1].local, "bob");
    assert_eq!(env.recipients[1].domain, "example.test");
    assert_eq!(env.recipients[1].address, "Bob@Example.TEST");
}

#[test]
fn accept_accounts_only() {
    let mut p = policy();
    p.accept = Accept::Known(Arc::new(std::collections::BTreeSet::from([
        "alice@example.test".to_string(),
    ])));
    let run = transcript(
        &p,
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<ALICE@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<postmaster@example.test>\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 250, 550, 250]);
    assert_eq!(run.enhanced()[3], "5.1.1");
}

#[test]
fn too_many_recipients_is_452() {
    let mut p = policy();
    p.max_recipients = 2;
    let run = transcript(
        &p,
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 250, 452]);
}

#[test]
fn too_many_errors_closes_with_421() {
    let mut p = policy();
    p.max_errors = 3;
    let run = transcript(&p, "A\r\nB\r\nC\r\nNOOP\r\n");
    assert_eq!(run.codes(), [502, 502, 502, 421]);
    assert!(run.closed);
}

#[test]
fn timeout_in_data_aborts_the_message() {
    let mut s = SmtpSession::new(Arc::new(policy()));
    s.feed(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\npartial");
    assert!(s.in_data());
    let ev = s.timeout();
    assert_eq!(ev[0], Event::MessageAbort);
    assert!(matches!(&ev[1], Event::Reply(r) if r.code == 421 && r.enhanced == Some("4.4.2")));
    assert_eq!(ev[2], Event::Close);
    assert!(s.feed(b"QUIT\r\n").is_empty());
}

#[test]
fn empty_message_and_quit_ignores_the_rest() {
    let run = transcript(
        &policy(),
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n.\r\nQUIT\r\nNOOP\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 354, 250, 221]);
    assert_eq!(run.messages[0].1, b"");
}

#[test]
fn fault_addresses() {
    let mut p = policy();
    p.fault_addresses = true;
    let run = transcript(
        &p,
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<fail-452@example.test>\r\nRCPT TO:<fail-550@example.test>\r\nRCPT TO:<slow-5s@example.test>\r\nRCPT TO:<fail-99@example.test>\r\nRCPT TO:<fail-421@example.test>\r\nNOOP\r\n",
    );
    assert_eq!(run.codes(), [250, 452, 550, 250, 250, 421]);
    assert_eq!(run.enhanced()[1..3], ["4.0.0", "5.0.0"]);
    assert_eq!(run.paused, [std::time::Duration::from_secs(5)]);
    assert!(run.closed);
    // Off by default: ordinary mailboxes.
    let run = transcript(
        &policy(),
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<fail-452@example.test>\r\n",
    );
    assert_eq!(run.codes(), [250, 250]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never panic, in any split.
    #[test]
    fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2048), step in 1usize..64) {
        let _ = drive(&policy(), &input, step);
    }

    /// DATA ends only where CRLF . CRLF appears (counting the CRLF that ended the DATA command).
    #[test]
    fn data_ends_only_on_crlf_dot_crlf(
        body in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'x')], 0..64),
        step in 1usize..16,
    ) {
        let mut input = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n".to_vec();
        input.extend_from_slice(&body);
        let run = drive(&policy(), &input, step);
        let mut framed = b"\r\n".to_vec();
        framed.extend_from_slice(&body);
        let has_terminator = framed.windows(5).any(|w| w == b"\r\n.\r\n");
        prop_assert_eq!(run.messages.len() == 1, has_terminator);
    }
}

mod aliases;
mod data;
mod refusals;
mod tls_auth;

#[test]
fn a_proxy_header_or_http_request_closes_with_421() {
    for (script, kind) in [
        (
            "PROXY TCP4 192.0.2.1 127.0.0.1 4000 25\r\nEHLO x\r\n",
            Foreign::Proxy,
        ),
        (
            "EHLO x\r\nPROXY UNKNOWN\r\nMAIL FROM:<a@b.test>\r\n",
            Foreign::Proxy,
        ),
        ("\r\n\r\n\0\r\nQUIT\n", Foreign::Proxy),
        (
            "POST / HTTP/1.1\r\nHost: x\r\n\r\nMAIL FROM:<a@b.test>\r\n",
            Foreign::Http,
        ),
    ] {
        let run = commands(script);
        assert_eq!(run.foreign, vec![kind], "{script:?}");
        assert!(run.closed, "{script:?}");
        let last = run.replies.last().expect("a reply");
        assert_eq!(
            (last.code, last.enhanced),
            (421, Some("4.7.0")),
            "{script:?}"
        );
        if script.starts_with('P') {
            assert_eq!(
                run.replies.len(),
                1,
                "nothing after it is served: {script:?}"
            );
        }
    }
}
