//! DKIM signing of mail sent out (issue 15): `smtpctl dkim-keygen` writes a key (0600, never
//! over an existing file) and prints its DNS record; a sender smtpd with `[dkim]` relays to a
//! receiver smtpd, and the signature found there is checked by an independent verifier,
//! Debian's python3-dkim (dkimpy), given the record dkim-keygen printed instead of DNS. RSA
//! and Ed25519, a tampered copy that must fail, mail of another domain left unsigned, a new
//! key taken on reload, and a key open to others refused by --check-config.
mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's python (python3-dkim and python3-nacl are Debian packages, not on another python's
/// path).
const PYTHON: &str = "/usr/bin/python3";

/// Whether dkimpy (with PyNaCl, for ed25519) can be run; under CI=true it must.
fn have_dkimpy() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import dkim, nacl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "python3-dkim and python3-nacl are required under CI=true (.ci/run installs them)"
            );
        }
        eprintln!(
            "SKIPPED: python3-dkim or python3-nacl is not installed (apt-get install python3-dkim python3-nacl)"
        );
    }
    ok
}

/// dkimpy's verdict on the topmost DKIM-Signature of `message` (made CRLF, as on the wire),
/// with `records` (name → TXT record) as its only DNS.
fn dkimpy_verifies(message: &[u8], records: &[(String, String)]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("message.eml");
    std::fs::write(&file, message).unwrap();
    let records: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .map(|(n, r)| (n.trim_end_matches('.').to_string(), r.clone().into()))
        .collect();
    let script = r#"
import json, sys, dkim
records = json.loads(sys.argv[2])
def dns(name, timeout=5):
    r = records.get(name.decode().rstrip(".").lower())
    return r.encode() if r is not None else None
m = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
print("PASS" if dkim.verify(m, dnsfunc=dns) else "FAIL")
"#;
    let out = Command::new(PYTHON)
        .args(["-c", script])
        .arg(&file)
        .arg(serde_json::Value::Object(records).to_string())
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && (text == "PASS" || text == "FAIL"),
        "dkimpy: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text == "PASS"
}

/// `smtpctl dkim-keygen DOMAIN --selector S --algorithm A --out DIR/...`: the key file and the
/// record, as the (name, text) of its TXT line (its quoted strings joined).
fn keygen(
    dir: &Path,
    domain: &str,
    selector: &str,
    algorithm: &str,
) -> (PathBuf, (String, String)) {
    let key = dir.join(format!("{domain}.{selector}.key"));
    let out = Command::new(smtpctl_bin())
        .args([
            "dkim-keygen",
            domain,
            "--selector",
            selector,
            "--algorithm",
            algorithm,
            "--out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", key.display());
    let zone = text
        .lines()
        .find(|l| l.contains("._domainkey."))
        .unwrap_or_else(|| panic!("no TXT line in {text}"));
    let (name, strings) = zone.split_once(" IN TXT ").unwrap();
    assert_eq!(name, format!("{selector}._domainkey.{domain}."));
    let parts: Vec<&str> = strings.split('"').skip(1).step_by(2).collect();
    assert!(parts.iter().all(|p| p.len() <= 255), "{zone}");
    let record = parts.concat();
    assert!(
        record.starts_with(&format!("v=DKIM1; k={algorithm}; p=")),
        "{record}"
    );
    let line = format!(
        "\"{domain}\" = {{ selector = \"{selector}\", key = \"{}\" }}",
        key.display()
    );
    assert!(text.contains(&format!("[dkim]\n{line}")), "{text}");
    (key, (name.to_string(), record))
}

fn receiver() -> Server {
    Server::start_with(Overrides::new().set("mailboxes", "domains", "[\"far.test\"]"))
}

/// The sender's config: far.test routed to `far`, and these `[dkim]` entries.
fn sender_config(far: &Server, dkim: &[(&str, &str, &Path)]) -> Overrides {
    let route = format!("{{ \"far.test\" = \"{}\" }}", far.addr("smtp"));
    let mut o = Overrides::new().set("relay", "routes", &route);
    for (domain, selector, key) in dkim {
        o = o.set(
            "dkim",
            &format!("\"{domain}\""),
            &format!(
                "{{ selector = \"{selector}\", key = \"{}\" }}",
                key.display()
            ),
        );
    }
    o
}

fn message(from: &str, n: usize) -> Vec<u8> {
    format!(
        "From: Sender <{from}>\r\nTo: bob@far.test\r\nSubject: signed {n}\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <dkim.{n}@example.test>\r\n\r\nfirst line\r\n..a dotted line\r\n  spaced   line  \r\n\r\nlast line {n}\r\n"
    )
    .into_bytes()
}

/// Sends `message(from, n)` from `from` to bob@far.test through `srv`, and returns the copy
/// the receiver stored (the `n`th message in bob's Maildir).
fn relay(srv: &Server, far: &Server, from: &str, n: usize) -> Vec<u8> {
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail(from, &["bob@far.test"], &message(from, n));
    assert_eq!(r.code, 250, "{r:?}");
    until("the relayed copy", || {
        far.new_mail("far.test", "bob").len() == n
    });
    let files = far.new_mail("far.test", "bob");
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .find(|m| String::from_utf8_lossy(m).contains(&format!("Subject: signed {n}")))
        .expect("the copy")
}

fn has_signature(m: &[u8], d: &str, s: &str, a: &str) -> bool {
    let text = String::from_utf8_lossy(m);
    let Some(sig) = text.split("DKIM-Signature: ").nth(1) else {
        return false;
    };
    let sig = sig.split("\nReceived:").next().unwrap_or("");
    sig.contains(&format!("a={a};"))
        && sig.contains(&format!("s={s};"))
        && sig.contains(&format!("d={d};"))
}

/// RSA for example.test, Ed25519 for ed.test: each relayed message carries its domain's
/// signature, which dkimpy verifies with the record dkim-keygen printed; the same copy with one
/// body line or the Subject changed fails; mail from a domain without an entry goes unsigned.
/// Then a new key (selector s2) put in the config is used from the reload on.
#[test]
fn relayed_mail_is_signed_and_verified_by_dkimpy() {
    let keys = tempfile::tempdir().unwrap();
    let (rsa, rsa_record) = keygen(keys.path(), "example.test", "s1", "rsa");
    let (ed, ed_record) = keygen(keys.path(), "ed.test", "e1", "ed25519");
    let far = receiver();
    let dkim = [
        ("example.test", "s1", rsa.as_path()),
        ("ed.test", "e1", ed.as_path()),
    ];
    let srv = Server::start_with(sender_config(&far, &dkim));
    let records = vec![rsa_record, ed_record];

    let signed = relay(&srv, &far, "alice@example.test", 1);
    assert!(
        has_signature(&signed, "example.test", "s1", "rsa-sha256"),
        "{}",
        String::from_utf8_lossy(&signed)
    );
    let ed_signed = relay(&srv, &far, "carol@ed.test", 2);
    assert!(
        has_signature(&ed_signed, "ed.test", "e1", "ed25519-sha256"),
        "{}",
        String::from_utf8_lossy(&ed_signed)
    );
    let unsigned = relay(&srv, &far, "dave@other.test", 3);
    assert!(!String::from_utf8_lossy(&unsigned).contains("DKIM-Signature:"));
    srv.log.wait_for("DKIM-signed");

    if !have_dkimpy() {
        return;
    }
    for m in [&signed, &ed_signed] {
        assert!(
            dkimpy_verifies(m, &records),
            "{}",
            String::from_utf8_lossy(m)
        );
        let text = String::from_utf8_lossy(m);
        let body = text.replace("last line", "last linE");
        assert!(
            !dkimpy_verifies(body.as_bytes(), &records),
            "a changed body verified"
        );
        let subject = text.replace("Subject: signed", "Subject: Signed");
        assert!(
            !dkimpy_verifies(subject.as_bytes(), &records),
            "a changed Subject verified"
        );
    }
    // Without the record (no DNS), nothing verifies: the record printed is what was used.
    assert!(!dkimpy_verifies(&signed, &records[1..]));

    // A new key under a new selector, taken on reload.
    let (rsa2, rsa2_record) = keygen(keys.path(), "example.test", "s2", "rsa");
    srv.rewrite_config(&sender_config(
        &far,
        &[
            ("example.test", "s2", rsa2.as_path()),
            ("ed.test", "e1", ed.as_path()),
        ],
    ));
    let out = srv.ctl(&["reload"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("dkim changed: example.test (selector s1 → s2)"),
        "{text}"
    );
    let after = relay(&srv, &far, "alice@example.test", 4);
    assert!(has_signature(&after, "example.test", "s2", "rsa-sha256"));
    assert!(dkimpy_verifies(&after, &[rsa2_record]));
}

/// dkim-keygen never overwrites a key: the second run fails, says why, and leaves the file.
#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "example.test", "s1", "ed25519");
    let before = std::fs::read(&key).unwrap();
    let out = Command::new(smtpctl_bin())
        .args(["dkim-keygen", "example.test", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("exists: not overwritten"), "{err}");
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

/// A key other users may read, or no key at all, is a configuration error at the entry's
/// line, naming the file and what to do; smtpd does not start.
#[test]
fn unusable_keys_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keygen(dir.path(), "example.test", "s1", "ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.path().join("none.key");
    let config = dir.path().join("smtpd.toml");
    let text = config_text(dir.path(), &Overrides::new());
    let text = format!(
        "{text}\n[dkim]\n\"example.test\" = {{ selector = \"s1\", key = \"{}\" }}\n\"b.test\" = {{ selector = \"s1\", key = \"{}\" }}\n",
        key.display(),
        missing.display()
    );
    std::fs::write(&config, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("\"example.test\""))
        .unwrap()
        + 1;
    for args in [&["--check-config"][..], &["--foreground"][..]] {
        let out = Command::new(smtpd_bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        let want = format!(
            "{}:{line}: `dkim` \"example.test\": the key file {} is open to other users (mode 0644)",
            config.display(),
            key.display()
        );
        assert!(err.contains(&want), "{want}\nin\n{err}");
        assert!(
            err.contains(&format!("`chmod 600 {}`", key.display())),
            "{err}"
        );
        let want = format!(
            "{}:{}: `dkim` \"b.test\": cannot read the key file {}",
            config.display(),
            line + 1,
            missing.display()
        );
        assert!(err.contains(&want), "{want}\nin\n{err}");
    }
}
