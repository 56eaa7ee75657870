//! `[tls] acme = true` against Let's Encrypt's test CA, Debian's `pebble`, on loopback. Pebble
//! validates HTTP-01 for real: its `httpPort` is smtpd's `[http]` port, and it resolves
//! `mail.acme.test` through a dnsmasq on loopback (`-dnsserver`), so the challenge answer is
//! fetched from smtpd's listener (no `PEBBLE_VA_ALWAYS_VALID`). Python's ssl then verifies the
//! certificate against pebble's root (from its management API) on SMTP STARTTLS, submissions,
//! POP3S and IMAPS; a forced renewal swaps it on the live listeners without dropping a session in
//! DATA; with pebble down the old certificate stays and `smtpctl tls` shows the error, and once
//! pebble is back (a new CA: a new account is made) a retry succeeds.
//!
//! Skipped with a printed reason when pebble, dnsmasq or python3 is missing; under CI=true that
//! is a failure (.ci/run installs them).
mod common;
use common::*;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "mail.acme.test";

/// A TCP port that was free a moment ago (pebble cannot be told to pick one and report it).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

fn have_all() -> bool {
    let pebble = Path::new("/usr/bin/pebble").exists() || have("pebble");
    if !pebble {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("pebble is required under CI=true (.ci/run installs it)");
        }
        eprintln!("SKIPPED: pebble is not installed (apt-get install pebble)");
        return false;
    }
    if dnsmasq_bin().is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("dnsmasq is required under CI=true (.ci/run installs dnsmasq-base)");
        }
        eprintln!("SKIPPED: dnsmasq is not installed (apt-get install dnsmasq-base)");
        return false;
    }
    have("python3")
}

/// Pebble's own HTTPS certificate (for its ACME and management listeners): a test CA and a leaf
/// for 127.0.0.1, as its `test/certs` would be (Debian does not ship them).
struct PebbleTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pebble_tls(dir: &Path) -> PebbleTls {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pebble test minica");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let t = PebbleTls {
        ca: dir.join("pebble-minica.pem"),
        cert: dir.join("pebble-cert.pem"),
        key: dir.join("pebble-key.pem"),
    };
    std::fs::write(&t.ca, ca_cert.pem()).unwrap();
    std::fs::write(&t.cert, leaf.pem()).unwrap();
    std::fs::write(&t.key, key.serialize_pem()).unwrap();
    t
}

/// A running pebble; killed (by its PID) on drop.
struct Pebble {
    child: Child,
    log: PathBuf,
}

impl Pebble {
    /// Starts pebble with its config written here; ready once both its ports accept.
    /// `http01` and `tls01`: the ports it validates HTTP-01 and TLS-ALPN-01 on.
    fn start(
        dir: &Path,
        tls: &PebbleTls,
        (acme, mgmt): (u16, u16),
        (http01, tls01): (u16, u16),
        dns: u16,
    ) -> Pebble {
        let config = dir.join("pebble.json");
        let json = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{acme}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt}"),
                "certificate": tls.cert,
                "privateKey": tls.key,
                "httpPort": http01,
                "tlsPort": tls01,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        std::fs::write(&config, json.to_string()).unwrap();
        let log = dir.join("pebble.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(format!("127.0.0.1:{dns}"))
            .arg("-strict=false")
            // No random waits before validating, and no nonces refused at random: the test is
            // about smtpd, not about instant-acme's retries.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start pebble");
        let mut p = Pebble { child, log };
        let deadline = Instant::now() + WAIT;
        while !(accepts(acme) && accepts(mgmt)) {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("pebble exited ({status}): {}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "pebble is not listening: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Pebble's current root (it makes a new one at each start), from its management API.
fn pebble_root(tls: &PebbleTls, mgmt: u16, out: &Path) {
    let script = "import ssl,sys,urllib.request\n\
        ctx = ssl.create_default_context(cafile=sys.argv[1])\n\
        pem = urllib.request.urlopen(sys.argv[2], context=ctx, timeout=10).read()\n\
        open(sys.argv[3], 'wb').write(pem)\n";
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&tls.ca)
        .arg(format!("https://127.0.0.1:{mgmt}/roots/0"))
        .arg(out)
        .output()
        .expect("python3");
    assert!(o.status.success(), "fetching pebble's root: {}", stderr(&o));
}

/// Python's ssl on each listener, verifying `NAME` against `root`: one line per listener,
/// `KIND SERIAL ISSUER` or `KIND ERROR ...`.
const VERIFY: &str = r#"
import socket, ssl, sys
root, name = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=root)
def line(f):
    s = f.readline()
    if not s:
        raise EOFError("closed")
    return s
for spec in sys.argv[3:]:
    kind, port = spec.split("=")
    try:
        raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        if kind in ("smtp", "submission"):
            f = raw.makefile("rb")
            line(f)
            raw.sendall(b"EHLO test.example\r\n")
            while not line(f)[3:4] == b" ":
                pass
            raw.sendall(b"STARTTLS\r\n")
            assert line(f).startswith(b"220"), "STARTTLS refused"
        s = ctx.wrap_socket(raw, server_hostname=name)
        c = s.getpeercert()
        issuer = dict(x[0] for x in c["issuer"]).get("commonName", "?")
        print(kind, c["serialNumber"], issuer.replace(" ", "_"))
        s.close()
    except Exception as e:
        print(kind, "ERROR", type(e).__name__, str(e).replace("\n", " "))
"#;

/// `kind → serial` on every TLS listener, each verified against `root`; panics on an error.
fn serials(server: &Server, root: &Path) -> Vec<(String, String)> {
    let mut args = vec![root.display().to_string(), NAME.to_string()];
    for kind in ["smtp", "submission", "submissions", "pop3s", "imaps"] {
        args.push(format!("{kind}={}", server.addr(kind).port()));
    }
    let o = Command::new("python3")
        .arg("-c")
        .arg(VERIFY)
        .args(&args)
        .output()
        .expect("python3");
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let mut got = Vec::new();
    for l in out.lines() {
        let parts: Vec<&str> = l.splitn(3, ' ').collect();
        assert!(
            parts.len() == 3 && parts[1] != "ERROR",
            "verification failed: {l}"
        );
        got.push((parts[0].to_string(), parts[1].to_string()));
    }
    assert_eq!(got.len(), 5, "{out}");
    got
}

/// One serial across all listeners.
fn one_serial(s: &[(String, String)]) -> String {
    assert!(
        s.iter().all(|(_, x)| *x == s[0].1),
        "listeners differ: {s:?}"
    );
    s[0].1.clone()
}

/// `openssl s_client` on `port` (`starttls`: its -starttls protocol), verifying NAME against
/// `root`: its output. `None` without openssl (a failure under CI=true).
fn openssl_verify(port: u16, starttls: Option<&str>, root: &Path) -> Option<String> {
    if !have("openssl") {
        return None;
    }
    let mut c = Command::new("openssl");
    c.args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            NAME,
            "-verify_hostname",
            NAME,
            "-verify_return_error",
        ])
        .arg("-CAfile")
        .arg(root)
        .stdin(Stdio::null());
    if let Some(p) = starttls {
        c.args(["-starttls", p]);
    }
    let o = c.output().expect("openssl");
    Some(format!("{}{}", stdout(&o), stderr(&o)))
}

/// `[tls] acme = true` for NAME against the pebble on `acme_port` (certificate files under
/// `dir/acme`); the listeners are each test's.
fn acme_overrides(dir: &Path, acme_port: u16, ptls: &PebbleTls) -> Overrides {
    let d = dir.display();
    Overrides::new()
        .set("", "hostname", &format!("\"{NAME}\""))
        .set("tls", "cert", &format!("\"{d}/acme/cert.pem\""))
        .set("tls", "key", &format!("\"{d}/acme/key.pem\""))
        .set("tls", "acme", "true")
        .set(
            "tls",
            "acme_directory",
            &format!("\"https://127.0.0.1:{acme_port}/dir\""),
        )
        .set("tls", "acme_cafile", &format!("\"{}\"", ptls.ca.display()))
}

fn tls_json(server: &Server) -> serde_json::Value {
    server.ctl_json(&["tls"])
}

#[test]
fn acme_certificate_from_pebble_obtained_renewed_and_kept_when_the_ca_is_down() {
    if !have_all() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // mail.acme.test and every other name under acme.test.
    let dns = Dnsmasq::start(&["--address=/acme.test/127.0.0.1"]).expect("dnsmasq");
    let ptls = pebble_tls(dir);
    let (acme_port, mgmt_port) = (free_port(), free_port());
    let o = acme_overrides(dir, acme_port, &ptls)
        .set("smtp", "submission", "[\"127.0.0.1:0\"]")
        .set("smtp", "submissions", "[\"127.0.0.1:0\"]")
        .set("pop3", "pop3s", "[\"127.0.0.1:0\"]")
        .set("imap", "imaps", "[\"127.0.0.1:0\"]")
        .set("http", "listen", "[\"127.0.0.1:0\"]")
        .set("tls", "acme_email", "\"postmaster@acme.test\"");
    // smtpd first: its [http] port (bound by the OS) is pebble's httpPort. Its first attempts
    // fail (no CA yet) and are retried after 1 s, 2 s, ...
    let server = Server::start_env(o.clone(), &[("SMTPD_TEST_ACME_RETRY_SECS", "1")]);
    let http_port = server.addr("http").port();

    // Until the CA answers: the temporary self-signed certificate, and the error.
    let t = tls_json(&server);
    assert_eq!(t["acme"], true, "{t}");
    assert_eq!(t["names"], serde_json::json!([NAME]), "{t}");
    until("the first failed attempt", || {
        !tls_json(&server)["last_error"].is_null()
    });
    let t = tls_json(&server);
    assert_eq!(t["temporary"], true, "{t}");
    let e = t["last_error"].as_str().unwrap();
    assert!(e.contains(&format!("127.0.0.1:{acme_port}")), "{e}");

    let ports = (acme_port, mgmt_port);
    let mut pebble = Pebble::start(dir, &ptls, ports, (http_port, free_port()), dns.port);
    let root = dir.join("root.pem");
    pebble_root(&ptls, mgmt_port, &root);
    until_within(Duration::from_secs(90), "a certificate from pebble", || {
        !tls_json(&server)["last_success"].is_null()
    });
    let t = tls_json(&server);
    assert_eq!(t["temporary"], false, "{t}");
    assert!(t["last_error"].is_null(), "{t}");
    assert!(t["issuer"].as_str().unwrap().contains("Pebble"), "{t}");
    assert!(t["next_renewal"].as_u64().unwrap() < t["not_after"].as_u64().unwrap());
    // Pebble fetched the answer from smtpd's [http] listener over the name dnsmasq resolved.
    assert!(
        dns.log().contains(NAME),
        "pebble did not look {NAME} up: {}",
        dns.log()
    );
    for f in ["acme/cert.pem", "acme/key.pem", "acme/acme-account.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let first = one_serial(&serials(&server, &root));
    for (kind, starttls) in [("submission", Some("smtp")), ("imaps", None)] {
        if let Some(out) = openssl_verify(server.addr(kind).port(), starttls, &root) {
            assert!(out.contains("Verify return code: 0 (ok)"), "{kind}: {out}");
        }
    }
    let human = stdout(&server.ctl(&["tls"]));
    assert!(human.contains("issuer:       CN=Pebble"), "{human}");
    eprintln!("smtpctl tls:\n{human}");
    eprintln!("smtpctl status:\n{}", stdout(&server.ctl(&["status"])));
    let status = server.ctl_json(&["status"]);
    assert_eq!(
        status["tls"]["names"],
        serde_json::json!([NAME]),
        "{status}"
    );
    let metrics = stdout(&server.ctl(&["metrics"]));
    assert!(
        metrics.contains("smtpd_tls_certificate_not_after_seconds ")
            && metrics.contains("smtpd_acme_failures 0"),
        "{metrics}"
    );

    // A session in DATA across a forced renewal: it finishes, and every listener has the new
    // certificate.
    let mut c = server.connect();
    c.expect(220);
    c.cmd("EHLO live.example");
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: across a renewal\r\n\r\nfirst half\r\n");
    let renew = server.ctl(&["tls", "renew"]);
    assert!(
        renew.status.success(),
        "{}{}",
        stdout(&renew),
        stderr(&renew)
    );
    assert!(stdout(&renew).contains("renewed"), "{}", stdout(&renew));
    c.send(b"second half\r\n.\r\n");
    assert_eq!(c.expect(250).code, 250);
    c.cmd("QUIT");
    let second = one_serial(&serials(&server, &root));
    assert_ne!(first, second, "the renewal swapped the certificate");

    // The CA goes away: the renewal fails with a clear error, the certificate stays.
    pebble.stop();
    let failed = server.ctl(&["tls", "renew"]);
    assert!(!failed.status.success());
    let why = stderr(&failed);
    assert!(
        why.contains("renewal failed") && why.contains(&format!("127.0.0.1:{acme_port}")),
        "{why}"
    );
    assert_eq!(one_serial(&serials(&server, &root)), second, "old one kept");
    let t = tls_json(&server);
    assert!(
        t["last_error"].as_str().unwrap().contains("ACME server"),
        "{t}"
    );
    assert!(t["failures"].as_u64().unwrap() >= 1, "{t}");
    let human = stdout(&server.ctl(&["tls"]));
    assert!(
        human.contains("last error:") && human.contains("ACME server"),
        "{human}"
    );
    eprintln!("smtpctl tls with the CA down:\n{human}\n{why}");

    // Back (a new pebble: new root, and it knows no account): the retry succeeds.
    let pebble2 = Pebble::start(dir, &ptls, ports, (http_port, free_port()), dns.port);
    let root2 = dir.join("root2.pem");
    pebble_root(&ptls, mgmt_port, &root2);
    until_within(
        Duration::from_secs(90),
        "the retry with pebble back",
        || tls_json(&server)["last_error"].is_null(),
    );
    let third = one_serial(&serials(&server, &root2));
    assert_ne!(third, second);
    assert!(
        server.log.all().contains("making a new one"),
        "a new account for the new CA"
    );

    // A reload that adds a name: the loop sees it and gets a certificate for both.
    let more = o.set(
        "tls",
        "acme_names",
        &format!("[\"{NAME}\", \"smtp.acme.test\"]"),
    );
    server.rewrite_config(&more);
    let reload = server.ctl(&["reload"]);
    assert!(reload.status.success(), "{}", stderr(&reload));
    until_within(
        Duration::from_secs(90),
        "a certificate for both names",
        || {
            let t = tls_json(&server);
            // In the order the CA put them in.
            let mut names: Vec<&str> = t["names"]
                .as_array()
                .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
                .unwrap_or_default();
            names.sort_unstable();
            names == [NAME, "smtp.acme.test"] && t["last_error"].is_null()
        },
    );
    assert_ne!(one_serial(&serials(&server, &root2)), third);
    drop(pebble2);
}

/// TLS-ALPN-01 (RFC 8737): without an [http] listener `auto` answers the CA on the implicit-TLS
/// listeners. Pebble's `tlsPort` is smtpd's submissions port and its HTTP-01 port has nobody
/// behind it, so the certificate comes only if the `acme-tls/1` handshake is answered right
/// (pebble checks the acmeIdentifier digest for real); ordinary clients on that port meanwhile
/// get the listener's certificate and their sessions as always, and once the order is done
/// `acme-tls/1` is refused.
#[test]
fn acme_tls_alpn_01_on_an_implicit_tls_listener() {
    if !have_all() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let dns = Dnsmasq::start(&["--address=/acme.test/127.0.0.1"]).expect("dnsmasq");
    let ptls = pebble_tls(dir);
    let ports = (free_port(), free_port());
    let o = acme_overrides(dir, ports.0, &ptls)
        .set("smtp", "submissions", "[\"127.0.0.1:0\"]")
        .set("imap", "imaps", "[\"127.0.0.1:0\"]");
    let server = Server::start_env(o, &[("SMTPD_TEST_ACME_RETRY_SECS", "1")]);
    let port = server.addr("submissions").port();
    let pebble = Pebble::start(dir, &ptls, ports, (free_port(), port), dns.port);
    let root = dir.join("root.pem");
    pebble_root(&ptls, ports.1, &root);
    // Ordinary clients of the port all along, before, while and after the order runs: each
    // gets a certificate and its SMTP session, whatever the ACME client is doing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ordinary = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sessions = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ordinary_session(port);
                sessions += 1;
                // Pacing, not waiting: leave the two cores to smtpd and pebble.
                std::thread::sleep(Duration::from_millis(20));
            }
            sessions
        })
    };
    until_within(
        Duration::from_secs(90),
        "a certificate by TLS-ALPN-01",
        || !tls_json(&server)["last_success"].is_null(),
    );
    let t = tls_json(&server);
    assert!(t["issuer"].as_str().unwrap().contains("Pebble"), "{t}");
    for kind in ["submissions", "imaps"] {
        if let Some(out) = openssl_verify(server.addr(kind).port(), None, &root) {
            assert!(out.contains("Verify return code: 0 (ok)"), "{kind}: {out}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sessions = ordinary
        .join()
        .expect("every ordinary session went through");
    eprintln!("{sessions} ordinary TLS sessions on the port while the certificate was obtained");
    assert!(sessions > 0);
    // The validation reached the acme-tls/1 answer (nothing listens on pebble's HTTP-01 port).
    server
        .log
        .wait_for(&format!("ACME TLS-ALPN-01 validation answered for {NAME}"));
    assert_eq!(
        server.log.count("TLS handshake failed"),
        0,
        "{}",
        server.log.all()
    );
    // With the order done, acme-tls/1 is refused (an alert, no certificate) rather than answered
    // with the listener's certificate.
    if have("openssl") {
        let o = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", NAME, "-alpn", "acme-tls/1"])
            .stdin(Stdio::null())
            .output()
            .expect("openssl");
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            out.contains("alert") && !out.contains("BEGIN CERTIFICATE"),
            "{out}"
        );
        server.log.wait_for(&format!(
            "ACME TLS-ALPN-01 handshake refused: ALPN acme-tls/1 for {NAME}"
        ));
    }
    drop(pebble);
}

/// One implicit-TLS SMTP session on `port` as an ordinary client has it (SNI NAME, no ALPN, any
/// certificate): the greeting, QUIT, 221.
fn ordinary_session(port: u16) {
    use std::io::{BufRead, BufReader, Write};
    let config = smtpd::net::tls::client_config(None, true).expect("client config");
    let name = rustls_pki_types::ServerName::try_from(NAME).expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let mut line = String::new();
    tls.read_line(&mut line).expect("the greeting over TLS");
    assert!(line.starts_with("220 "), "greeting: {line:?}");
    tls.get_mut().write_all(b"QUIT\r\n").expect("QUIT");
    line.clear();
    tls.read_line(&mut line).expect("the reply to QUIT");
    assert!(line.starts_with("221 "), "QUIT: {line:?}");
}

/// Without ACME, `smtpctl tls` shows the configured certificate and `tls renew` says ACME is
/// off; `--check-config` names the line of an `acme = true` that has no [http] listener.
#[test]
fn tls_without_acme_and_check_config() {
    let server = Server::start_with(Overrides::new().tls(&[]));
    let t = tls_json(&server);
    assert_eq!(t["acme"], false, "{t}");
    assert!(
        t["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "mx.example.test"),
        "{t}"
    );
    assert!(t["not_after"].as_u64().is_some(), "{t}");
    let renew = server.ctl(&["tls", "renew"]);
    assert!(!renew.status.success());
    assert!(stderr(&renew).contains("ACME is off"), "{}", stderr(&renew));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smtpd.toml");
    std::fs::write(
        &config,
        "hostname = \"mail.acme.test\"\n\n[tls]\nacme = true\nacme_names = [\"*.acme.test\"]\n",
    )
    .unwrap();
    let o = Command::new(smtpd_bin())
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    let path = config.display();
    assert!(
        err.contains(&format!("{path}:4: `tls.acme = true` answers")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{path}:5: `tls.acme_names`")),
        "{err}"
    );
}
