//! One message's DKIM-Signature: by the domain of its author (the From: address, as OpenDKIM
//! signs and as DMARC aligns), over the usual header fields, relaxed/relaxed.

use std::sync::Arc;

use mail_auth::common::crypto::{Algorithm as CryptoAlgorithm, DkimKey, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};

use super::key::Key;

/// The header fields signed when present (RFC 6376 5.4.1's list, without those a relay adds).
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "In-Reply-To",
    "References",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("DKIM signing failed: {0}")]
    Failed(String),
}

/// How mail from one domain is signed: `d=`, `s=` and the key.
#[derive(Clone, Debug, PartialEq)]
pub struct Signer {
    pub domain: String,
    pub selector: String,
    pub key: Key,
}

/// The shared key as mail-auth's signer takes it (by value), without copying the key.
struct SharedKey(Arc<DkimKey>);

impl SigningKey for SharedKey {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> CryptoAlgorithm {
        self.0.algorithm()
    }
}

impl Signer {
    /// The `DKIM-Signature:` field (folded, ending in CRLF) for `message`, which must be in its
    /// wire form (CRLF line ends, not dot-stuffed): exactly what the next hop will be sent after
    /// this field.
    pub fn sign(&self, message: &[u8]) -> Result<String, SignError> {
        let signature = DkimSigner::from_key(SharedKey(Arc::clone(&self.key.signing)))
            .domain(self.domain.as_str())
            .selector(self.selector.as_str())
            .headers(SIGNED_HEADERS.iter().copied())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .sign(message)
            .map_err(|e| SignError::Failed(e.to_string()))?;
        Ok(signature.to_header())
    }
}

/// The lower-cased domain of the first From: address of `message`'s header section, if any.
pub fn author_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse_headers(message)?;
    let address = parsed.from()?.first()?.address()?;
    let (_, domain) = address.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA: &str = include_str!("testdata/rsa2048-pkcs1.pem");
    const ED25519: &str = include_str!("testdata/ed25519-openssl.pem");

    const MESSAGE: &[u8] = b"Received: from x by y; Tue, 1 Dec 2026 10:00:00 +0000\r\nFrom: Alice <alice@Example.TEST>\r\nTo: bob@far.test\r\nSubject: hi\r\nX-Other: not signed\r\n\r\nbody\r\n";

    fn signer(pem: &str) -> Signer {
        Signer {
            domain: "example.test".into(),
            selector: "s1".into(),
            key: Key::from_pem(pem.as_bytes()).unwrap(),
        }
    }

    /// Each field of the header carries what it says: the algorithm, the domain and selector,
    /// relaxed/relaxed, the signed fields present (From, To, Subject; not Received or
    /// X-Other); folded with CRLF and ending in CRLF.
    #[test]
    fn signature_fields() {
        for (pem, a) in [(RSA, "rsa-sha256"), (ED25519, "ed25519-sha256")] {
            let h = signer(pem).sign(MESSAGE).unwrap();
            assert!(h.starts_with("DKIM-Signature: v=1; "), "{h}");
            assert!(h.ends_with(";\r\n"), "{h}");
            let unfolded = h.replace("\r\n\t", " ").replace("\r\n ", " ");
            assert_eq!(unfolded.matches("\r\n").count(), 1, "{h}");
            for tag in [
                format!("a={a};"),
                "s=s1;".into(),
                "d=example.test;".into(),
                "c=relaxed/relaxed;".into(),
            ] {
                assert!(unfolded.contains(&tag), "{tag} in {h}");
            }
            // The fields present (bottom-up), then the absent ones of the list, so that adding
            // one later breaks the signature (RFC 6376 8.15).
            let h_tag = unfolded
                .split("h=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap();
            let names: Vec<&str> = h_tag.split(':').map(str::trim).collect();
            assert_eq!(names[..3], ["Subject", "To", "From"], "{h}");
            let mut sorted = names.clone();
            sorted.sort_unstable();
            let mut all = SIGNED_HEADERS.to_vec();
            all.sort_unstable();
            assert_eq!(sorted, all, "{h}");
        }
    }

    /// The signature covers what it says: the same message signs to the same body hash, and a
    /// changed body to another.
    #[test]
    fn body_hash_follows_the_body() {
        let bh = |m: &[u8]| {
            let h = signer(ED25519).sign(m).unwrap().replace("\r\n\t", "");
            h.split("bh=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string()
        };
        let changed = String::from_utf8_lossy(MESSAGE).replace("body", "bodY");
        assert_eq!(bh(MESSAGE), bh(MESSAGE));
        assert_ne!(bh(MESSAGE), bh(changed.as_bytes()));
    }

    #[test]
    fn author_domain_is_the_first_from_address() {
        assert_eq!(author_domain(MESSAGE).as_deref(), Some("example.test"));
        let two = b"From: a@One.test, b@two.test\nSubject: x\n\nbody\n";
        assert_eq!(author_domain(two).as_deref(), Some("one.test"));
        assert_eq!(author_domain(b"Subject: no from\n\nbody\n"), None);
        assert_eq!(author_domain(b"From: undisclosed\n\nbody\n"), None);
        assert_eq!(author_domain(b"From: <>\n\nbody\n"), None);
    }
}
