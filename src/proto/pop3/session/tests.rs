//! Transcript tables for the POP3 engine, run whole and byte by byte, with a fake driver.

use super::*;

/// A fake driver: one account "alice@example.test" / "secret" with three messages;
/// "busy@example.test" / "secret" is locked by another session.
#[derive(Debug, Default, PartialEq)]
struct Run {
    out: String,
    updates: Vec<(Vec<usize>, Vec<usize>)>,
    closed: bool,
}

fn entries() -> Vec<Entry> {
    vec![
        Entry {
            uid: "uid-a".into(),
            size: 100,
        },
        Entry {
            uid: "uid-b".into(),
            size: 200,
        },
        Entry {
            uid: "uid-c".into(),
            size: 300,
        },
    ]
}

fn policy(plaintext: bool) -> Pop3Policy {
    Pop3Policy {
        hostname: "mx.example.test".into(),
        plaintext_allowed: plaintext,
        max_command_line: 1024,
        max_errors: 10,
        tls_available: false,
    }
}

fn drive(p: &Pop3Policy, input: &[u8], step: usize) -> Run {
    let mut s = Pop3Session::new(Arc::new(p.clone()));
    let mut run = Run::default();
    let mut queue: std::collections::VecDeque<Event> = Default::default();
    for chunk in input.chunks(step.max(1)) {
        queue.extend(s.feed(chunk));
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(b) => run.out.push_str(&String::from_utf8_lossy(&b)),
                Event::Login { user, password } => {
                    let outcome = match (user.as_str(), password.as_str()) {
                        ("alice@example.test", "secret") => LoginOutcome::Ok(entries()),
                        ("busy@example.test", "secret") => LoginOutcome::InUse,
                        ("broken@example.test", _) => LoginOutcome::TempFail,
                        _ => LoginOutcome::BadCredentials,
                    };
                    queue.extend(s.login(outcome, &user));
                }
                Event::Send { index, top, size } => {
                    run.out.push_str(&format!(
                        "+OK {size} octets\r\n<msg {index} top {top:?}>\r\n.\r\n"
                    ));
                }
                Event::Update { delete, seen } => {
                    run.updates.push((delete, seen));
                    queue.extend(s.updated(true));
                }
                Event::Close => run.closed = true,
                Event::Foreign(kind) => run.out.push_str(&format!("<{kind:?}>")),
                Event::StartTls => {
                    run.out.push_str("<TLS>");
                    s.tls_started();
                }
            }
        }
    }
    run
}

fn transcript(script: &str) -> Run {
    transcript_with(&policy(true), script)
}

fn transcript_with(p: &Pop3Policy, script: &str) -> Run {
    let whole = drive(p, script.as_bytes(), script.len());
    for step in [1, 5] {
        assert_eq!(drive(p, script.as_bytes(), step), whole, "step {step}");
    }
    let lf = drive(p, script.replace("\r\n", "\n").as_bytes(), script.len());
    assert_eq!(lf, whole, "LF line ends");
    whole
}

/// The status word of each reply line that starts one ("+OK", "-ERR" or "+ ").
fn statuses(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| {
            if l.starts_with("+OK") {
                Some("+OK")
            } else if l.starts_with("-ERR") {
                Some("-ERR")
            } else if l == "+ " {
                Some("+")
            } else {
                None
            }
        })
        .collect()
}

const LOGIN: &str = "USER alice@example.test\r\nPASS secret\r\n";

#[test]
fn greeting() {
    let s = Pop3Session::new(Arc::new(policy(true)));
    assert_eq!(s.greeting(), b"+OK mx.example.test POP3 server ready\r\n");
}

#[test]
fn original_spec_commands() {
    let run = transcript(&format!("{LOGIN}STAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n"));
    assert_eq!(
        run.out,
        "+OK Send your password\r\n\
         +OK Logged in: 3 messages (600 octets)\r\n\
         +OK 3 600\r\n\
         +OK 3 messages (600 octets)\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n\
         +OK 100 octets\r\n<msg 0 top None>\r\n.\r\n\
         +OK Logging out\r\n"
    );
    assert_eq!(run.updates, [(vec![], vec![0])]);
    assert!(run.closed);
}

#[test]
fn every_command_in_transaction() {
    let run = transcript(&format!(
        "{LOGIN}LIST 2\r\nUIDL\r\nUIDL 3\r\nTOP 2 5\r\nDELE 2\r\nLIST 2\r\nRETR 2\r\nSTAT\r\nLIST\r\nNOOP\r\nRSET\r\nSTAT\r\nDELE 1\r\nDELE 1\r\nQUIT\r\n"
    ));
    let out = &run.out;
    assert!(out.contains("+OK 2 200\r\n"));
    assert!(
        out.contains("+OK Unique-id listing follows\r\n1 uid-a\r\n2 uid-b\r\n3 uid-c\r\n.\r\n")
    );
    assert!(out.contains("+OK 3 uid-c\r\n"));
    assert!(out.contains("<msg 1 top Some(5)>"));
    assert!(out.contains("-ERR Message 2 is deleted\r\n"));
    assert!(out.contains("+OK 2 400\r\n"), "STAT after DELE: {out}");
    assert!(out.contains("+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n"));
    assert!(out.contains("+OK\r\n"), "NOOP");
    assert!(out.contains("+OK 3 messages (600 octets)\r\n"), "RSET");
    // DELE 1 then DELE 1 again, QUIT deletes message 1 only; TOP does not mark as seen.
    assert_eq!(run.updates, [(vec![0], vec![])]);
}

#[test]
fn wrong_states_and_bad_numbers() {
    let run = transcript("STAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nPASS x\r\nNOOP\r\nQUIT\r\n");
    assert_eq!(
        statuses(&run.out),
        ["-ERR", "-ERR", "-ERR", "-ERR", "-ERR", "-ERR", "+OK"]
    );
    let run = transcript(&format!(
        "{LOGIN}RETR 0\r\nRETR 4\r\nLIST 9\r\nUSER x\r\nSTLS\r\nAUTH PLAIN\r\nFOO\r\nRETR x\r\nQUIT\r\n"
    ));
    assert_eq!(
        statuses(&run.out),
        [
            "+OK", "+OK", "-ERR", "-ERR", "-ERR", "-ERR", "-ERR", "-ERR", "-ERR", "-ERR", "+OK"
        ]
    );
}

#[test]
fn failed_logins_are_indistinguishable() {
    let run = transcript(
        "USER nobody@example.test\r\nPASS secret\r\nUSER alice@example.test\r\nPASS wrong\r\nQUIT\r\n",
    );
    let errs: Vec<&str> = run.out.lines().filter(|l| l.starts_with("-ERR")).collect();
    assert_eq!(
        errs,
        [
            "-ERR [AUTH] Authentication failed",
            "-ERR [AUTH] Authentication failed"
        ]
    );
}

#[test]
fn in_use_and_temp_fail_codes() {
    let run = transcript(
        "USER busy@example.test\r\nPASS secret\r\nUSER broken@example.test\r\nPASS x\r\n",
    );
    assert!(run.out.contains("-ERR [IN-USE] "));
    assert!(run.out.contains("-ERR [SYS/TEMP] "));
}

#[test]
fn auth_plain_with_and_without_initial_response() {
    let ir = sasl::encode_plain("alice@example.test", "secret");
    let run = transcript(&format!("AUTH PLAIN {ir}\r\nSTAT\r\nQUIT\r\n"));
    assert_eq!(statuses(&run.out), ["+OK", "+OK", "+OK"]);
    let run = transcript(&format!("AUTH PLAIN\r\n{ir}\r\nSTAT\r\n"));
    assert_eq!(statuses(&run.out), ["+", "+OK", "+OK"]);
    let run = transcript("AUTH PLAIN\r\n*\r\nAUTH PLAIN !!!\r\nAUTH CRAM-MD5\r\n");
    assert_eq!(statuses(&run.out), ["+", "-ERR", "-ERR", "-ERR"]);
    let run = transcript("AUTH\r\n");
    assert_eq!(run.out, "+OK Supported mechanisms follow\r\nPLAIN\r\n.\r\n");
}

#[test]
fn capa_depends_on_state_and_plaintext_policy() {
    let run = transcript("CAPA\r\n");
    for cap in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "USER",
        "SASL PLAIN",
        "IMPLEMENTATION smtpd",
    ] {
        assert!(
            run.out.contains(&format!("\r\n{cap}\r\n")),
            "{cap}: {}",
            run.out
        );
    }
    assert!(run.out.ends_with("\r\n.\r\n"));
    assert!(!run.out.contains("STLS"));
    let run = transcript(&format!("{LOGIN}CAPA\r\n"));
    assert!(!run.out.contains("\r\nUSER\r\n"));
    let closed = policy(false);
    let run = transcript_with(
        &closed,
        "CAPA\r\nUSER alice@example.test\r\nAUTH PLAIN x\r\nAUTH\r\n",
    );
    assert!(!run.out.contains("\r\nUSER\r\n") && !run.out.contains("SASL"));
    assert!(
        run.out
            .contains("-ERR [AUTH] Plaintext authentication disallowed")
    );
    assert!(
        run.out
            .ends_with("+OK Supported mechanisms follow\r\n.\r\n")
    );
}

/// STLS: offered in CAPA when TLS is configured; input pipelined after it is dropped; after the
/// handshake, CAPA no longer lists STLS and plaintext login is allowed even for a remote peer.
#[test]
fn stls_drops_pipelined_input_and_enables_login() {
    let mut p = policy(false);
    p.tls_available = true;
    let run = transcript_with(&p, "CAPA\r\n");
    assert!(run.out.contains("\r\nSTLS\r\n") && !run.out.contains("USER"));
    // One read holding STLS and an injected command: the command is never answered.
    let injected: &[u8] = b"STLS\r\nUSER injected@example.test\r\n";
    let run = drive(&p, injected, injected.len());
    assert_eq!(
        run.out, "+OK Begin TLS negotiation\r\n<TLS>",
        "injected command not answered"
    );
    let mut s = Pop3Session::new(Arc::new(p));
    s.feed(b"STLS\r\n");
    s.tls_started();
    let ev = s.feed(b"CAPA\r\n");
    let Event::Reply(capa) = &ev[0] else { panic!() };
    let capa = String::from_utf8_lossy(capa);
    assert!(!capa.contains("STLS") && capa.contains("USER"), "{capa}");
    let ev = s.feed(b"STLS\r\n");
    assert!(matches!(&ev[0], Event::Reply(r) if r.starts_with(b"-ERR")));
}

#[test]
fn disconnect_without_quit_deletes_nothing() {
    let run = transcript(&format!("{LOGIN}DELE 1\r\nDELE 2\r\n"));
    assert!(run.updates.is_empty());
    assert!(!run.closed);
}

#[test]
fn pipelined_login_and_commands() {
    // Everything in one write: commands after PASS wait for the login result.
    let run = transcript(&format!("CAPA\r\n{LOGIN}STAT\r\nUIDL 1\r\nQUIT\r\n"));
    assert_eq!(
        statuses(&run.out),
        ["+OK", "+OK", "+OK", "+OK", "+OK", "+OK"]
    );
}

#[test]
fn long_lines_and_error_limit() {
    let run = transcript(&format!("NOOP {}\r\nCAPA\r\n", "x".repeat(2000)));
    assert!(run.out.starts_with("-ERR Line too long\r\n+OK Capability"));
    let mut p = policy(true);
    p.max_errors = 3;
    let run = transcript_with(&p, "A\r\nB\r\nC\r\nCAPA\r\n");
    assert_eq!(statuses(&run.out), ["-ERR", "-ERR", "-ERR", "-ERR"]);
    assert!(
        run.out
            .ends_with("-ERR Too many errors, closing the connection\r\n")
    );
    assert!(run.closed);
}

#[test]
fn timeout_closes_without_update() {
    let mut s = Pop3Session::new(Arc::new(policy(true)));
    let ev = s.feed(LOGIN.as_bytes());
    assert!(matches!(ev.last(), Some(Event::Login { .. })));
    s.login(LoginOutcome::Ok(entries()), "alice@example.test");
    s.feed(b"DELE 1\r\n");
    let ev = s.timeout();
    assert_eq!(ev.last(), Some(&Event::Close));
    assert!(!ev.iter().any(|e| matches!(e, Event::Update { .. })));
}

proptest::proptest! {
    /// Arbitrary bytes never panic, logged in or not.
    #[test]
    fn arbitrary_input_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024), step in 1usize..32, login: bool) {
        let mut script = if login { LOGIN.as_bytes().to_vec() } else { Vec::new() };
        script.extend_from_slice(&input);
        let _ = drive(&policy(true), &script, step);
    }
}

#[test]
fn a_proxy_header_or_http_request_ends_the_session() {
    for (script, kind) in [
        (
            "PROXY TCP4 192.0.2.1 127.0.0.1 4000 110\r\nCAPA\r\n",
            "Proxy",
        ),
        ("\r\n\r\n\0\r\nQUIT\r\n", "Proxy"),
        ("POST / HTTP/1.1\r\nUSER alice@example.test\r\n", "Http"),
    ] {
        let run = transcript(script);
        assert!(run.closed, "{script:?}: {}", run.out);
        let (before, after) = run.out.split_once(&format!("<{kind}>")).expect("logged");
        assert!(before.lines().all(|l| l.starts_with("-ERR")), "{}", run.out);
        assert!(
            after.starts_with("-ERR ") && after.lines().count() == 1,
            "{}",
            run.out
        );
    }
}
