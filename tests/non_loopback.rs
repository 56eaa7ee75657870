//! Rules that depend on the peer's address, seen from a non-loopback peer in a private network
//! namespace: plaintext POP3 login is refused there unless allow_insecure_auth is set.
mod common;
use common::*;

fn transcript(ns: &NetNs, port: u16, commands: &[&str]) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/pop3_transcript.py"
    );
    let host = ns.addr.to_string();
    let port = port.to_string();
    let mut args = vec![script, host.as_str(), port.as_str()];
    args.extend_from_slice(commands);
    let out = ns.run("python3", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
