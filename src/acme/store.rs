//! ACME's files, all in the directory of `[tls] cert`: the certificate and its key (where `cert`
//! and `key` say), and the account (`acme-account.json`). Written mode 0600 to a temporary name
//! and renamed into place, so a reader sees the old file or the new one, never half of one.
//! Blocking `std::fs`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cert::{self, CertFacts};
use crate::config::Tls;

/// The account file: the directory it was made on, and instant-acme's credentials (its key).
#[derive(Serialize, Deserialize)]
pub struct AccountFile {
    pub directory: String,
    pub credentials: serde_json::Value,
}

/// Writes `bytes` to `path` (mode 0600) through a temporary file in the same directory.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("write", e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| fail("rename into place", e))
}

/// The facts of the certificate in place; `None` when it is missing or unreadable.
pub fn current(tls: &Tls) -> Option<CertFacts> {
    let pem = std::fs::read(&tls.cert).ok()?;
    cert::facts(&pem).ok()
}

/// The account made earlier on `directory`, if any.
pub fn account(tls: &Tls, directory: &str) -> Result<Option<serde_json::Value>, String> {
    let path = tls.acme_account();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: AccountFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not an account file ({e}); move it away and a new account is made",
            path.display()
        )
    })?;
    Ok((file.directory == directory).then_some(file.credentials))
}

pub fn save_account(
    tls: &Tls,
    directory: &str,
    credentials: serde_json::Value,
) -> Result<(), String> {
    let file = AccountFile {
        directory: directory.to_string(),
        credentials,
    };
    let text = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    write_private(&tls.acme_account(), &text)
}

/// Puts the new key, then the new certificate, in place.
pub fn save_certificate(tls: &Tls, cert_pem: &str, key_pem: &str) -> Result<(), String> {
    write_private(&tls.key, key_pem.as_bytes())?;
    write_private(&tls.cert, cert_pem.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_are_private_and_accounts_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls {
            cert: dir.path().join("tls/cert.pem"),
            key: dir.path().join("tls/key.pem"),
            acme: true,
            ..Tls::default()
        };
        assert_eq!(account(&tls, "https://a/dir").unwrap(), None);
        save_account(&tls, "https://a/dir", serde_json::json!({"id": "x"})).unwrap();
        assert_eq!(
            account(&tls, "https://a/dir").unwrap(),
            Some(serde_json::json!({"id": "x"}))
        );
        assert_eq!(account(&tls, "https://b/dir").unwrap(), None, "another CA");
        let ck = rcgen::generate_simple_self_signed(vec!["m.example.test".into()]).unwrap();
        save_certificate(&tls, &ck.cert.pem(), &ck.signing_key.serialize_pem()).unwrap();
        for p in [tls.cert.clone(), tls.key.clone(), tls.acme_account()] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        assert_eq!(current(&tls).unwrap().names, ["m.example.test"]);
        std::fs::write(tls.acme_account(), "garbage").unwrap();
        let e = account(&tls, "https://a/dir").unwrap_err();
        assert!(e.contains("acme-account.json"), "{e}");
    }
}
