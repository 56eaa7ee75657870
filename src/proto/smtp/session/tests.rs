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
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<bob@example.test> NOTIFY=NEVER\r\nRCPT TO:<>\r\nRCPT TO:bad\r\n",
    );
    assert_eq!(run.codes(), [250, 555, 501, 501]);
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
fn smuggling_variants_stay_inside_the_body() {
    for variant in [
        "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r.\r", "\r.\n", "\n.\r", "\r\n.\n",
    ] {
        let script = format!(
            "EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nbody{variant}MAIL FROM:<evil@b.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n"
        );
        let run = transcript(&policy(), &script);
        assert_eq!(run.codes(), [250, 250, 250, 354, 250, 221], "{variant:?}");
        assert_eq!(run.messages.len(), 1);
        let body = String::from_utf8_lossy(&run.messages[0].1);
        assert!(
            body.contains("MAIL FROM:<evil@b.test>"),
            "{variant:?}: {body:?}"
        );
        assert!(body.contains("smuggled"));
    }
}

/// A bare CR ends a line as a bare LF does (issue 14): both are stored as LF, so a stored copy
/// holds no CR, and neither ever ends DATA.
#[test]
fn bare_cr_and_bare_lf_are_stored_as_line_ends() {
    let table: &[(&str, &[u8])] = &[
        ("alpha\rbeta\r\n", b"alpha\nbeta\n"),
        ("alpha\nbeta\r\n", b"alpha\nbeta\n"),
        ("a\r\r\nb\r\n", b"a\n\nb\n"),
        ("a\r..b\r\n", b"a\n.b\n"),
        ("a\r.\rQUIT\r\n", b"a\n.\nQUIT\n"),
        ("a\n.\nQUIT\r\n", b"a\n.\nQUIT\n"),
    ];
    for (data, stored) in table {
        let script = format!(
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{data}.\r\nNOOP\r\n"
        );
        let run = transcript(&policy(), &script);
        assert_eq!(run.codes(), [250, 250, 354, 250, 250], "{data:?}");
        assert_eq!(
            String::from_utf8_lossy(&run.messages[0].1),
            String::from_utf8_lossy(stored),
            "{data:?}"
        );
    }
}

#[test]
fn dot_lines_and_eight_bit_survive() {
    let run = transcript(
        &policy(),
        "MAIL FROM:<a@b.test> BODY=8BITMIME\r\nRCPT TO:<x@example.test>\r\nDATA\r\n..leading dot\r\n.\u{e9}t\u{e9}\r\n...\r\n.\r\n",
    );
    assert_eq!(run.codes(), [250, 250, 354, 250]);
    assert_eq!(
        run.messages[0].1,
        ".leading dot\n\u{e9}t\u{e9}\n..\n".as_bytes()
    );
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
fn overlong_text_line_refuses_the_message_and_session_continues() {
    let script = format!(
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{}\r\n.\r\nNOOP\r\n",
        "y".repeat(1200)
    );
    let run = transcript(&policy(), &script);
    assert_eq!(run.codes(), [250, 250, 354, 500, 250]);
    assert_eq!(run.enhanced()[3], "5.5.6");
    assert!(run.messages.is_empty());
    assert_eq!(run.aborted, 1);
}

#[test]
fn size_limits_declared_and_actual() {
    let mut p = policy();
    p.max_message_bytes = 100;
    let run = transcript(
        &p,
        "MAIL FROM:<a@b.test> SIZE=101\r\nMAIL FROM:<a@b.test> SIZE=100\r\n",
    );
    assert_eq!(run.codes(), [552, 250]);
    assert_eq!(run.enhanced()[0], "5.3.4");
    let script = format!(
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n{}\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nsmall\r\n.\r\n",
        "z\r\n".repeat(60)
    );
    let run = transcript(&p, &script);
    assert_eq!(run.codes(), [250, 250, 354, 552, 250, 250, 354, 250]);
    assert_eq!(run.messages.len(), 1);
    assert_eq!(run.messages[0].1, b"small\n");
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

fn tls_policy() -> Policy {
    let mut p = policy();
    p.tls_available = true;
    p.auth_available = true;
    p
}

fn submission_policy() -> Policy {
    let mut p = tls_policy();
    p.submission = true;
    p
}

#[test]
fn starttls_advertised_then_reset_and_not_again() {
    let p = tls_policy();
    let run = drive_reads(
        &p,
        &[
            b"EHLO c\r\nSTARTTLS\r\n",
            b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b.test>\r\n",
        ],
        false,
    );
    assert_eq!(run.codes(), [250, 220, 250, 503, 250]);
    assert_eq!(run.tls_started, 1);
    assert!(run.replies[0].lines.iter().any(|l| l == "STARTTLS"));
    assert!(
        !run.replies[2].lines.iter().any(|l| l == "STARTTLS"),
        "not offered again"
    );
    // AUTH shows only under TLS for a remote peer.
    assert!(!run.replies[0].lines.iter().any(|l| l.starts_with("AUTH")));
    assert!(run.replies[2].lines.iter().any(|l| l == "AUTH PLAIN LOGIN"));
    let run = drive(&p, b"STARTTLS now\r\n", 100);
    assert_eq!(run.codes(), [501]);
    let run = drive(&policy(), b"STARTTLS\r\n", 100);
    assert_eq!(run.codes(), [502]);
}

/// CVE-2011-0411: commands pipelined after STARTTLS in the same write are never answered.
#[test]
fn starttls_injection_is_dropped() {
    let p = tls_policy();
    let injected: &[u8] =
        b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@b.test>\r\nRCPT TO:<x@example.test>\r\n";
    let run = drive(&p, injected, injected.len());
    assert_eq!(run.codes(), [250, 220]);
    // Also when the injected bytes arrive in the same read as the end of the STARTTLS line.
    let run = drive_reads(
        &p,
        &[b"EHLO c\r\nSTART", b"TLS\r\nMAIL FROM:<evil@b.test>\r\n"],
        false,
    );
    assert_eq!(run.codes(), [250, 220]);
}

#[test]
fn auth_plain_and_login() {
    let p = tls_policy();
    let plain = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let bad = crate::proto::sasl::encode_plain("alice@example.test", "wrong");
    let script = format!(
        "EHLO c\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN\r\n{plain}\r\nAUTH PLAIN {plain}\r\nMAIL FROM:<a@b.test>\r\n"
    );
    let run = drive_with(&p, script.as_bytes(), 7, true);
    assert_eq!(run.codes(), [250, 535, 334, 235, 503, 250]);
    assert_eq!(run.enhanced()[1], "5.7.8");
    assert_eq!(run.replies[2].to_string(), "334 \r\n");
    // LOGIN with exactly Thunderbird's prompts; "*" cancels.
    let user = "YWxpY2VAZXhhbXBsZS50ZXN0"; // alice@example.test
    let pass = "c2VjcmV0"; // secret
    let script = format!("AUTH LOGIN\r\n*\r\nAUTH LOGIN\r\n{user}\r\n{pass}\r\n");
    let run = drive_with(&p, script.as_bytes(), 5, true);
    assert_eq!(run.codes(), [334, 501, 334, 334, 235]);
    assert_eq!(run.replies[0].to_string(), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(run.replies[3].to_string(), "334 UGFzc3dvcmQ6\r\n");
    let run = drive_with(
        &p,
        format!("AUTH LOGIN {user}\r\n{pass}\r\n").as_bytes(),
        100,
        true,
    );
    assert_eq!(run.codes(), [334, 235]);
    // Not in a transaction, unknown mechanism, bad base64.
    let run = drive_with(
        &p,
        b"MAIL FROM:<a@b.test>\r\nAUTH PLAIN x\r\nRSET\r\nAUTH CRAM-MD5\r\nAUTH PLAIN !!\r\n",
        100,
        true,
    );
    assert_eq!(run.codes(), [250, 503, 250, 504, 501]);
}

#[test]
fn auth_needs_tls_from_remote_peers() {
    let p = tls_policy();
    let run = drive(
        &p,
        b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n",
        100,
    );
    assert_eq!(run.codes(), [538]);
    assert_eq!(run.enhanced()[0], "5.7.11");
    let run = drive_reads(
        &p,
        &[
            b"STARTTLS\r\n",
            b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n",
        ],
        false,
    );
    assert_eq!(run.codes(), [220, 235]);
    let mut insecure = tls_policy();
    insecure.allow_insecure_auth = true;
    let run = drive(
        &insecure,
        b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\n",
        100,
    );
    assert_eq!(run.codes(), [235]);
}

#[test]
fn submission_requires_auth_and_matching_sender() {
    let p = submission_policy();
    let ok = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let script = format!(
        "EHLO c\r\nMAIL FROM:<alice@example.test>\r\nAUTH PLAIN {ok}\r\nMAIL FROM:<bob@example.test>\r\nMAIL FROM:<Alice@Example.TEST>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: s\r\n\r\nx\r\n.\r\n"
    );
    let run = drive_with(&p, script.as_bytes(), 1000, true);
    assert_eq!(run.codes(), [250, 530, 235, 553, 250, 550, 250, 354, 250]);
    assert_eq!(run.enhanced()[1], "5.7.0");
    assert!(run.replies[5].lines[0].contains("relaying is not offered"));
    let env = &run.messages[0].0;
    assert!(env.submission);
    assert_eq!(env.authenticated.as_deref(), Some("alice@example.test"));
    assert_eq!(env.protocol(), "ESMTPA");
    let mut free = submission_policy();
    free.sender_login_match = false;
    let run = drive_with(
        &free,
        format!("AUTH PLAIN {ok}\r\nMAIL FROM:<bob@example.test>\r\n").as_bytes(),
        100,
        true,
    );
    assert_eq!(run.codes(), [235, 250]);
}

#[test]
fn received_protocol_names() {
    let p = tls_policy();
    let ok = crate::proto::sasl::encode_plain("alice@example.test", "secret");
    let script = format!(
        "EHLO c\r\nAUTH PLAIN {ok}\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n.\r\n"
    );
    let run = drive_reads(&p, &[b"STARTTLS\r\n", script.as_bytes()], false);
    assert_eq!(run.messages[0].0.protocol(), "ESMTPSA");
    let rest: &[u8] =
        b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\n.\r\n";
    let run = drive_reads(&p, &[b"STARTTLS\r\n", rest], false);
    assert_eq!(run.messages[0].0.protocol(), "ESMTPS");
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
