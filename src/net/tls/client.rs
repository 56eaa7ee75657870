//! The client side of TLS (smtp-send, send-test, selftest): the system's roots plus `--cafile`,
//! where a certificate of the file that is exactly the server's is pinned; or, with
//! `--insecure`, no verification at all. Handshake signatures are always checked.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use x509_parser::extensions::GeneralName;

use super::provider;

/// Client side (smtp-send): the system's roots, plus `cafile`; or no verification at all.
pub fn client_config(
    cafile: Option<&Path>,
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    if insecure {
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verifier::any()))
                .with_no_client_auth(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    let Some(f) = cafile else {
        return Ok(Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        ));
    };
    let verifier = Verifier::pinning(f, roots)?;
    Ok(Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    ))
}

/// smtp-send's check of the server's certificate, when it is not rustls' default one. The
/// handshake signatures are always checked, with the provider's algorithms.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    trust: Trust,
}

#[derive(Debug)]
enum Trust {
    /// `--insecure`: any certificate (labs with self-signed certificates).
    Any,
    /// `--cafile`: a certificate of the file that is exactly the one the server presents is
    /// trusted as it is (pinning), whatever its basic constraints, so the usual
    /// `openssl req -x509` certificate (`CA:TRUE`, which webpki refuses as an end entity with
    /// `CaUsedAsEndEntity`) works as it does with curl, swaks and Python. The host name is still
    /// checked. Any other chain gets the normal webpki verification against the system's roots
    /// plus the file's certificates.
    Pinned {
        pinned: Vec<CertificateDer<'static>>,
        webpki: Arc<rustls::client::WebPkiServerVerifier>,
    },
}

impl Verifier {
    fn any() -> Self {
        Verifier {
            provider: provider(),
            trust: Trust::Any,
        }
    }

    /// The certificates of the PEM file `cafile` are pinned and join `roots`.
    fn pinning(cafile: &Path, mut roots: rustls::RootCertStore) -> Result<Self, String> {
        let error = |e: &dyn std::fmt::Display| format!("--cafile {}: {e}", cafile.display());
        let mut pinned = Vec::new();
        for c in CertificateDer::pem_file_iter(cafile).map_err(|e| error(&e))? {
            let c = c.map_err(|e| error(&e))?;
            roots.add(c.clone()).map_err(|e| error(&e))?;
            pinned.push(c);
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| error(&e))?;
        Ok(Verifier {
            provider: provider(),
            trust: Trust::Pinned { pinned, webpki },
        })
    }
}

impl rustls::client::danger::ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Any => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            Trust::Pinned { pinned, .. }
                if pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                pinned_check(end_entity, server_name, now)?;
                Ok(rustls::client::danger::ServerCertVerified::assertion())
            }
            Trust::Pinned { webpki, .. } => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The host name check for a pinned certificate: its subjectAltName, as webpki checks it; and,
/// only when it names no DNS name at all, its subject's CN (RFC 6125 6.4.4, what OpenSSL's
/// `X509_check_host` and Python do, and what `openssl req -x509 -subj /CN=...` alone gives).
/// Its validity dates are checked as for any certificate: pinning lifts only the basic
/// constraints.
fn pinned_check(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: rustls_pki_types::UnixTime,
) -> Result<(), rustls::Error> {
    let by_san = rustls::client::verify_server_name(
        &rustls::server::ParsedCertificate::try_from(cert)?,
        server_name,
    );
    // Parsed once more for the subject and the names (rustls parsed it above, so this succeeds).
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let at = i64::try_from(now.as_secs())
        .ok()
        .and_then(|t| x509_parser::time::ASN1Time::from_timestamp(t).ok())
        .ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
    let validity = parsed.validity();
    if at < validity.not_before {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidYet,
        ));
    }
    if at > validity.not_after {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
    }
    let names_dns = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|san| {
            san.value
                .general_names
                .iter()
                .any(|n| matches!(n, GeneralName::DNSName(_)))
        });
    if by_san.is_ok() || names_dns {
        return by_san;
    }
    match server_name {
        ServerName::DnsName(name)
            if parsed.subject().iter_common_name().any(|cn| {
                cn.as_str()
                    .is_ok_and(|cn| cn.eq_ignore_ascii_case(name.as_ref()))
            }) =>
        {
            Ok(())
        }
        _ => by_san,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    /// What `openssl req -x509 -subj /CN=<cn>` makes: `CA:TRUE`, the name only in the CN
    /// (and in a subjectAltName when `san` is given).
    fn ca_true_cert(cn: &str, san: Option<&str>) -> rcgen::Certificate {
        let mut params =
            rcgen::CertificateParams::new(san.map(String::from).into_iter().collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
    }

    fn verifier(cafile_certs: &[&rcgen::Certificate]) -> Verifier {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let pem: String = cafile_certs.iter().map(|c| c.pem()).collect();
        std::fs::write(&path, pem).unwrap();
        Verifier::pinning(&path, rustls::RootCertStore::empty()).unwrap()
    }

    fn verify(v: &Verifier, cert: &rcgen::Certificate, name: &str) -> Result<(), String> {
        let name = ServerName::try_from(name.to_string()).unwrap();
        v.verify_server_cert(
            cert.der(),
            &[],
            &name,
            &[],
            rustls_pki_types::UnixTime::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// A `--cafile` certificate that is exactly the server's is accepted whatever its basic
    /// constraints, for its own name only; webpki alone refuses it (the bug of issue 14).
    #[test]
    fn cafile_certificate_is_pinned_with_its_name_checked() {
        let cert = ca_true_cert("mail.example.test", None);
        let other = ca_true_cert("mail.example.test", None);
        let v = verifier(&[&other, &cert]);
        assert_eq!(verify(&v, &cert, "mail.example.test"), Ok(()));
        assert_eq!(verify(&v, &cert, "MAIL.Example.test"), Ok(()));
        let wrong = verify(&v, &cert, "other.example.test").unwrap_err();
        assert!(wrong.contains("not valid for name"), "{wrong}");
        assert!(
            verify(&v, &cert, "127.0.0.1").is_err(),
            "no CN for IP names"
        );
        let name = ServerName::try_from("mail.example.test").unwrap();
        let Trust::Pinned { webpki, .. } = &v.trust else {
            panic!("not pinning")
        };
        let plain = webpki
            .verify_server_cert(
                cert.der(),
                &[],
                &name,
                &[],
                rustls_pki_types::UnixTime::now(),
            )
            .unwrap_err()
            .to_string();
        assert!(plain.contains("CaUsedAsEndEntity"), "{plain}");
        // A certificate not in the file is not pinned: the normal verification refuses it.
        let stranger = ca_true_cert("mail.example.test", None);
        assert!(verify(&v, &stranger, "mail.example.test").is_err());
    }

    /// Pinning lifts the basic constraints only: an expired pinned certificate is refused.
    #[test]
    fn expired_pinned_certificate_is_refused() {
        let mut params = rcgen::CertificateParams::new(vec!["mail.example.test".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let cert = params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let v = verifier(&[&cert]);
        let e = verify(&v, &cert, "mail.example.test").unwrap_err();
        assert!(e.to_lowercase().contains("expired"), "{e}");
    }

    /// With a subjectAltName, the CN is not a name (RFC 6125 6.4.4).
    #[test]
    fn pinned_certificate_with_san_ignores_the_cn() {
        let cert = ca_true_cert("cn.example.test", Some("san.example.test"));
        let v = verifier(&[&cert]);
        assert_eq!(verify(&v, &cert, "san.example.test"), Ok(()));
        assert!(verify(&v, &cert, "cn.example.test").is_err());
    }
}
