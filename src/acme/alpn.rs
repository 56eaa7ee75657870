//! TLS-ALPN-01 (RFC 8737): while an order is open, a TLS handshake that offers the ALPN protocol
//! `acme-tls/1` for one of its names is answered with a self-signed certificate for that name
//! carrying the critical acmeIdentifier extension (the SHA-256 of the key authorization), with
//! `acme-tls/1` negotiated; the connection then ends (section 3: no application data). Every
//! other handshake gets the listener's own configuration, unchanged.
//!
//! The answers in flight live in one process-wide table, [`PENDING`]: the TLS accept path of every
//! listener (mail sessions and HTTPS, through [`crate::net::tls::accept`]) consults it, and a
//! daemon runs one ACME client, so threading a handle through every listener would only carry
//! the same table around.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use rustls::ServerConfig;
use rustls::server::ClientHello;

/// The ALPN protocol of the validation handshake.
pub const PROTOCOL: &[u8] = b"acme-tls/1";

/// Name (lower case) → the configuration that answers its validation.
static PENDING: LazyLock<Mutex<HashMap<String, Arc<ServerConfig>>>> = LazyLock::new(Mutex::default);

fn pending() -> MutexGuard<'static, HashMap<String, Arc<ServerConfig>>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The validation certificate of RFC 8737 section 3 for `name`: self-signed, `name` as its only
/// subjectAltName, and the critical acmeIdentifier extension (id-pe-acmeIdentifier,
/// 1.3.6.1.5.5.7.1.31) holding `digest`, the SHA-256 of the key authorization, as a DER OCTET
/// STRING. Returns the certificate and its key, DER.
pub fn validation_certificate(name: &str, digest: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    if digest.len() != 32 {
        return Err(format!(
            "a TLS-ALPN-01 digest must be 32 bytes (SHA-256), not {}",
            digest.len()
        ));
    }
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| format!("TLS-ALPN-01 certificate for {name}: {e}"))?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let key = rcgen::KeyPair::generate().map_err(|e| format!("TLS-ALPN-01 key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("TLS-ALPN-01 certificate for {name}: {e}"))?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// Serves the one validation certificate. (rustls's `with_single_cert` would check it as an
/// end-entity certificate first, and refuse it: webpki knows no acmeIdentifier, and the
/// extension is critical.)
#[derive(Debug)]
struct Validation(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Validation {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Publishes the answer for `name` (until [`withdraw`]).
pub fn publish(name: &str, digest: &[u8]) -> Result<(), String> {
    let (cert, key) = validation_certificate(name, digest)?;
    let key = rustls_pki_types::PrivateKeyDer::try_from(key)
        .map_err(|e| format!("TLS-ALPN-01 key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("TLS-ALPN-01 key: {e}"))?;
    let certified = rustls::sign::CertifiedKey::new(vec![cert.into()], signing);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS-ALPN-01 config: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Validation(Arc::new(certified))));
    config.alpn_protocols = vec![PROTOCOL.to_vec()];
    pending().insert(name.to_ascii_lowercase(), Arc::new(config));
    Ok(())
}

pub fn withdraw(name: &str) {
    pending().remove(&name.to_ascii_lowercase());
}

/// The configuration that answers this ClientHello's validation, when it offers `acme-tls/1`
/// for a name with an answer in flight.
pub fn answer_for(hello: &ClientHello<'_>) -> Option<Arc<ServerConfig>> {
    answer(
        hello.server_name(),
        hello.alpn().map(|mut a| a.any(|p| p == PROTOCOL)),
    )
}

/// [`answer_for`] on the two facts it looks at (the SNI, whether `acme-tls/1` is offered).
fn answer(sni: Option<&str>, offers: Option<bool>) -> Option<Arc<ServerConfig>> {
    if offers != Some(true) {
        return None;
    }
    pending().get(&sni?.to_ascii_lowercase()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The extension as RFC 8737 section 3 has it: OID 1.3.6.1.5.5.7.1.31, critical, value a
    /// DER OCTET STRING of the 32-byte digest.
    #[test]
    fn the_validation_certificate_carries_the_critical_acme_identifier() {
        let digest = [7u8; 32];
        let (der, _) = validation_certificate("mail.acme.test", &digest).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid == oid)
            .expect("acmeIdentifier");
        assert!(ext.critical);
        let mut want = vec![0x04, 32];
        want.extend_from_slice(&digest);
        assert_eq!(ext.value, want.as_slice());
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["DNSName(mail.acme.test)"]);
        assert!(validation_certificate("mail.acme.test", &[1; 20]).is_err());
    }

    #[test]
    fn only_a_validation_handshake_for_a_pending_name_gets_the_answer() {
        publish("Alpn.Acme.Test", &[1; 32]).unwrap();
        let got = answer(Some("alpn.acme.test"), Some(true)).expect("answered");
        assert_eq!(got.alpn_protocols, [PROTOCOL.to_vec()]);
        assert!(
            answer(Some("ALPN.acme.test"), Some(true)).is_some(),
            "any case"
        );
        assert!(
            answer(Some("alpn.acme.test"), Some(false)).is_none(),
            "no acme-tls/1"
        );
        assert!(
            answer(Some("alpn.acme.test"), None).is_none(),
            "no ALPN at all"
        );
        assert!(
            answer(Some("other.acme.test"), Some(true)).is_none(),
            "another name"
        );
        assert!(answer(None, Some(true)).is_none(), "no SNI");
        withdraw("alpn.acme.test");
        assert!(
            answer(Some("alpn.acme.test"), Some(true)).is_none(),
            "withdrawn"
        );
    }
}
