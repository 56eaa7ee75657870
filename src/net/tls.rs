//! TLS with rustls (ring provider, TLS 1.2 and 1.3 only): the server configuration built from
//! `[tls]` (rebuilt on reload), the self-signed certificate made at first start when
//! `self_signed = true`, the client configuration for smtp-send, and a stream that is plain or TLS
//! so one session can switch after STARTTLS/STLS.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::Tls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("[tls] cert {path}: {error}")]
    Cert { path: String, error: String },
    #[error("[tls] key {path}: {error}")]
    Key { path: String, error: String },
    #[error("[tls] cannot make the self-signed certificate: {0}")]
    SelfSigned(String),
    #[error("[tls] the certificate and key do not fit together: {0}")]
    Config(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Writes a self-signed certificate for `hostname` (and localhost, 127.0.0.1, ::1) unless the
/// files exist already; the key is written mode 0600.
pub fn ensure_self_signed(tls: &Tls, hostname: &str) -> Result<(), TlsError> {
    if tls.cert.exists() && tls.key.exists() {
        return Ok(());
    }
    let names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
    let err = |e: io::Error| TlsError::SelfSigned(e.to_string());
    for p in [&tls.cert, &tls.key] {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tls.key)
        .map_err(err)?;
    key.write_all(ck.signing_key.serialize_pem().as_bytes())
        .map_err(err)?;
    std::fs::write(&tls.cert, ck.cert.pem()).map_err(err)?;
    Ok(())
}

/// Whether `[tls]` would load (without making a self-signed pair).
pub fn check(tls: &Tls, hostname: &str) -> Result<(), TlsError> {
    if tls.self_signed && !(tls.cert.exists() && tls.key.exists()) {
        return Ok(());
    }
    let existing = Tls {
        self_signed: false,
        ..tls.clone()
    };
    server_config(&existing, hostname).map(|_| ())
}

/// The server configuration from `[tls]` (making the self-signed pair first when asked).
pub fn server_config(tls: &Tls, hostname: &str) -> Result<Arc<ServerConfig>, TlsError> {
    if tls.self_signed {
        ensure_self_signed(tls, hostname)?;
    }
    let cert_path = tls.cert.display().to_string();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| TlsError::Cert {
            path: cert_path.clone(),
            error: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert {
            path: cert_path.clone(),
            error: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert_path,
            error: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| TlsError::Key {
        path: tls.key.display().to_string(),
        error: e.to_string(),
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

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
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.trust {
            Trust::Any => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            Trust::Pinned { pinned, .. }
                if pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                pinned_name_check(end_entity, server_name)?;
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
fn pinned_name_check(
    cert: &CertificateDer<'_>,
    server_name: &rustls_pki_types::ServerName<'_>,
) -> Result<(), rustls::Error> {
    let by_san = rustls::client::verify_server_name(
        &rustls::server::ParsedCertificate::try_from(cert)?,
        server_name,
    );
    // Parsed once more for what rustls does not expose (it parsed above, so this succeeds).
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    if by_san.is_ok() || parsed.valid_dns_names().next().is_some() {
        return by_san;
    }
    match server_name {
        rustls_pki_types::ServerName::DnsName(name)
            if common_names(parsed.subject())
                .any(|cn| cn.eq_ignore_ascii_case(name.as_ref().as_bytes())) =>
        {
            Ok(())
        }
        _ => by_san,
    }
}

/// The CommonName values (OID 2.5.4.3) of a DER subject, given without its outer SEQUENCE:
/// SET { SEQUENCE { OID, value } ... } ... A malformed subject just yields fewer names.
fn common_names(subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    der_items(subject)
        .flat_map(|(_, rdn)| der_items(rdn))
        .filter_map(|(_, atv)| {
            let mut it = der_items(atv);
            match (it.next(), it.next()) {
                (Some((0x06, CN)), Some((_, value))) => Some(value),
                _ => None,
            }
        })
}

/// The (tag, contents) of consecutive DER items; stops at the first malformed one.
fn der_items(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |l, &b| (l << 8) | b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (contents, after) = rest.split_at(len);
        input = after;
        Some((tag, contents))
    })
}

/// A connection that is plain, or TLS after STARTTLS/STLS or on an implicit-TLS port.
pub enum Stream {
    Plain(TcpStream),
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while switching.
    Gone,
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::ServerTls(_) | Stream::ClientTls(_))
    }

    /// Writes everything within `limit`; `Err` means the client is gone or too slow.
    pub async fn write_timed(
        &mut self,
        bytes: &[u8],
        limit: std::time::Duration,
    ) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        tokio::time::timeout(limit, self.write_all(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// STARTTLS/STLS on the server side: the handshake, within `limit`, in place.
    pub async fn upgrade(
        &mut self,
        config: Arc<ServerConfig>,
        limit: std::time::Duration,
    ) -> io::Result<()> {
        let plain = std::mem::replace(self, Stream::Gone);
        *self = tokio::time::timeout(limit, plain.accept_tls(config))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(())
    }

    /// Server side: TLS handshake over the plain stream.
    pub async fn accept_tls(self, config: Arc<ServerConfig>) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
                Ok(Stream::ServerTls(Box::new(tls)))
            }
            _ => Err(io::Error::other("TLS is already active")),
        }
    }

    /// Client side: TLS handshake over the plain stream.
    pub async fn connect_tls(
        self,
        config: Arc<rustls::ClientConfig>,
        server_name: rustls_pki_types::ServerName<'static>,
    ) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(server_name, tcp)
                    .await?;
                Ok(Stream::ClientTls(Box::new(tls)))
            }
            _ => Err(io::Error::other("TLS is already active")),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::Error::other("stream gone"))),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::Error::other("stream gone"))),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
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
        let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
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
        let name = rustls_pki_types::ServerName::try_from("mail.example.test").unwrap();
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

    /// With a subjectAltName, the CN is not a name (RFC 6125 6.4.4).
    #[test]
    fn pinned_certificate_with_san_ignores_the_cn() {
        let cert = ca_true_cert("cn.example.test", Some("san.example.test"));
        let v = verifier(&[&cert]);
        assert_eq!(verify(&v, &cert, "san.example.test"), Ok(()));
        assert!(verify(&v, &cert, "cn.example.test").is_err());
    }

    #[test]
    fn common_names_of_a_subject() {
        let cert = ca_true_cert("mail.example.test", None);
        let parsed = webpki::EndEntityCert::try_from(cert.der()).unwrap();
        let cns: Vec<&[u8]> = common_names(parsed.subject()).collect();
        assert_eq!(cns, [b"mail.example.test"]);
        assert_eq!(common_names(b"\x31\xff").count(), 0, "malformed: no names");
    }

    #[test]
    fn self_signed_made_once_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls {
            cert: dir.path().join("tls/cert.pem"),
            key: dir.path().join("tls/key.pem"),
            self_signed: true,
        };
        server_config(&tls, "mx.example.test").unwrap();
        let first = std::fs::read(&tls.cert).unwrap();
        server_config(&tls, "mx.example.test").unwrap();
        assert_eq!(std::fs::read(&tls.cert).unwrap(), first, "kept, not remade");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tls.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let missing = Tls {
            self_signed: false,
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let e = server_config(&missing, "x").unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
