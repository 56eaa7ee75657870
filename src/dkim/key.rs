//! A DKIM signing key read from PEM: an RSA key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
//! `PRIVATE KEY`) signs rsa-sha256, an Ed25519 key (PKCS#8, as OpenSSL and ring write it) signs
//! ed25519-sha256 (RFC 8463). Also the public half as the `p=` of its DNS record.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;

/// The RSA sizes ring signs with (RFC 8301 asks for at least 1024 and recommends 2048).
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 4096;

const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_PUBLIC_KEY: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// A signing algorithm, as `[dkim] algorithm` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// rsa-sha256 (RFC 6376 3.3.2).
    Rsa,
    /// ed25519-sha256 (RFC 8463).
    Ed25519,
}

impl Algorithm {
    /// The `a=` tag of a signature.
    pub fn signature_name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa-sha256",
            Algorithm::Ed25519 => "ed25519-sha256",
        }
    }

    /// The kind of key, for people: "RSA", "Ed25519".
    pub fn key_name(self) -> &'static str {
        match self {
            Algorithm::Rsa => "RSA",
            Algorithm::Ed25519 => "Ed25519",
        }
    }

    /// The `k=` tag of the DNS record, and the name in the config.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

/// Why a key file cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no PEM private key in it ({0})")]
    NotPem(String),
    #[error("it holds {0} key; DKIM signs with RSA or Ed25519 keys")]
    Unsupported(&'static str),
    #[error("it is not a readable RSA or Ed25519 private key ({0})")]
    Invalid(String),
    #[error("its RSA key has {0} bits; DKIM keys here have {RSA_MIN_BITS} to {RSA_MAX_BITS}")]
    RsaSize(usize),
    #[error("the {0} key cannot be made: {1}")]
    Generate(&'static str, String),
}

/// A parsed signing key, cheap to clone. Compared (and shown) by its public half only.
#[derive(Clone)]
pub struct Key {
    pub(super) signing: Arc<DkimKey>,
    algorithm: Algorithm,
    /// The `p=` data: SubjectPublicKeyInfo DER for RSA (what OpenDKIM publishes), the raw 32
    /// octets for Ed25519 (RFC 8463 4).
    public: Arc<[u8]>,
    bits: usize,
}

impl Key {
    /// Reads the first private key of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Key, KeyError> {
        let der =
            PrivateKeyDer::from_pem_slice(pem).map_err(|e| KeyError::NotPem(e.to_string()))?;
        match der {
            PrivateKeyDer::Pkcs1(_) => Self::rsa(der),
            PrivateKeyDer::Pkcs8(ref p8) => {
                let info = pkcs8::PrivateKeyInfo::try_from(p8.secret_pkcs8_der())
                    .map_err(|e| KeyError::Invalid(e.to_string()))?;
                match info.algorithm.oid {
                    RSA_ENCRYPTION => Self::rsa(der),
                    // OpenSSL writes PKCS#8 v1 (no public key in it), ring v2: both are taken.
                    ED25519 => Ed25519Key::from_pkcs8_maybe_unchecked_der(p8.secret_pkcs8_der())
                        .map(Self::ed25519)
                        .map_err(|e| KeyError::Invalid(e.to_string())),
                    EC_PUBLIC_KEY => Err(KeyError::Unsupported("an EC")),
                    other => Err(KeyError::Invalid(format!("algorithm {other}"))),
                }
            }
            PrivateKeyDer::Sec1(_) => Err(KeyError::Unsupported("an EC (SEC1)")),
            _ => Err(KeyError::Invalid("an unknown kind of key".into())),
        }
    }

    fn ed25519(key: Ed25519Key) -> Key {
        let public = key.public_key();
        Key {
            signing: Arc::new(DkimKey::Ed25519(key)),
            algorithm: Algorithm::Ed25519,
            public: public.into(),
            bits: 256,
        }
    }

    fn rsa(der: PrivateKeyDer<'_>) -> Result<Key, KeyError> {
        let invalid = |e: &dyn fmt::Display| KeyError::Invalid(e.to_string());
        // Read by the rsa crate first for its size (ring only says "TooSmall") and its
        // SubjectPublicKeyInfo, the form the record carries.
        let parsed = match &der {
            PrivateKeyDer::Pkcs1(k) => rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(k) => rsa::RsaPrivateKey::from_pkcs8_der(k.secret_pkcs8_der())
                .map_err(rsa::pkcs1::Error::Pkcs8),
            _ => return Err(KeyError::Invalid("not an RSA key".into())),
        }
        .map_err(|e| invalid(&e))?;
        let public = parsed.to_public_key();
        let bits = public.size() * 8;
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::RsaSize(bits));
        }
        let spki = public.to_public_key_der().map_err(|e| invalid(&e))?;
        let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| invalid(&e))?;
        Ok(Key {
            signing: Arc::new(DkimKey::Rsa(key)),
            algorithm: Algorithm::Rsa,
            public: spki.as_bytes().into(),
            bits,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The size of an RSA modulus; 256 for Ed25519.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The TXT record that publishes the public key: `v=DKIM1; k=rsa; p=...`.
    pub fn record(&self) -> String {
        let p = base64::engine::general_purpose::STANDARD.encode(&self.public);
        format!("v=DKIM1; k={}; p={p}", self.algorithm.key_type())
    }

    /// The zone-file line for `selector._domainkey.domain.`: the record in quoted strings of at
    /// most 255 octets each (RFC 1035 3.3.14; one TXT record of several strings, which
    /// verifiers join).
    pub fn zone_line(&self, selector: &str, domain: &str) -> String {
        let record = self.record();
        let strings: Vec<String> = record
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        format!(
            "{selector}._domainkey.{domain}. IN TXT {}",
            strings.join(" ")
        )
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.algorithm == other.algorithm && self.public == other.public
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Key({}, {} bits)",
            self.algorithm.signature_name(),
            self.bits
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PKCS1: &str = include_str!("testdata/rsa2048-pkcs1.pem");
    const RSA_PKCS8: &str = include_str!("testdata/rsa2048-pkcs8.pem");
    const RSA_SPKI: &str = include_str!("testdata/rsa2048.spki.b64");
    const RSA_1024: &str = include_str!("testdata/rsa1024-pkcs1.pem");
    const ED25519: &str = include_str!("testdata/ed25519-openssl.pem");
    const ED25519_PUB: &str = include_str!("testdata/ed25519.pub.b64");
    const EC_PKCS8: &str = include_str!("testdata/ec-pkcs8.pem");
    const EC_SEC1: &str = include_str!("testdata/ec-sec1.pem");

    /// Keys made by OpenSSL (`genrsa -traditional`, `pkcs8 -topk8`, `genpkey -algorithm
    /// ed25519`) are read, their algorithm inferred, and their public half is what OpenSSL
    /// prints for them.
    #[test]
    fn openssl_keys_are_read() {
        for pem in [RSA_PKCS1, RSA_PKCS8] {
            let k = Key::from_pem(pem.as_bytes()).unwrap();
            assert_eq!((k.algorithm(), k.bits()), (Algorithm::Rsa, 2048));
            assert_eq!(k.record(), format!("v=DKIM1; k=rsa; p={}", RSA_SPKI.trim()));
        }
        assert_eq!(
            Key::from_pem(RSA_PKCS1.as_bytes()).unwrap(),
            Key::from_pem(RSA_PKCS8.as_bytes()).unwrap()
        );
        let k = Key::from_pem(ED25519.as_bytes()).unwrap();
        assert_eq!(k.algorithm(), Algorithm::Ed25519);
        assert_eq!(
            k.record(),
            format!("v=DKIM1; k=ed25519; p={}", ED25519_PUB.trim())
        );
        assert_eq!(format!("{k:?}"), "Key(ed25519-sha256, 256 bits)");
    }

    #[test]
    fn unusable_keys_say_why() {
        assert_eq!(
            Key::from_pem(RSA_1024.as_bytes()).unwrap_err(),
            KeyError::RsaSize(1024)
        );
        for ec in [EC_PKCS8, EC_SEC1] {
            let e = Key::from_pem(ec.as_bytes()).unwrap_err();
            assert!(matches!(e, KeyError::Unsupported(_)), "{e:?}");
            assert!(e.to_string().starts_with("it holds an EC"), "{e}");
        }
        assert!(matches!(
            Key::from_pem(b"not a key\n"),
            Err(KeyError::NotPem(_))
        ));
        let empty = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            Key::from_pem(empty.as_bytes()),
            Err(KeyError::Invalid(_))
        ));
    }

    /// An RSA record is longer than one TXT string may be: it is cut into strings of at most
    /// 255 octets that join back into the record.
    #[test]
    fn zone_line_splits_long_records() {
        let k = Key::from_pem(RSA_PKCS1.as_bytes()).unwrap();
        let line = k.zone_line("s1", "example.test");
        let (name, rest) = line.split_once(" IN TXT ").unwrap();
        assert_eq!(name, "s1._domainkey.example.test.");
        let strings: Vec<&str> = rest.split('"').filter(|s| !s.trim().is_empty()).collect();
        assert!(strings.len() >= 2, "{line}");
        assert!(strings.iter().all(|s| s.len() <= 255), "{line}");
        assert_eq!(strings.concat(), k.record());
        let ed = Key::from_pem(ED25519.as_bytes()).unwrap();
        assert_eq!(
            ed.zone_line("s2", "example.test"),
            format!("s2._domainkey.example.test. IN TXT \"{}\"", ed.record())
        );
    }
}
