//! The SMTP driver against the fake delivery target: real sockets on loopback, our client on the
//! other side, storage failures injected where a disk would fail.

use std::sync::atomic::Ordering;

use super::*;
use crate::auth::accounts::ProbeSlot;
use crate::client::conn::Conn as Client;
use crate::mailbox::fake::{Fail, FakeTarget};

/// One smtpd session served on a loopback port, with `fake` as the target and a 1 MiB limit.
async fn session(fake: &Arc<FakeTarget>) -> Client {
    let mut policy = Policy::example("mx.test", &["example.test"]);
    policy.max_message_bytes = 1 << 20;
    let policy = Arc::new(policy);
    let ctx = Arc::new(SmtpContext {
        policy: Arc::clone(&policy),
        submission_policy: policy,
        target: Arc::clone(fake) as _,
        relay_networks: Vec::new(),
        limits: Limits::default(),
        stats: Arc::new(Stats::default()),
        accounts: Arc::new(Accounts::new([], Arc::new(ProbeSlot::default()))),
        tls: None,
        auth_failure_delay: Duration::from_millis(1),
        transcripts: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        serve(tcp, peer, ctx, Protocol::Smtp, CancellationToken::new()).await;
    });
    let mut c = Client::connect(addr, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(c.reply().await.unwrap().code, 220);
    c
}

/// MAIL, RCPT, DATA and `text` (already dot-stuffed, without the final dot): the final reply.
async fn send(c: &mut Client, text: &[u8]) -> (u16, String) {
    for (cmd, code) in [
        ("MAIL FROM:<a@b.test>", 250),
        ("RCPT TO:<bob@example.test>", 250),
        ("DATA", 354),
    ] {
        assert_eq!(c.command(cmd).await.unwrap().code, code, "{cmd}");
    }
    c.write(text).await.unwrap();
    c.write(b".\r\n").await.unwrap();
    let r = c.reply().await.unwrap();
    (r.code, r.last_line())
}

#[tokio::test]
async fn committed_message_reaches_the_target() {
    let fake = FakeTarget::new(Fail::Never);
    let mut c = session(&fake).await;
    let (code, line) = send(&mut c, b"Subject: hi\r\n\r\n..dot\r\n").await;
    assert_eq!(code, 250, "{line}");
    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    let (rcpts, text) = &messages[0];
    assert_eq!(
        (rcpts[0].domain.as_str(), rcpts[0].local.as_str()),
        ("example.test", "bob")
    );
    let text = String::from_utf8_lossy(text);
    assert!(
        text.starts_with("Return-Path: <a@b.test>\nReceived: from"),
        "{text}"
    );
    assert!(text.ends_with("\nSubject: hi\n\n.dot\n"), "{text}");
    assert!(
        line.contains("FAKE1"),
        "the target's id is the queue id: {line}"
    );
}

/// A full disk at commit: 452 4.3.1, nothing delivered, and the session goes on.
#[tokio::test]
async fn disk_full_at_commit_is_452() {
    let fake = FakeTarget::new(Fail::Commit(nix::libc::ENOSPC));
    let mut c = session(&fake).await;
    let (code, line) = send(&mut c, b"Subject: x\r\n\r\nx\r\n").await;
    assert_eq!(code, 452, "{line}");
    assert!(line.contains("4.3.1"), "{line}");
    assert!(fake.messages().is_empty());
    assert_eq!(c.command("NOOP").await.unwrap().code, 250);
}

/// Any other storage error: 451 4.3.0, the cause kept out of the reply.
#[tokio::test]
async fn io_error_at_commit_is_451() {
    let fake = FakeTarget::new(Fail::Commit(nix::libc::EIO));
    let mut c = session(&fake).await;
    let (code, line) = send(&mut c, b"Subject: x\r\n\r\nx\r\n").await;
    assert_eq!(code, 451, "{line}");
    assert!(!line.contains("fake") && !line.contains("fsync"), "{line}");
}

/// A write that fails mid-message (text beyond one chunk): the rest is read and dropped, the
/// delivery is aborted, the end of DATA gets the 4xx, and the next command is answered.
#[tokio::test]
async fn failed_write_mid_message_aborts() {
    let fake = FakeTarget::new(Fail::Write(nix::libc::ENOSPC));
    let mut c = session(&fake).await;
    let line = vec![b'x'; 998];
    let mut text = b"Subject: big\r\n\r\n".to_vec();
    while text.len() < 3 * super::super::smtp_message::WRITE_CHUNK {
        text.extend_from_slice(&line);
        text.extend_from_slice(b"\r\n");
    }
    let (code, reply) = send(&mut c, &text).await;
    assert_eq!(code, 452, "{reply}");
    assert_eq!(fake.aborted.load(Ordering::Relaxed), 1);
    assert!(fake.messages().is_empty());
    assert_eq!(c.command("NOOP").await.unwrap().code, 250);
}

/// Over the size limit: the delivery is aborted at once (552 at the end), never committed.
#[tokio::test]
async fn too_big_is_aborted() {
    let fake = FakeTarget::new(Fail::Never);
    let mut c = session(&fake).await;
    let mut text = b"Subject: huge\r\n\r\n".to_vec();
    text.resize(text.len() + (1 << 20) + 10, b'y');
    text.extend_from_slice(b"\r\n");
    let (code, reply) = send(&mut c, &text).await;
    assert_eq!(code, 552, "{reply}");
    assert_eq!(fake.aborted.load(Ordering::Relaxed), 1);
    assert!(fake.messages().is_empty());
}

/// The client leaves in the middle of DATA: the delivery is aborted, nothing is committed.
#[tokio::test]
async fn client_gone_mid_data_aborts() {
    let fake = FakeTarget::new(Fail::Never);
    let mut c = session(&fake).await;
    for (cmd, code) in [
        ("MAIL FROM:<a@b.test>", 250),
        ("RCPT TO:<bob@example.test>", 250),
        ("DATA", 354),
    ] {
        assert_eq!(c.command(cmd).await.unwrap().code, code, "{cmd}");
    }
    c.write(b"Subject: half\r\n\r\nthe first half of the text\r\n")
        .await
        .unwrap();
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.aborted.load(Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "never aborted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(fake.messages().is_empty());
}
