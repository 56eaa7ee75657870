//! New DKIM key pairs for `smtpctl dkim-keygen`: the private key as PKCS#8 PEM (the form
//! `openssl genpkey` writes, which [`Key::from_pem`] reads back) and the parsed key, whose
//! record is what to publish in DNS.

use std::ops::RangeInclusive;

use mail_auth::common::crypto::Ed25519Key;
use pkcs8::LineEnding;
use rsa::pkcs8::EncodePrivateKey;

use super::key::{Algorithm, Key, KeyError, RSA_MAX_BITS, RSA_MIN_BITS};

/// RFC 8301 3.2 recommends 2048, and larger keys do not fit one DNS TXT string anyway.
pub const DEFAULT_RSA_BITS: usize = 2048;
/// The RSA sizes accepted (what ring signs with).
pub const RSA_BITS: RangeInclusive<usize> = RSA_MIN_BITS..=RSA_MAX_BITS;

/// A new key: the PEM text to write, and the same key parsed.
pub struct KeyPair {
    pub pem: String,
    pub key: Key,
}

/// Makes a key of `algorithm`; `bits` is the RSA modulus size (ignored for Ed25519).
pub fn generate(algorithm: Algorithm, bits: usize) -> Result<KeyPair, KeyError> {
    let pem = match algorithm {
        Algorithm::Rsa => {
            if !RSA_BITS.contains(&bits) {
                return Err(KeyError::RsaSize(bits));
            }
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
                .map_err(|e| KeyError::Generate("RSA", e.to_string()))?;
            key.to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| KeyError::Generate("RSA", e.to_string()))?
                .to_string()
        }
        Algorithm::Ed25519 => {
            let der = Ed25519Key::generate_pkcs8()
                .map_err(|e| KeyError::Generate("Ed25519", e.to_string()))?;
            pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
                .map_err(|e| KeyError::Generate("Ed25519", e.to_string()))?
        }
    };
    let key = Key::from_pem(pem.as_bytes())?;
    Ok(KeyPair { pem, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each algorithm makes a key that reads back as that algorithm, in PKCS#8 PEM.
    #[test]
    fn generated_keys_read_back() {
        for (alg, bits) in [(Algorithm::Ed25519, 256), (Algorithm::Rsa, 2048)] {
            let pair = generate(alg, 2048).unwrap();
            assert!(
                pair.pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
                "{}",
                pair.pem
            );
            assert_eq!((pair.key.algorithm(), pair.key.bits()), (alg, bits));
            assert_eq!(Key::from_pem(pair.pem.as_bytes()).unwrap(), pair.key);
        }
        assert_ne!(
            generate(Algorithm::Ed25519, 0).unwrap().key,
            generate(Algorithm::Ed25519, 0).unwrap().key
        );
    }

    #[test]
    fn rsa_sizes_outside_the_range_are_refused() {
        assert_eq!(
            generate(Algorithm::Rsa, 1024).err(),
            Some(KeyError::RsaSize(1024))
        );
        assert_eq!(
            generate(Algorithm::Rsa, 8192).err(),
            Some(KeyError::RsaSize(8192))
        );
    }
}
