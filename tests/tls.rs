//! TLS and authentication against the real smtpd (self-signed certificate made at start):
//! Python smtplib/poplib/ssl, swaks, curl, msmtp, fetchmail, smtp-send; the STARTTLS/STLS
//! injection defence; AUTH before TLS from a non-loopback peer; Thunderbird's exact sequences;
//! the submission rules.
mod common;
use common::*;
use std::process::Command;

const ALICE: &str = "alice@example.test";

fn server() -> Server {
    Server::start_with(Overrides::new().tls(&[ALICE]))
}

fn flow(srv: &Server, name: &str, protocol: &str, args: &[&str]) {
    let addr = srv.addr(protocol);
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/tls_flows.py"
        ))
        .args([name, &addr.ip().to_string(), &addr.port().to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success() && stdout(&out).trim_end().ends_with("ok"),
        "{name}: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn received_with(path: &std::path::Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    text.split(" with ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_string()
}

/// smtplib: STARTTLS + login on the submission port, and implicit TLS + login on submissions.
#[test]
fn python_smtplib_starttls_and_implicit_tls() {
    if !have("python3") {
        return;
    }
    let srv = server();
    flow(
        &srv,
        "smtplib-starttls",
        "submission",
        &[ALICE, PASSWORD, "bob@example.test"],
    );
    flow(
        &srv,
        "smtplib-ssl",
        "submissions",
        &[ALICE, PASSWORD, "carol@example.test"],
    );
    let bob = srv.new_mail("example.test", "bob");
    assert_eq!(received_with(&bob[0]), "ESMTPSA");
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1);
}

/// The certificate is made once, at first start, for the hostname (and kept).
#[test]
fn self_signed_certificate_is_made_and_kept() {
    let srv = server();
    let cert = srv.dir.path().join("tls/cert.pem");
    let key = srv.dir.path().join("tls/key.pem");
    assert!(
        std::fs::read_to_string(&cert)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&cert).unwrap();
    let v = srv.ctl_json(&["reload"]);
    assert_eq!(v["applied"], true, "{v}");
    assert_eq!(std::fs::read(&cert).unwrap(), before);
}

fn cert_hash(srv: &Server) -> String {
    let addr = srv.addr("submissions");
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/tls_flows.py"
        ))
        .args(["certhash", &addr.ip().to_string(), &addr.port().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().next().unwrap_or("").to_string()
}

/// SIGHUP/reload re-reads the certificate: new sessions get the new one.
#[test]
fn certificate_reloaded() {
    if !have("python3") {
        return;
    }
    let srv = server();
    let before = cert_hash(&srv);
    assert_eq!(before.len(), 64);
    std::fs::remove_file(srv.dir.path().join("tls/cert.pem")).unwrap();
    std::fs::remove_file(srv.dir.path().join("tls/key.pem")).unwrap();
    let v = srv.ctl_json(&["reload"]);
    assert_eq!(v["applied"], true, "{v}");
    assert_ne!(cert_hash(&srv), before);
    // A broken certificate is refused and the running one stays.
    std::fs::write(srv.dir.path().join("tls/cert.pem"), b"not a certificate").unwrap();
    let out = srv.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("[tls] cert"), "{}", stdout(&out));
    assert_eq!(cert_hash(&srv).len(), 64);
}

/// swaks: STARTTLS (--tls) and implicit TLS (--tlsc), with AUTH PLAIN and LOGIN.
#[test]
fn swaks_tls_and_tlsc_with_plain_and_login() {
    if !have("swaks") {
        return;
    }
    let srv = server();
    let mut n = 0;
    for (mode, protocol) in [("--tls", "submission"), ("--tlsc", "submissions")] {
        for mech in ["PLAIN", "LOGIN"] {
            n += 1;
            let addr = srv.addr(protocol);
            let out = Command::new("swaks")
                .args([
                    "--server",
                    &addr.ip().to_string(),
                    "--port",
                    &addr.port().to_string(),
                ])
                .args([
                    mode,
                    "--auth",
                    mech,
                    "--auth-user",
                    ALICE,
                    "--auth-password",
                    PASSWORD,
                ])
                .args([
                    "--from",
                    ALICE,
                    "--to",
                    "bob@example.test",
                    "--timeout",
                    "20",
                ])
                .output()
                .unwrap();
            let t = stdout(&out);
            assert!(
                out.status.success(),
                "swaks {mode} {mech}:\n{t}{}",
                stderr(&out)
            );
            assert!(t.contains("235 2.7.0"), "{t}");
            if mech == "LOGIN" {
                assert!(
                    t.contains("334 VXNlcm5hbWU6") && t.contains("334 UGFzc3dvcmQ6"),
                    "{t}"
                );
            }
            assert_eq!(srv.new_mail("example.test", "bob").len(), n);
        }
    }
}

/// curl: smtps://, smtp:// with --ssl-reqd, and pop3s://.
#[test]
fn curl_smtps_starttls_and_pop3s() {
    if !have("curl") {
        return;
    }
    let srv = server();
    let user = format!("{ALICE}:{PASSWORD}");
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(&msg, b"Subject: curl\r\n\r\nvia curl\r\n").unwrap();
    for (url, protocol) in [("smtps", "submissions"), ("smtp", "submission")] {
        let addr = srv.addr(protocol);
        let out = Command::new("curl")
            .args([
                "-sS",
                "-k",
                "--ssl-reqd",
                "--max-time",
                "20",
                "--user",
                &user,
            ])
            .args([
                "--mail-from",
                ALICE,
                "--mail-rcpt",
                "bob@example.test",
                "-T",
            ])
            .arg(&msg)
            .arg(format!("{url}://{addr}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", stderr(&out));
    }
    assert_eq!(srv.new_mail("example.test", "bob").len(), 2);
    srv.deliver(ALICE, b"Subject: for pop3s\r\n\r\nhello\r\n");
    let addr = srv.addr("pop3s");
    let out = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20", "--user", &user])
        .arg(format!("pop3s://{addr}/1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Subject: for pop3s"));
}

/// msmtp with tls on (STARTTLS) and auth on.
#[test]
fn msmtp_tls_and_auth() {
    if !have("msmtp") {
        return;
    }
    let srv = server();
    let addr = srv.addr("submission");
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("msmtprc");
    std::fs::write(
        &rc,
        format!(
            "account lab\nhost {}\nport {}\ntls on\ntls_starttls on\ntls_certcheck off\nauth on\nuser {ALICE}\npassword {PASSWORD}\nfrom {ALICE}\naccount default : lab\n",
            addr.ip(),
            addr.port()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("600").arg(&rc).status().unwrap();
    let mut child = Command::new("msmtp")
        .arg("-C")
        .arg(&rc)
        .arg("bob@example.test")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"From: alice@example.test\nSubject: msmtp\n\nvia msmtp\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let bob = srv.new_mail("example.test", "bob");
    assert_eq!(bob.len(), 1);
    assert_eq!(received_with(&bob[0]), "ESMTPSA");
}

/// fetchmail over implicit TLS (pop3s).
#[test]
fn fetchmail_ssl() {
    if !have("fetchmail") {
        return;
    }
    let srv = server();
    srv.deliver(ALICE, b"Subject: via pop3s\r\n\r\nfetched over TLS\r\n");
    let got = fetchmail(srv.addr("pop3s"), ALICE, PASSWORD, "ssl no sslcertck");
    assert!(
        got.contains("Subject: via pop3s") && got.contains("fetched over TLS"),
        "{got}"
    );
}

/// CVE-2011-0411: a command sent with STARTTLS/STLS in the same write is never answered or
/// applied, for SMTP and POP3.
#[test]
fn starttls_and_stls_injection() {
    if !have("python3") {
        return;
    }
    let srv = server();
    flow(&srv, "smtp-inject", "smtp", &[]);
    flow(&srv, "smtp-inject", "submission", &[]);
    flow(&srv, "pop3-inject", "pop3", &[ALICE, PASSWORD]);
}

/// Thunderbird's SMTP and POP3 sequences, replayed line for line.
#[test]
fn thunderbird_sequences() {
    if !have("python3") {
        return;
    }
    let srv = server();
    flow(
        &srv,
        "thunderbird-smtp",
        "submission",
        &[ALICE, PASSWORD, ALICE],
    );
    let stored = srv.new_mail("example.test", "alice");
    assert_eq!(stored.len(), 1);
    let text = std::fs::read_to_string(&stored[0]).unwrap();
    assert!(text.contains("Bonjour, été."));
    assert!(
        text.contains("\nDate: ") && text.contains("\nMessage-ID: <"),
        "added by submission: {text}"
    );
    flow(&srv, "thunderbird-pop3", "pop3", &[ALICE, PASSWORD]);
    let md = srv.root().join("example.test/alice");
    srv.log.wait_for("pop3 session end");
    assert_eq!(list(&md.join("new")).len() + list(&md.join("cur")).len(), 0);
    srv.deliver(ALICE, b"Subject: x\r\n\r\ny\r\n");
    flow(&srv, "pop3s", "pop3s", &[ALICE, PASSWORD]);
}

/// From a non-loopback peer: AUTH is neither offered nor accepted before TLS (538 5.7.11); after
/// STARTTLS it works.
#[test]
fn auth_before_tls_refused_for_non_loopback_peer() {
    if !have("python3") {
        return;
    }
    let Some(ns) = NetNs::new("tls", "10.254.77.3") else {
        return;
    };
    let o = Overrides::new()
        .tls(&[ALICE])
        .set("smtp", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set("smtp", "submission", &format!("[\"{}:0\"]", ns.addr))
        .set("smtp", "submissions", "[]")
        .set("pop3", "listen", "[]")
        .set("pop3", "pop3s", "[]");
    let srv = Server::start_wrapped(o, &ns.wrapper());
    let addr = srv.addr("submission");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/tls_flows.py");
    let out = ns.run(
        "python3",
        &[
            script,
            "remote-auth",
            &addr.ip().to_string(),
            &addr.port().to_string(),
            ALICE,
            PASSWORD,
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// Submission: AUTH before MAIL (530 5.7.0), the sender must be the login (553), the login may
/// send to any domain (direct delivery), and Date/Message-ID are added when missing.
#[test]
fn submission_rules() {
    let srv = server();
    let mut c = Client::connect(srv.addr("submission"));
    c.expect(220);
    c.cmd("EHLO client.test");
    let r = c.cmd("MAIL FROM:<alice@example.test>");
    assert_eq!(r.code, 530, "{r:?}");
    assert!(r.lines[0].starts_with("5.7.0"));
    let ir = smtpd::proto::sasl::encode_plain(ALICE, PASSWORD);
    assert_eq!(c.cmd(&format!("AUTH PLAIN {ir}")).code, 235);
    assert_eq!(c.cmd("AUTH PLAIN x").code, 503, "not twice");
    let r = c.cmd("MAIL FROM:<bob@example.test>");
    assert_eq!(r.code, 553, "{r:?}");
    assert_eq!(c.cmd("MAIL FROM:<alice@example.test>").code, 250);
    let r = c.cmd("RCPT TO:<someone@elsewhere.test>");
    assert_eq!(r.code, 250, "{r:?}");
    // Not sent: this test does no DNS.
    assert_eq!(c.cmd("RSET").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: bare\r\n\r\nno date, no id\r\n.\r\n");
    c.expect(250);
    let stored = std::fs::read_to_string(&srv.new_mail("example.test", "bob")[0]).unwrap();
    assert!(stored.contains("with ESMTPA id"), "{stored}");
    let after_trace = stored.split("\nSubject: bare").next().unwrap();
    assert!(after_trace.contains("\nDate: "), "{stored}");
    assert!(after_trace.contains("\nMessage-ID: <"), "{stored}");
    assert!(stored.ends_with("Subject: bare\n\nno date, no id\n"));
    // A wrong password: 535 5.7.8, same for an unknown user.
    let mut c = Client::connect(srv.addr("submission"));
    c.expect(220);
    let bad = smtpd::proto::sasl::encode_plain(ALICE, "wrong");
    assert_eq!(c.cmd(&format!("AUTH PLAIN {bad}")).code, 535);
    let nobody = smtpd::proto::sasl::encode_plain("nobody@example.test", PASSWORD);
    let r = c.cmd(&format!("AUTH PLAIN {nobody}"));
    assert_eq!(
        (r.code, r.lines[0].as_str()),
        (535, "5.7.8 Authentication credentials invalid")
    );
}

/// smtp-send --starttls / --tls with --auth (password from SMTP_PASSWORD) and --cafile.
#[test]
fn smtp_send_tls_and_auth() {
    let srv = server();
    let ca = srv.dir.path().join("tls/cert.pem");
    for (mode, protocol) in [("--starttls", "submission"), ("--tls", "submissions")] {
        let addr = srv.addr(protocol);
        let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
            .env("SMTP_PASSWORD", PASSWORD)
            .args([
                mode,
                "--cafile",
                ca.to_str().unwrap(),
                "--auth",
                ALICE,
                "-v",
            ])
            .args(["--from", ALICE, "--to", "bob@example.test", "--body", "tls"])
            .args(["127.0.0.1", &addr.port().to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(stdout(&out).contains("S: 235 2.7.0"));
        assert!(
            !stdout(&out).contains(PASSWORD)
                && !stdout(&out).contains(&smtpd::proto::sasl::encode_plain(ALICE, PASSWORD))
        );
    }
    assert_eq!(srv.new_mail("example.test", "bob").len(), 2);
    // Without --cafile or --insecure the self-signed certificate is refused: exit 3.
    let addr = srv.addr("submissions");
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .env("SMTP_PASSWORD", PASSWORD)
        .args([
            "--tls",
            "--auth",
            ALICE,
            "--from",
            ALICE,
            "--to",
            "bob@example.test",
            "--body",
            "x",
        ])
        .args(["127.0.0.1", &addr.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=<cn>` in `dir`: the usual self-signed
/// certificate (`CA:TRUE`, the name only in the CN). Returns (cert, key).
fn openssl_req_x509(dir: &std::path::Path, stem: &str, cn: &str) -> (String, String) {
    let cert = dir.join(format!("{stem}.pem")).display().to_string();
    let key = dir.join(format!("{stem}.key")).display().to_string();
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &cert,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", stderr(&out));
    (cert, key)
}

/// Issue 14: `smtp-send --starttls --cafile cert.pem` accepts a server whose certificate is the
/// one `openssl req -x509` makes (webpki alone says CaUsedAsEndEntity): the file's certificate
/// is pinned, and the host name is still checked (connecting by 127.0.0.1 is refused); another
/// self-signed certificate in --cafile is refused too (exit 3).
#[test]
fn smtp_send_cafile_pins_an_openssl_req_x509_certificate() {
    if !have("openssl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_req_x509(certs.path(), "server", "localhost");
    let (other, _) = openssl_req_x509(certs.path(), "other", "localhost");
    let srv = Server::start_with(
        Overrides::new()
            .set("tls", "cert", &format!("\"{cert}\""))
            .set("tls", "key", &format!("\"{key}\"")),
    );
    let port = srv.addr("smtp").port().to_string();
    let send = |cafile: &str, host: &str| {
        Command::new(env!("CARGO_BIN_EXE_smtp-send"))
            .args(["--starttls", "--cafile", cafile, "--from", ALICE])
            .args(["--to", "bob@example.test", "--body", "pinned", host, &port])
            .output()
            .unwrap()
    };
    let out = send(&cert, "localhost");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(srv.new_mail("example.test", "bob").len(), 1);
    let out = send(&cert, "127.0.0.1");
    assert_eq!(out.status.code(), Some(3), "wrong name: {}", stderr(&out));
    assert!(
        stderr(&out).contains("not valid for name"),
        "{}",
        stderr(&out)
    );
    let out = send(&other, "localhost");
    assert_eq!(out.status.code(), Some(3), "other cert: {}", stderr(&out));
    assert_eq!(srv.new_mail("example.test", "bob").len(), 1);
}

/// One shape of log lines for every protocol (issue 14): `... session start` with the listener,
/// `TLS established` or `TLS handshake failed` with how (implicit, STARTTLS, STLS), and
/// `... session end: REASON` with `tls=`. A failed handshake is a session with a start and an
/// end, not one bare line; a failed STLS ends as a TLS failure, not "write failed".
#[test]
fn session_log_lines_have_one_shape_for_tls() {
    use std::io::{Read, Write};
    if !have("python3") {
        return;
    }
    let srv = server();
    // STLS that works: established, and the end says tls=true.
    srv.deliver(ALICE, b"Subject: x\r\n\r\ny\r\n");
    flow(&srv, "thunderbird-pop3", "pop3", &[ALICE, PASSWORD]);
    let established = srv.log.wait_for("TLS established");
    assert!(established.contains("how=\"STLS\""), "{established}");
    let end = srv.log.wait_for("pop3 session end: closed");
    assert!(
        end.contains("tls=true") && end.contains("listener=pop3"),
        "{end}"
    );
    // Garbage where a TLS ClientHello belongs, on both implicit-TLS listeners and after STLS.
    let garbage = |protocol: &str, first: Option<&str>| {
        let mut c = std::net::TcpStream::connect(srv.addr(protocol)).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        if let Some(cmd) = first {
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf).unwrap(); // greeting
            c.write_all(cmd.as_bytes()).unwrap();
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"+OK"), "{:?}", &buf[..n]);
        }
        c.write_all(b"this is not a TLS ClientHello\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    };
    garbage("pop3s", None);
    srv.log.wait_for("pop3 session end: TLS handshake failed");
    garbage("submissions", None);
    let smtp_end = srv.log.wait_for("smtp session end: TLS handshake failed");
    assert!(
        smtp_end.contains("listener=submissions") && smtp_end.contains("tls=false"),
        "{smtp_end}"
    );
    garbage("pop3", Some("STLS\r\n"));
    srv.log
        .wait_count("pop3 session end: TLS handshake failed", 2);
    let all = srv.log.all();
    for how in ["implicit", "STLS"] {
        assert!(
            all.lines().any(
                |l| l.contains("TLS handshake failed") && l.contains(&format!("how=\"{how}\""))
            ),
            "no failed {how} handshake logged:\n{all}"
        );
    }
    assert!(all.contains("listener=pop3s") && all.contains("pop3 session start"));
    assert_eq!(all.matches("write failed").count(), 0, "{all}");
}
