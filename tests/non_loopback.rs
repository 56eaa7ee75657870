//! Rules that depend on the peer's address, seen from a non-loopback peer in a private network
//! namespace: plaintext POP3 login is refused there unless allow_insecure_auth is set; relaying
//! needs `[relay] networks` or AUTH.
mod common;
use common::*;

/// Runs tests/clients/`script` inside `ns` against `ns.addr`:`port` with `commands`; its
/// output (every reply line).
fn run_client(ns: &NetNs, script: &str, port: u16, commands: &[&str]) -> String {
    let script = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let (host, port) = (ns.addr.to_string(), port.to_string());
    let mut args = vec![script.as_str(), host.as_str(), port.as_str()];
    args.extend_from_slice(commands);
    let out = ns.run("python3", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn transcript(ns: &NetNs, port: u16, commands: &[&str]) -> String {
    run_client(ns, "pop3_transcript.py", port, commands)
}

fn start(ns: &NetNs, insecure: bool) -> Server {
    let o = Overrides::new()
        .pop3(&["alice@example.test"])
        .set("smtp", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set("pop3", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set(
            "pop3",
            "allow_insecure_auth",
            if insecure { "true" } else { "false" },
        );
    Server::start_wrapped(o, &ns.wrapper())
}

/// From a non-loopback peer without TLS: CAPA offers neither USER nor SASL, USER and AUTH PLAIN
/// are refused with [AUTH].
#[test]
fn plaintext_login_refused_for_non_loopback_peer() {
    if !have("python3") {
        return;
    }
    let Some(ns) = NetNs::new("pop3a", "10.254.77.1") else {
        return;
    };
    let srv = start(&ns, false);
    let port = srv.pop3.unwrap().port();
    let ir = smtpd::proto::sasl::encode_plain("alice@example.test", PASSWORD);
    let auth = format!("AUTH PLAIN {ir}");
    let out = transcript(
        &ns,
        port,
        &["CAPA", "USER alice@example.test", &auth, "QUIT"],
    );
    assert!(!out.contains("\nUSER\n") && !out.contains("SASL"), "{out}");
    let refusals = out
        .lines()
        .filter(|l| l.starts_with("-ERR [AUTH] Plaintext authentication disallowed"))
        .count();
    assert_eq!(refusals, 2, "{out}");
}

/// With allow_insecure_auth = true the same peer may log in.
#[test]
fn allow_insecure_auth_permits_it() {
    if !have("python3") {
        return;
    }
    let Some(ns) = NetNs::new("pop3b", "10.254.77.2") else {
        return;
    };
    let srv = start(&ns, true);
    let port = srv.pop3.unwrap().port();
    let pass = format!("PASS {PASSWORD}");
    let out = transcript(
        &ns,
        port,
        &["CAPA", "USER alice@example.test", &pass, "STAT", "QUIT"],
    );
    assert!(
        out.contains("\nUSER\n") && out.contains("\nSASL PLAIN\n"),
        "{out}"
    );
    assert!(out.contains("+OK Logged in: 0 messages"), "{out}");
    assert!(out.contains("+OK 0 0"), "{out}");
}

fn smtp_transcript(ns: &NetNs, port: u16, commands: &[&str]) -> String {
    run_client(ns, "smtp_transcript.py", port, commands)
}

/// Never an open relay (issue 15): with a route for far.test configured, a non-loopback peer
/// outside `[relay] networks` gets 550 5.7.1 for it on the plain listener, and on submission
/// without AUTH gets 530; once in `networks` (or after AUTH on submission) it may relay.
#[test]
fn relaying_needs_networks_or_auth_from_a_non_loopback_peer() {
    if !have("python3") {
        return;
    }
    let Some(ns) = NetNs::new("relay", "10.254.77.3") else {
        return;
    };
    let o = |networks: &str| {
        Overrides::new()
            .pop3(&["alice@example.test"])
            .set("smtp", "listen", &format!("[\"{}:0\"]", ns.addr))
            .set("smtp", "submission", &format!("[\"{}:0\"]", ns.addr))
            .set("smtp", "allow_insecure_auth", "true")
            .set("pop3", "listen", "[]")
            .set("relay", "routes", "{ \"far.test\" = \"127.0.0.1:9\" }")
            .set("relay", "networks", networks)
    };
    let relay = [
        "EHLO c",
        "MAIL FROM:<a@example.test>",
        "RCPT TO:<bob@far.test>",
        "QUIT",
    ];
    // Outside networks (the default: loopback only).
    let srv = Server::start_wrapped(o("[\"127.0.0.0/8\", \"::1/128\"]"), &ns.wrapper());
    let plain = smtp_transcript(&ns, srv.addr("smtp").port(), &relay);
    assert!(
        plain.contains("550 5.7.1 <bob@far.test>: Relay access denied"),
        "{plain}"
    );
    assert!(!plain.contains("250 2.1.5"), "{plain}");
    let submission = srv.addr("submission").port();
    let no_auth = smtp_transcript(&ns, submission, &relay);
    assert!(no_auth.contains("530 5.7.0"), "{no_auth}");
    let ir = smtpd::proto::sasl::encode_plain("alice@example.test", PASSWORD);
    let auth = format!("AUTH PLAIN {ir}");
    let with_auth = smtp_transcript(
        &ns,
        submission,
        &[
            "EHLO c",
            &auth,
            "MAIL FROM:<alice@example.test>",
            "RCPT TO:<bob@far.test>",
            "QUIT",
        ],
    );
    assert!(
        with_auth.contains("235 ") && with_auth.contains("250 2.1.5"),
        "{with_auth}"
    );
    drop(srv);
    // The same peer, once its network is listed, may relay on the plain listener.
    let srv = Server::start_wrapped(o("[\"10.254.77.0/24\"]"), &ns.wrapper());
    let listed = smtp_transcript(&ns, srv.addr("smtp").port(), &relay);
    assert!(listed.contains("250 2.1.5"), "{listed}");
}

/// IMAP from a non-loopback peer without TLS: LOGINDISABLED is advertised and LOGIN is refused
/// with [PRIVACYREQUIRED]; with `[imap] allow_insecure_auth = true` the same login works.
#[test]
fn imap_plaintext_login_refused_for_non_loopback_peer() {
    if !have("python3") {
        return;
    }
    let Some(ns) = NetNs::new("imap", "10.254.77.7") else {
        return;
    };
    const SCRIPT: &str = "import imaplib, sys\n\
        m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))\n\
        print('LOGINDISABLED' in m.capabilities)\n\
        try:\n    print(m.login(sys.argv[3], sys.argv[4])[0])\n\
        except imaplib.IMAP4.error as e:\n    print(e)\n";
    for insecure in [false, true] {
        let o = Overrides::new()
            .account("alice@example.test", PASSWORD)
            .set("smtp", "listen", &format!("[\"{}:0\"]", ns.addr))
            .set("imap", "listen", &format!("[\"{}:0\"]", ns.addr))
            .set(
                "imap",
                "allow_insecure_auth",
                if insecure { "true" } else { "false" },
            );
        let srv = Server::start_wrapped(o, &ns.wrapper());
        let port = srv.addr("imap").port().to_string();
        let host = ns.addr.to_string();
        let out = ns.run(
            "python3",
            &["-c", SCRIPT, &host, &port, "alice@example.test", PASSWORD],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if insecure {
            assert_eq!(
                text,
                "False\nOK\n",
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert!(
                text.starts_with("True\n") && text.contains("PRIVACYREQUIRED"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
