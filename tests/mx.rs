//! Direct delivery by MX lookup (issue 15, "Routes"): a remote domain without a route or a
//! smarthost goes to its MX hosts (RFC 5321 5.1), looked up at `[dns] nameservers` (a dnsmasq on
//! loopback here) and reached on `[relay] mx_port` (the receiver's port). Proves: delivery through
//! the MX, byte-exact; the next MX when the preferred one is down; the implicit MX (an A record
//! only); a null MX (RFC 7505) and NXDOMAIN bounced at once (5.1.10, 5.1.2); a name server that
//! does not answer defers (4.4.3) until it does. Skipped without dnsmasq, except under CI=true.
mod common;
use common::*;

/// A receiving smtpd for `domains` (fault addresses on).
fn receiver(domains: &str) -> Server {
    Server::start_with(Overrides::new().set("mailboxes", "domains", domains).set(
        "testing",
        "fault_addresses",
        "true",
    ))
}

/// The smtpd under test: no route, no smarthost; asks `nameservers`, delivers to port
/// `mx_port`, retries after `backoff` seconds (at most twice that).
fn sender(nameservers: &str, mx_port: u16, backoff: u64) -> Server {
    Server::start_with(
        Overrides::new()
            .set("dns", "nameservers", nameservers)
            .set("relay", "mx_port", &mx_port.to_string())
            .set("queue", "minimal_backoff_secs", &backoff.to_string())
            .set("queue", "maximal_backoff_secs", &(2 * backoff).to_string()),
    )
}

/// One message from alice@example.test to `to`; must get 250 (a loopback peer may relay).
fn send(srv: &Server, to: &[&str]) {
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail("alice@example.test", to, TEXT);
    assert_eq!(r.code, 250, "{r:?}");
}

const TEXT: &[u8] =
    b"Subject: direct\r\nMessage-ID: <mx.1@example.test>\r\n\r\nfirst line\r\n..dotted\r\nlast\r\n";
const BODY: &str =
    "Subject: direct\nMessage-ID: <mx.1@example.test>\n\nfirst line\n.dotted\nlast\n";

/// The bounce in alice's Maildir (exactly one).
fn the_bounce(srv: &Server) -> String {
    until("the bounce", || {
        srv.new_mail("example.test", "alice").len() == 1
    });
    std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap()
}

/// far.test has one MX, mx1.far.test (127.0.0.1): the message arrives there with its text
/// unchanged under our Received: line, the log names the MX host and address, and the queue
/// ends empty.
#[test]
fn delivered_through_the_mx() {
    let Some(dns) = Dnsmasq::start(&[
        "--mx-host=far.test,mx1.far.test,10",
        "--host-record=mx1.far.test,127.0.0.1",
    ]) else {
        return;
    };
    let far = receiver("[\"far.test\"]");
    let port = far.addr("smtp").port();
    let srv = sender(&dns.nameservers(), port, 60);
    send(&srv, &["bob@far.test"]);
    until("bob's copy", || far.new_mail("far.test", "bob").len() == 1);
    until("an empty queue", || srv.queue().is_empty());
    let ours = String::from_utf8(stored_body(&far.new_mail("far.test", "bob")[0])).unwrap();
    assert!(ours.starts_with("Received: from [127.0.0.1]"), "{ours}");
    assert!(ours.ends_with(BODY), "{ours}");
    let line = srv
        .log
        .wait_for(&format!("connected to MX mx1.far.test (127.0.0.1:{port})"));
    assert!(line.contains("INFO"), "{line}");
    srv.log.wait_for("bob@far.test>: delivered");
}

/// The preferred MX (mx0, 127.0.0.3: nothing listens there) is down: the next one (mx1) gets
/// the message. A 5xx from mx1 for one recipient is final: bounced, with mx1 as Remote-MTA.
#[test]
fn the_next_mx_when_the_preferred_one_is_down() {
    let Some(dns) = Dnsmasq::start(&[
        "--mx-host=far.test,mx0.far.test,5",
        "--mx-host=far.test,mx1.far.test,10",
        "--host-record=mx0.far.test,127.0.0.3",
        "--host-record=mx1.far.test,127.0.0.1",
    ]) else {
        return;
    };
    let far = receiver("[\"far.test\"]");
    let port = far.addr("smtp").port();
    let srv = sender(&dns.nameservers(), port, 60);
    send(&srv, &["bob@far.test", "fail-550@far.test"]);
    until("bob's copy", || far.new_mail("far.test", "bob").len() == 1);
    let down = srv
        .log
        .wait_for(&format!("MX mx0.far.test (127.0.0.3:{port}) failed"));
    assert!(down.contains("trying the next"), "{down}");
    srv.log
        .wait_for(&format!("connected to MX mx1.far.test (127.0.0.1:{port})"));
    let bounce = the_bounce(&srv);
    assert!(
        bounce.contains("Final-Recipient: rfc822; fail-550@far.test\nAction: failed\nStatus: 5.0.0\nRemote-MTA: dns; mx1.far.test\n"),
        "{bounce}"
    );
    until("an empty queue", || srv.queue().is_empty());
}

/// implicit.test has no MX record, only an A record: the domain is its own mail host.
#[test]
fn implicit_mx() {
    let Some(dns) = Dnsmasq::start(&["--host-record=implicit.test,127.0.0.1"]) else {
        return;
    };
    let far = receiver("[\"implicit.test\"]");
    let port = far.addr("smtp").port();
    let srv = sender(&dns.nameservers(), port, 60);
    send(&srv, &["bob@implicit.test"]);
    until("bob's copy", || {
        far.new_mail("implicit.test", "bob").len() == 1
    });
    srv.log
        .wait_for(&format!("connected to MX implicit.test (127.0.0.1:{port})"));
    until("an empty queue", || srv.queue().is_empty());
}

/// A null MX (RFC 7505: `MX 0 .`) and a domain that does not exist (NXDOMAIN) fail at the first
/// try (no retry: the backoff is a minute) and are bounced to the local sender, with 5.1.10 and
/// 5.1.2.
#[test]
fn null_mx_and_nxdomain_bounce_at_once() {
    let Some(dns) = Dnsmasq::start(&["--mx-host=null.test,.,0"]) else {
        return;
    };
    let far = receiver("[\"far.test\"]");
    let srv = sender(&dns.nameservers(), far.addr("smtp").port(), 60);
    send(&srv, &["bob@null.test"]);
    let bounce = the_bounce(&srv);
    assert!(
        bounce.contains("Final-Recipient: rfc822; bob@null.test\nAction: failed\nStatus: 5.1.10\n"),
        "{bounce}"
    );
    assert!(
        bounce.contains("556 5.1.10 null.test does not accept mail (null MX)"),
        "{bounce}"
    );
    assert!(!bounce.contains("Remote-MTA"), "nothing answered: {bounce}");
    until("an empty queue", || srv.queue().is_empty());
    std::fs::remove_file(&srv.new_mail("example.test", "alice")[0]).unwrap();
    send(&srv, &["bob@nx.test"]);
    let bounce = the_bounce(&srv);
    assert!(
        bounce.contains("Final-Recipient: rfc822; bob@nx.test\nAction: failed\nStatus: 5.1.2\n"),
        "{bounce}"
    );
    assert!(bounce.contains("nx.test: no such domain"), "{bounce}");
    until("an empty queue", || srv.queue().is_empty());
}

/// The name server does not answer (nothing listens on its port): deferred with a 4.4.3 last
/// error; once dnsmasq runs there, `smtpctl queue flush` delivers.
#[test]
fn dns_down_defers_until_it_answers() {
    if dnsmasq_bin().is_none() {
        return;
    }
    let far = receiver("[\"far.test\"]");
    let port = free_udp_port();
    let srv = sender(
        &format!("[\"127.0.0.1:{port}\"]"),
        far.addr("smtp").port(),
        60,
    );
    send(&srv, &["bob@far.test"]);
    // The resolver gives up after its timeouts (5 s a query, retried): about 15 s.
    until_within(WAIT * 3, "a deferral", || {
        srv.queue()[0]["recipients"][0]["state"] == "deferred"
    });
    let q = srv.queue();
    let error = q[0]["recipients"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("4.4.3 far.test: MX lookup failed"), "{q:?}");
    let records = [
        "--mx-host=far.test,mx1.far.test,10",
        "--host-record=mx1.far.test,127.0.0.1",
    ];
    let _dns = Dnsmasq::start_on(port, &records)
        .flatten()
        .expect("dnsmasq on the name server's port");
    let out = srv.ctl_json(&["queue", "flush"]);
    assert_eq!(out["flushed"], 1, "{out}");
    until("bob's copy", || far.new_mail("far.test", "bob").len() == 1);
    until("an empty queue", || srv.queue().is_empty());
}
