//! The `[dkim]` key files: read and parsed at start and on every reload (by the daemon and
//! `smtpd --check-config`, not by every reader of the config), each problem at its entry's line.
//!
//! A key that other users may read (or anyone but its owner may change) is refused, as ssh
//! refuses such private keys: whoever reads it can sign mail as the domain. Group read is
//! allowed, so a key may be owned by root and read by smtpd's group (0640), as after a
//! privilege drop.

use std::path::Path;

use super::{Config, ConfigError, Dkim, Problem};
use crate::dkim::Key;

impl Config {
    /// Reads the key of every `[dkim]` entry (relative paths against the working directory:
    /// call it before `chdir` or after [`Config::absolutize`]) and records it and its algorithm.
    pub fn read_dkim_keys(&mut self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        for (domain, entry) in &mut self.dkim {
            match read(domain, entry) {
                Ok(key) => {
                    entry.algorithm = Some(key.algorithm());
                    entry.signing_key = Some(key);
                }
                Err(message) => problems.push(Problem {
                    line: entry.line,
                    message,
                }),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                path: self.path.clone(),
                problems,
            })
        }
    }
}

/// What to run to make the entry's key.
fn keygen(domain: &str, entry: &Dkim) -> String {
    format!(
        "`smtpctl dkim-keygen {domain} --selector {} --out {}`",
        entry.selector,
        entry.key.display()
    )
}

fn read(domain: &str, entry: &Dkim) -> Result<Key, String> {
    let path = entry.key.as_path();
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "`dkim` \"{domain}\": cannot read the key file {shown}: {e}; make one with {}, or fix `key`",
            keygen(domain, entry)
        )
    })?;
    if let Some(mode) = open_to_others(path) {
        return Err(format!(
            "`dkim` \"{domain}\": the key file {shown} is open to other users (mode {mode:04o}), and whoever reads it can sign mail as {domain}: `chmod 600 {shown}` (or 640, with smtpd's group)"
        ));
    }
    let key = Key::from_pem(&bytes).map_err(|e| {
        format!(
            "`dkim` \"{domain}\": {shown} is not a usable DKIM key: {e}; make one with {}",
            keygen(domain, entry)
        )
    })?;
    if let Some(want) = entry.algorithm
        && want != key.algorithm()
    {
        return Err(format!(
            "`dkim` \"{domain}\": `algorithm` is \"{}\" but {shown} holds an {} key ({}): remove `algorithm`, or point `key` at an {} key",
            want.key_type(),
            key.algorithm().key_name(),
            key.algorithm().signature_name(),
            want.key_name(),
        ));
    }
    Ok(key)
}

/// The file's mode when others may read or write it, or its group may write it.
fn open_to_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o027 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use crate::dkim::Algorithm;

    const RSA: &str = include_str!("../dkim/testdata/rsa2048-pkcs1.pem");
    const ED25519: &str = include_str!("../dkim/testdata/ed25519-openssl.pem");

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    }

    /// Good keys are read and their algorithm recorded; every bad one is reported at its
    /// entry's line with the file and what to do.
    #[test]
    fn keys_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let rsa = write(d, "rsa.key", RSA, 0o600);
        let ed = write(d, "ed.key", ED25519, 0o640);
        let open = write(d, "open.key", ED25519, 0o644);
        let junk = write(d, "junk.key", "junk\n", 0o600);
        let missing = d.join("missing.key").display().to_string();
        let text = format!(
            "hostname = \"mx.test\"\n[dkim]\n\"a.test\" = {{ selector = \"s1\", key = \"{rsa}\" }}\n\"b.test\" = {{ selector = \"s1\", key = \"{ed}\", algorithm = \"ed25519\" }}\n"
        );
        let mut c = crate::config::parse(&text, Path::new("t.toml")).unwrap();
        c.read_dkim_keys().unwrap();
        assert_eq!(c.dkim["a.test"].algorithm, Some(Algorithm::Rsa));
        assert_eq!(
            c.dkim["b.test"].signing_key.as_ref().map(|k| k.algorithm()),
            Some(Algorithm::Ed25519)
        );
        let text = format!(
            "hostname = \"mx.test\"\n[dkim]\n\"a.test\" = {{ selector = \"s1\", key = \"{missing}\" }}\n\"b.test\" = {{ selector = \"s1\", key = \"{open}\" }}\n\"c.test\" = {{ selector = \"s1\", key = \"{junk}\" }}\n\"d.test\" = {{ selector = \"s1\", key = \"{rsa}\", algorithm = \"ed25519\" }}\n"
        );
        let mut c = crate::config::parse(&text, Path::new("t.toml")).unwrap();
        let e = c.read_dkim_keys().unwrap_err();
        let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5, 6], "{e}");
        let text = e.to_string();
        for want in [
            format!("t.toml:3: `dkim` \"a.test\": cannot read the key file {missing}: "),
            format!(
                "make one with `smtpctl dkim-keygen a.test --selector s1 --out {missing}`, or fix `key`"
            ),
            format!("the key file {open} is open to other users (mode 0644)"),
            format!("`chmod 600 {open}`"),
            format!("t.toml:5: `dkim` \"c.test\": {junk} is not a usable DKIM key: no PEM"),
            format!(
                "`algorithm` is \"ed25519\" but {rsa} holds an RSA key (rsa-sha256): remove `algorithm`, or point `key` at an Ed25519 key"
            ),
        ] {
            assert!(text.contains(&want), "{want}\nin\n{text}");
        }
    }
}
