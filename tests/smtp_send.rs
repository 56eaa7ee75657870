//! smtp-send against the real smtpd: every flag path delivers what it says (checked by parsing
//! the stored message with mail-parser), the transcript, exit codes, the interactive menu through a
//! pty, and `bench`.
mod common;
use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use std::io::Write;
use std::process::{Command, Stdio};

fn smtp_send(srv: &Server, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(args)
        .arg(srv.smtp.ip().to_string())
        .arg(srv.smtp.port().to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn only_message(srv: &Server, domain: &str, local: &str) -> Vec<u8> {
    let files = srv.new_mail(domain, local);
    assert_eq!(files.len(), 1, "{domain}/{local}: {files:?}");
    std::fs::read(&files[0]).unwrap()
}

/// --from/--to/--cc/--subject/--body/--header: headers, recipients and body as given; Date and
/// Message-ID added.
#[test]
fn composed_message_flags() {
    let srv = Server::start();
    let out = smtp_send(
        &srv,
        &[
            "--from",
            "alice@b.test",
            "--to",
            "bob@example.test",
            "--cc",
            "carol@localhost",
            "--subject",
            "Grüße",
            "--body",
            "Hello Bob\n.dotted\n",
            "--header",
            "X-Campaign: test-42",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).starts_with("delivered to bob@example.test, carol@localhost: 250 "));
    let raw = only_message(&srv, "example.test", "bob");
    assert_eq!(raw, only_message(&srv, "localhost", "carol"));
    let m = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.subject(), Some("Grüße"));
    assert_eq!(
        m.from().unwrap().first().unwrap().address(),
        Some("alice@b.test")
    );
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("bob@example.test")
    );
    assert_eq!(
        m.cc().unwrap().first().unwrap().address(),
        Some("carol@localhost")
    );
    assert!(m.date().is_some());
    assert!(m.message_id().is_some());
    assert_eq!(m.header_raw("X-Campaign").map(str::trim), Some("test-42"));
    assert_eq!(m.body_text(0).unwrap().trim_end(), "Hello Bob\n.dotted");
}

/// --body-file and --attach: attachments arrive byte-exact with their base names and types.
#[test]
fn body_file_and_attachments() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "Body from a file.\nSecond line.\n").unwrap();
    let bin = dir.path().join("blob.bin");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(&bin, &bytes).unwrap();
    let pdf = dir.path().join("report.pdf");
    std::fs::write(&pdf, b"%PDF-1.4 fake\n").unwrap();
    let out = smtp_send(
        &srv,
        &[
            "--from",
            "a@b.test",
            "--to",
            "bob@example.test",
            "--subject",
            "files",
            "--body-file",
            body.to_str().unwrap(),
            "--attach",
            bin.to_str().unwrap(),
            "--attach",
            pdf.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let raw = only_message(&srv, "example.test", "bob");
    let m = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        m.body_text(0).unwrap().trim_end(),
        "Body from a file.\nSecond line."
    );
    let atts: Vec<_> = m.attachments().collect();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0].attachment_name(), Some("blob.bin"));
    assert_eq!(atts[0].contents(), &bytes[..]);
    assert_eq!(
        atts[0].content_type().map(|c| c.ctype()),
        Some("application")
    );
    assert_eq!(atts[1].attachment_name(), Some("report.pdf"));
    assert_eq!(
        atts[1].content_type().and_then(|c| c.subtype()),
        Some("pdf")
    );
    assert_eq!(atts[1].contents(), b"%PDF-1.4 fake\n");
}

/// --data - and plain stdin (as sendmail reads it) send the message as is.
#[test]
fn whole_message_from_stdin() {
    let srv = Server::start();
    let message =
        b"From: x@b.test\r\nTo: bob@example.test\r\nSubject: raw\r\n\r\nAs is.\r\n.leading dot\r\n";
    for (args, who) in [(vec!["--data", "-"], "raw1"), (vec![], "raw2")] {
        let to = format!("{who}@example.test");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtp-send"));
        cmd.args(["--from", "x@b.test", "--to", &to])
            .args(&args)
            .arg(srv.smtp.ip().to_string())
            .arg(srv.smtp.port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(message).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let files = srv.new_mail("example.test", who);
        assert_eq!(
            stored_body(&files[0]),
            b"From: x@b.test\nTo: bob@example.test\nSubject: raw\n\nAs is.\n.leading dot\n"
        );
    }
}

/// -v prints the dialogue with C:/S: prefixes: 220, 250, 354, 221 among them; --helo forces HELO.
#[test]
fn verbose_transcript_and_helo() {
    let srv = Server::start();
    let out = smtp_send(
        &srv,
        &[
            "-v",
            "--from",
            "a@b.test",
            "--to",
            "bob@example.test",
            "--body",
            "x",
        ],
    );
    assert!(out.status.success());
    let t = stdout(&out);
    for needle in [
        "S: 220 ",
        "C: EHLO ",
        "S: 250-",
        "C: MAIL FROM:<a@b.test>",
        "S: 354 ",
        "C: .",
        "S: 250 2.0.0",
        "C: QUIT",
        "S: 221 ",
    ] {
        assert!(t.contains(needle), "{needle} missing:\n{t}");
    }
    assert!(
        t.lines()
            .all(|l| l.starts_with("C: ") || l.starts_with("S: ") || l.starts_with("delivered")),
        "{t}"
    );
    let out = smtp_send(
        &srv,
        &[
            "-v",
            "--helo",
            "--ehlo",
            "client.test",
            "--from",
            "a@b.test",
            "--to",
            "bob@example.test",
            "--body",
            "x",
        ],
    );
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("C: HELO client.test"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("C: EHLO"));
}

/// A refused recipient: exit 1 and a clear message; the other recipient still gets the message.
/// (The server takes no relayed mail from us: loopback is not in its `[relay] networks`.)
#[test]
fn refused_recipient_exit_1() {
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let out = smtp_send(
        &srv,
        &[
            "--from",
            "a@b.test",
            "--to",
            "victim@elsewhere.test",
            "--body",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("victim@elsewhere.test refused: 550 5.7.1"),
        "{err}"
    );
    let out = smtp_send(
        &srv,
        &[
            "--from",
            "a@b.test",
            "--to",
            "bob@example.test",
            "--to",
            "x@elsewhere.test",
            "--body",
            "x",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["delivered"], true);
    assert_eq!(v["accepted"][0], "bob@example.test");
    assert_eq!(v["rejected"][0]["address"], "x@elsewhere.test");
    assert_eq!(srv.new_mail("example.test", "bob").len(), 1);
}

/// A message above the advertised SIZE is refused locally (nothing sent); exit 1.
#[test]
fn size_refused_locally() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_message_bytes", "2000"));
    let body = "y".repeat(70).repeat(60);
    let out = smtp_send(
        &srv,
        &[
            "-v",
            "--from",
            "a@b.test",
            "--to",
            "bob@example.test",
            "--body",
            &body,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("SIZE"), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("C: MAIL"),
        "nothing was sent: {}",
        stdout(&out)
    );
}

/// Exit 3 for connection errors, 2 for usage errors.
#[test]
fn exit_codes_for_connection_and_usage() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "--from",
            "a@b.test",
            "--to",
            "b@example.test",
            "--body",
            "x",
            "127.0.0.1",
            &port,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(["--to", "b@example.test", "--body", "x", "127.0.0.1", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(["--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// EHLO answered 502 (an old server): the client falls back to HELO and still delivers.
#[test]
fn helo_fallback_on_502() {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"220 old.test SMTP\r\n").unwrap();
        let mut seen = Vec::new();
        let mut in_data = false;
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 0 {
            let l = line.trim_end().to_string();
            line.clear();
            if in_data {
                if l == "." {
                    in_data = false;
                    w.write_all(b"250 queued\r\n").unwrap();
                }
                continue;
            }
            seen.push(l.clone());
            let reply: &[u8] = match l.split(' ').next().unwrap_or("") {
                "EHLO" => b"502 command not implemented\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                "QUIT" => {
                    w.write_all(b"221 bye\r\n").unwrap();
                    break;
                }
                _ => b"250 ok\r\n",
            };
            w.write_all(reply).unwrap();
        }
        seen
    });
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "--from",
            "a@b.test",
            "--to",
            "b@old.test",
            "--body",
            "x",
            "--ehlo",
            "me.test",
            "127.0.0.1",
            &port,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = server.join().unwrap();
    assert_eq!(seen[0], "EHLO me.test");
    assert_eq!(seen[1], "HELO me.test");
    assert!(
        seen[2].starts_with("MAIL FROM:<a@b.test>"),
        "no SIZE/pipelining after HELO: {seen:?}"
    );
}

/// The interactive menu, driven through a pty like a person: prompts for From, To, Subject, the
/// body ended by "FIN"; the accepted recipient gets it, the refused one is reported; 3 quits.
#[test]
fn interactive_menu_through_a_pty() {
    if !have("python3") {
        return;
    }
    // Loopback is no relay peer here, so the remote recipient is refused.
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/pty_session.py"
        ))
        .arg(env!("CARGO_BIN_EXE_smtp-send"))
        .arg(srv.smtp.ip().to_string())
        .arg(srv.smtp.port().to_string())
        .output()
        .unwrap();
    let screen = stdout(&out);
    assert!(out.status.success(), "{screen}\n{}", stderr(&out));
    assert!(screen.contains("1) Send a message"), "{screen}");
    assert!(
        screen.contains("Recipient nobody@elsewhere.test refused: 550 5.7.1"),
        "{screen}"
    );
    assert!(screen.contains("354 "), "server replies shown: {screen}");
    let raw = only_message(&srv, "example.test", "bob");
    let m = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.subject(), Some("Typed by hand"));
    assert_eq!(
        m.body_text(0).unwrap().trim_end(),
        "Hello Bob,\n.a line with a leading dot"
    );
}

/// bench with 4 sessions × 50 messages: 200 sent, 200 files in the Maildir.
#[test]
fn bench_200_messages() {
    let srv = Server::start();
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "bench",
            &srv.smtp.ip().to_string(),
            &srv.smtp.port().to_string(),
        ])
        .args(["--sessions", "4", "--messages", "50", "--size", "2048"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let summary = stdout(&out);
    assert!(summary.starts_with("200 messages in "), "{summary}");
    assert!(summary.contains("errors: none"), "{summary}");
    assert_eq!(srv.new_mail("localhost", "bench0").len(), 200);
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args([
            "bench",
            &srv.smtp.ip().to_string(),
            &srv.smtp.port().to_string(),
        ])
        .args([
            "--sessions",
            "2",
            "--messages",
            "5",
            "--rcpts",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages_sent"], 10);
    assert_eq!(srv.new_mail("localhost", "bench2").len(), 10);
}
