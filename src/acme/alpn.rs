//! TLS-ALPN-01 (RFC 8737): while an order is open, a TLS handshake that offers the ALPN protocol
//! `acme-tls/1` for one of its names is answered with a self-signed certificate for that name
//! carrying the critical acmeIdentifier extension (the SHA-256 of the key authorization), with
//! `acme-tls/1` negotiated; the connection then ends (section 3: no application data). A
//! handshake offering `acme-tls/1` for any other name (or none) is refused with a TLS alert, so
//! the listener's own certificate never stands in for an answer. Every other handshake gets the
//! listener's own configuration, unchanged.
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

/// What a TLS accept does with a ClientHello.
pub enum Choice {
    /// An ordinary client: the listener's own configuration.
    Normal,
    /// A TLS-ALPN-01 validation for a name with an answer in flight: this configuration (the
    /// validation certificate, `acme-tls/1`), then the connection ends.
    Answer {
        name: String,
        config: Arc<ServerConfig>,
    },
    /// `acme-tls/1` offered with no SNI, or for a name with no answer in flight: refused, so
    /// the listener's certificate is never shown as a validation answer. Says why.
    Refuse(String),
}

/// The choice for this ClientHello (see [`Choice`]).
pub fn choose(hello: &ClientHello<'_>) -> Choice {
    choice(
        hello.server_name(),
        hello.alpn().is_some_and(|mut a| a.any(|p| p == PROTOCOL)),
    )
}

/// [`choose`] on the two facts it looks at: the SNI, and whether `acme-tls/1` is offered.
fn choice(sni: Option<&str>, offers: bool) -> Choice {
    if !offers {
        return Choice::Normal;
    }
    let Some(sni) = sni else {
        return Choice::Refuse("ALPN acme-tls/1 without a server name (SNI)".into());
    };
    let name = sni.to_ascii_lowercase();
    match pending().get(&name).cloned() {
        Some(config) => Choice::Answer { name, config },
        None => Choice::Refuse(format!(
            "ALPN acme-tls/1 for {name}, which has no TLS-ALPN-01 challenge open"
        )),
    }
}

/// The configuration of a refused handshake: no certificate at all, so rustls ends it with a
/// fatal alert (`access_denied`) before any certificate is sent.
pub fn refusal() -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS-ALPN-01 refusal config: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(NoCertificate));
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct NoCertificate;

impl rustls::server::ResolvesServerCert for NoCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

/// How a TLS accept ended that was about ACME, not a session: the `io::Error` payload that
/// [`crate::net::tls::accept`] returns, so callers log it as what it is.
#[derive(Debug, thiserror::Error)]
pub enum Handled {
    #[error("ACME TLS-ALPN-01 validation answered for {0}")]
    Answered(String),
    #[error("ACME TLS-ALPN-01 handshake refused: {0}")]
    Refused(String),
}

impl Handled {
    /// The payload of `e`, when it is one.
    pub fn of(e: &std::io::Error) -> Option<&Handled> {
        e.get_ref()?.downcast_ref()
    }
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

    fn answered(c: Choice) -> Option<Arc<ServerConfig>> {
        match c {
            Choice::Answer { config, .. } => Some(config),
            _ => None,
        }
    }

    /// The chooser: acme-tls/1 with a pending SNI gets the answer, without acme-tls/1 the
    /// listener's own config, acme-tls/1 with an unknown or no SNI a refusal.
    #[test]
    fn only_a_validation_handshake_for_a_pending_name_gets_the_answer() {
        publish("Alpn.Acme.Test", &[1; 32]).unwrap();
        let got = answered(choice(Some("alpn.acme.test"), true)).expect("answered");
        assert_eq!(got.alpn_protocols, [PROTOCOL.to_vec()]);
        assert!(
            answered(choice(Some("ALPN.acme.test"), true)).is_some(),
            "any case"
        );
        for (sni, offers, why) in [
            (Some("alpn.acme.test"), false, "no acme-tls/1"),
            (None, false, "no SNI, no acme-tls/1"),
        ] {
            assert!(matches!(choice(sni, offers), Choice::Normal), "{why}");
        }
        for (sni, why) in [(Some("other.acme.test"), "another name"), (None, "no SNI")] {
            match choice(sni, true) {
                Choice::Refuse(r) => assert!(r.contains("acme-tls/1"), "{why}: {r}"),
                _ => panic!("{why}: not refused"),
            }
        }
        withdraw("alpn.acme.test");
        assert!(
            matches!(choice(Some("alpn.acme.test"), true), Choice::Refuse(_)),
            "withdrawn"
        );
    }
}
