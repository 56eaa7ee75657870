//! DATA is streamed to disk: a 25 MiB message arrives intact and smtpd's peak memory does not
//! grow with the message size (CONTRACT: bounded memory per session).
mod common;
use common::*;

#[test]
fn message_of_25_mib_is_streamed() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_message_bytes", "40000000"));
    // Warm up: one small message, so the baseline includes every code path's first allocations.
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(
        c.send_mail(
            "a@b.test",
            &["warm@example.test"],
            b"Subject: w\r\n\r\nx\r\n"
        )
        .code,
        250
    );
    let before = srv.peak_rss_kib();
    assert!(before > 0);

    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+0123456789\r\n";
    let lines = 25 * 1024 * 1024 / line.len() + 1;
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    body.reserve(lines * line.len());
    for _ in 0..lines {
        body.extend_from_slice(line);
    }
    assert!(body.len() >= 25 * 1024 * 1024);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<big@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    for chunk in body.chunks(1 << 20) {
        c.send(chunk);
    }
    c.send(b".\r\n");
    let r = c.reply();
    assert_eq!(r.code, 250, "{r:?}");
    let after = srv.peak_rss_kib();

    let mail = srv.new_mail("example.test", "big");
    assert_eq!(mail.len(), 1);
    let stored = stored_body(&mail[0]);
    let expected_len = body.len() - (lines + 2); // every CRLF stored as LF
    assert_eq!(stored.len(), expected_len);
    assert!(stored.starts_with(b"Subject: big\n\n0123456789abc"));
    assert!(stored.ends_with(b"-_=+0123456789\n"));
    let growth_kib = after.saturating_sub(before);
    eprintln!("peak RSS before {before} KiB, after {after} KiB, growth {growth_kib} KiB");
    assert!(
        growth_kib < 16 * 1024,
        "peak RSS grew by {growth_kib} KiB for a 25 MiB message: DATA is not streamed"
    );
}
