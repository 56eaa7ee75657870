//! `[log] transcripts = true` and `smtpctl transcript ID`: the dialogue behind a delivered
//! message, with AUTH secrets redacted and the message text reduced to its size.
mod common;
use base64::Engine;
use common::*;

const ALICE: &str = "alice@example.test";

#[test]
fn transcript_of_a_delivered_message_without_secrets() {
    let srv = Server::start_with(
        Overrides::new()
            .pop3(&[ALICE])
            .set("log", "transcripts", "true"),
    );
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("EHLO client.test").code, 250);
    let secret = base64::engine::general_purpose::STANDARD.encode(format!("\0{ALICE}\0{PASSWORD}"));
    assert_eq!(c.cmd(&format!("AUTH PLAIN {secret}")).code, 235);
    let r = c.send_mail(
        ALICE,
        &[ALICE],
        b"Subject: very private subject\r\n\r\nprivate body\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    let id = r.text().rsplit(' ').next().unwrap().to_string();
    // Readable right after the 250, while the session goes on.
    let out = srv.ctl(&["transcript", &id]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.starts_with("# session "), "{text}");
    assert!(text.contains("C: EHLO client.test\n"), "{text}");
    assert!(text.contains("C: AUTH PLAIN [redacted]\nS: 235"), "{text}");
    assert!(text.contains(&format!("C: MAIL FROM:<{ALICE}>")), "{text}");
    assert!(text.contains("C: [message text, "), "{text}");
    assert!(text.contains(&format!("queued as {id}\n")), "{text}");
    for hidden in [secret.as_str(), PASSWORD, "very private", "private body"] {
        assert!(!text.contains(hidden), "{hidden:?} in\n{text}");
    }
    // At the end of the session the file holds the rest.
    assert_eq!(c.cmd("QUIT").code, 221);
    drop(c);
    let mut full = String::new();
    for _ in 0..100 {
        full = stdout(&srv.ctl(&["transcript", &id]));
        if full.contains("-- session end") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(full.contains("C: QUIT\nS: 221"), "{full}");
    // Unknown and malformed ids are refused with a reason.
    let unknown = srv.ctl(&["transcript", "ABCDEF123"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("no transcript for message ABCDEF123"),
        "{}",
        stderr(&unknown)
    );
    let bad = srv.ctl(&["transcript", "../../etc/passwd"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("letters and digits"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn off_by_default_and_says_how_to_turn_on() {
    let srv = Server::start();
    srv.deliver(ALICE, b"Subject: x\r\n\r\ny\r\n");
    assert!(!srv.dir.path().join("logs/transcripts").exists());
    let out = srv.ctl(&["transcript", "ABC"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("transcripts are off"),
        "{}",
        stderr(&out)
    );
}
