//! What a PEM certificate chain says about its first (leaf) certificate: the names it covers,
//! its issuer and validity, whether it signed itself. Bytes in, facts out.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

/// The leaf certificate's facts; times in seconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    /// DNS names of the subjectAltName (lower-cased), or the subject CN when there is none.
    pub names: Vec<String>,
    /// The issuer's distinguished name, as `CN=..., O=...`.
    pub issuer: String,
    pub not_before: u64,
    pub not_after: u64,
    /// Issuer and subject are the same name (our temporary certificate, or any self-signed one).
    pub self_signed: bool,
}

impl CertFacts {
    /// Whether `name` (lower case) is one of the names, or matches a `*.` name one label deep.
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|n| {
            n == name
                || n.strip_prefix("*.").is_some_and(|base| {
                    name.split_once('.')
                        .is_some_and(|(first, rest)| !first.is_empty() && rest == base)
                })
        })
    }
}

/// The facts of the first certificate in `pem`.
pub fn facts(pem: &[u8]) -> Result<CertFacts, String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    if block.label != "CERTIFICATE" {
        return Err(format!(
            "the first PEM block is a {}, not a CERTIFICATE",
            block.label
        ));
    }
    let (_, cert) = X509Certificate::from_der(&block.contents)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    let time = |t: ASN1Time| u64::try_from(t.timestamp()).unwrap_or(0);
    Ok(CertFacts {
        names,
        issuer: cert.issuer().to_string(),
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        self_signed: cert.issuer() == cert.subject(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_issuer_and_times() {
        let ck = rcgen::generate_simple_self_signed(vec![
            "Mail.Example.test".to_string(),
            "localhost".to_string(),
        ])
        .unwrap();
        let f = facts(ck.cert.pem().as_bytes()).unwrap();
        assert_eq!(f.names, ["mail.example.test", "localhost"]);
        assert!(f.self_signed);
        assert!(f.not_after > f.not_before);
        assert!(f.covers("localhost") && !f.covers("other.test"));

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Test Root");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["*.acme.test".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let chain = format!("{}{}", leaf.pem(), ca_cert.pem());
        let f = facts(chain.as_bytes()).unwrap();
        assert!(!f.self_signed);
        assert_eq!(f.issuer, "CN=Test Root");
        assert!(f.covers("mail.acme.test"));
        assert!(!f.covers("acme.test"));
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert!(facts(b"").is_err());
        assert!(facts(b"{\"json\": true}").is_err());
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(facts(key.as_bytes()).unwrap_err().contains("PRIVATE KEY"));
    }
}
