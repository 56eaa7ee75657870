//! The PROXY protocol (issue 19) from outside: with `[server] proxy_from` naming loopback (the
//! load balancer's address here), a connection must start with a v1 or v2 header, and the client
//! it names is the client for everything: `Received:`, `[relay] networks` (loopback may relay,
//! the proxied client may not), the plaintext-login rule for non-loopback peers, the HTTP
//! listener's loopback rule. A missing header (timeout), a malformed one and garbage close the
//! connection with a log line naming the peer; a peer outside `proxy_from` is not asked for one.
//! And `[server] instance` in the Maildir names, for instances sharing a mailbox root.
mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;

fn proxied() -> Overrides {
    Overrides::new()
        .set("server", "proxy_from", "[\"127.0.0.1/32\"]")
        .set("server", "proxy_timeout_secs", "1")
        .set("pop3", "listen", "[\"127.0.0.1:0\"]")
        .set("http", "listen", "[\"127.0.0.1:0\"]")
        .account("alice@example.test", "secret")
}

const V1: &[u8] = b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 25\r\n";

/// A v2 PROXY header (command PROXY, TCP over IPv4) for 198.51.100.9:41000.
fn v2() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&[198, 51, 100, 9, 127, 0, 0, 1]);
    h.extend_from_slice(&41000u16.to_be_bytes());
    h.extend_from_slice(&25u16.to_be_bytes());
    h
}

#[test]
fn the_header_names_the_client_for_received_and_relaying() {
    let srv = Server::start_with(proxied());
    let mut c = Client::connect(srv.smtp);
    c.send(V1);
    c.expect(220);
    assert_eq!(c.cmd("EHLO client.example").code, 250);
    let r = c.send_mail(
        "a@b.test",
        &["alice@example.test"],
        b"Subject: proxied\r\n\r\nhello\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    // Loopback may relay ([relay] networks); the client the header names may not.
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    let r = c.cmd("RCPT TO:<x@far.example>");
    assert_eq!(r.code, 550, "{r:?}");
    c.cmd("QUIT");
    let mail = srv.new_mail("example.test", "alice");
    assert_eq!(mail.len(), 1);
    let text = std::fs::read_to_string(&mail[0]).unwrap();
    assert!(text.contains("[203.0.113.7]"), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");

    // The same with a v2 header.
    let mut c = Client::connect(srv.smtp);
    c.send(&v2());
    c.expect(220);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<x@far.example>").code, 550);
    c.cmd("QUIT");
    srv.log.wait_for("198.51.100.9");
}

#[test]
fn missing_malformed_and_garbage_headers_close_the_connection() {
    let srv = Server::start_with(proxied());
    // Nothing sent: no greeting, closed once proxy_timeout_secs has passed.
    let mut c = Client::connect(srv.smtp);
    assert!(c.try_reply().is_none(), "a greeting without a PROXY header");
    srv.log.wait_for("no PROXY header within 1 s");
    for (bad, why) in [
        (&b"EHLO client.example\r\n"[..], "no PROXY protocol header"),
        (
            b"PROXY TCP4 203.0.113.7 127.0.0.1 99999 25\r\n",
            "malformed PROXY v1",
        ),
        (b"PROXY TCP4 203.0.113.7\r\n", "malformed PROXY v1"),
    ] {
        let mut c = Client::connect(srv.smtp);
        c.send(bad);
        assert!(c.try_reply().is_none(), "{bad:?} was answered");
        let line = srv.log.wait_for(why);
        assert!(line.contains("127.0.0.1"), "the peer is named: {line}");
    }
    let mut big = v2();
    big[14..16].copy_from_slice(&5000u16.to_be_bytes());
    let mut s = TcpStream::connect(srv.smtp).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(&big).unwrap();
    let mut b = [0u8; 64];
    assert_eq!(
        s.read(&mut b).unwrap_or(0),
        0,
        "an oversize header was answered"
    );
    srv.log.wait_for("at most 1024");
}

/// POP3 and HTTP see the proxied client too: plaintext USER/PASS is for loopback peers only
/// (the proxied client is not one), and the HTTP API's loopback rule asks it for credentials.
#[test]
fn pop3_and_http_apply_their_rules_to_the_proxied_client() {
    let srv = Server::start_with(proxied());
    let pop3 = srv.addr("pop3");
    let mut s = TcpStream::connect(pop3).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(V1).unwrap();
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert!(line.starts_with("+OK"), "{line}");
    s.write_all(b"USER alice@example.test\r\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert!(
        line.starts_with("-ERR"),
        "plaintext login from 203.0.113.7: {line}"
    );

    let http = srv.addr("http");
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = v2();
    req.extend_from_slice(
        b"GET /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    s.write_all(&req).unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.starts_with("HTTP/1.1 401"), "{got}");
    // Directly, the same request (no header) from the same loopback peer is not served either:
    // the header is required from a proxy_from peer.
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.is_empty(), "{got}");
}

/// A peer outside proxy_from is never asked for a header: a PROXY line from it ends the session
/// with 421 and a log line naming it (Postfix's answer to an HTTP request on port 25), and on a
/// new connection it stays itself in Received:.
#[test]
fn a_peer_outside_proxy_from_cannot_claim_another_address() {
    let srv = Server::start_with(proxied().set("server", "proxy_from", "[\"192.0.2.0/24\"]"));
    let mut c = Client::connect(srv.smtp);
    c.expect(220);
    c.send(V1);
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(
        c.try_reply().is_none(),
        "the connection is closed after the 421"
    );
    let line = srv.log.wait_for(
        "connection closed: a PROXY protocol header from a peer outside [server] proxy_from",
    );
    assert!(line.contains("peer=127.0.0.1"), "{line}");
    let mut c = Client::connect(srv.smtp);
    c.expect(220);
    let r = c.send_mail(
        "a@b.test",
        &["alice@example.test"],
        b"Subject: direct\r\n\r\nhello\r\n",
    );
    assert_eq!(r.code, 250);
    let text = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(
        text.contains("[127.0.0.1]") && !text.contains("203.0.113.7"),
        "{text}"
    );
}

/// `[server] instance` is the last part of the Maildir names this instance makes, so that
/// instances sharing one mailbox root never make the same name.
#[test]
fn maildir_names_carry_the_instance() {
    let srv = Server::start_with(Overrides::new().set("server", "instance", "\"node-b\""));
    srv.deliver("alice@example.test", b"Subject: named\r\n\r\nhello\r\n");
    let mail = srv.new_mail("example.test", "alice");
    let name = mail[0].file_name().unwrap().to_string_lossy().into_owned();
    let unique = name.split(',').next().unwrap();
    assert!(unique.ends_with(".node-b"), "{name}");
}
