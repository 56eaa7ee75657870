//! TLS with rustls (ring provider, TLS 1.2 and 1.3 only): the server configuration built from
//! `[tls]` (rebuilt on reload), the self-signed certificate made at first start when
//! `self_signed = true`, the client configuration for smtp-send, and a stream that is plain or TLS
//! so one session can switch after STARTTLS/STLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub use client::client_config;

use crate::acme::alpn;
use crate::config::Tls;

mod client;

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

pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Writes a self-signed certificate for `hostname` (`acme_names`, localhost, 127.0.0.1, ::1) unless the
/// files exist already; the key is written mode 0600.
pub fn ensure_self_signed(tls: &Tls, hostname: &str) -> Result<(), TlsError> {
    if tls.cert.exists() && tls.key.exists() {
        return Ok(());
    }
    let mut names = vec![hostname.to_string()];
    for n in &tls.acme_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
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
    if (tls.self_signed || tls.acme) && !(tls.cert.exists() && tls.key.exists()) {
        return Ok(());
    }
    let existing = Tls {
        self_signed: false,
        acme: false,
        ..tls.clone()
    };
    server_config(&existing, hostname).map(|_| ())
}

/// The server configuration from `[tls]` (making the self-signed pair first when asked, or as
/// ACME's temporary certificate until the CA's arrives).
pub fn server_config(tls: &Tls, hostname: &str) -> Result<Arc<ServerConfig>, TlsError> {
    if tls.self_signed || tls.acme {
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
    build(certs, key)
}

/// The server configuration from a PEM chain and key in memory (an ACME certificate, checked
/// before it is written).
pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate chain: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the chain".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("the key: {e}"))?;
    build(certs, key).map_err(|e| e.to_string())
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The server side of a TLS handshake under `config`, for every listener (mail sessions and
/// HTTPS). The ClientHello is read first ([`crate::acme::alpn::choose`]): a TLS-ALPN-01
/// validation by the ACME CA (ALPN `acme-tls/1` for a name with an order open) is answered
/// with the validation certificate and `acme-tls/1`, then closed (RFC 8737: no application
/// data); `acme-tls/1` for another name, or without SNI, is refused with an alert. Both end in
/// an error whose payload is an [`alpn::Handled`] saying which. Every other client gets
/// `config` as it is.
pub async fn accept<IO>(io: IO, config: Arc<ServerConfig>) -> io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
    let (kind, handled) = match alpn::choose(&start.client_hello()) {
        alpn::Choice::Normal => return start.into_stream(config).await,
        alpn::Choice::Answer { name, config } => {
            let mut tls = start.into_stream(config).await?;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
            (
                io::ErrorKind::ConnectionAborted,
                alpn::Handled::Answered(name),
            )
        }
        alpn::Choice::Refuse(why) => {
            let refusal = alpn::refusal().map_err(io::Error::other)?;
            // Fails by design: no certificate, so rustls sends a fatal alert.
            let _ = start.into_stream(refusal).await;
            (
                io::ErrorKind::ConnectionRefused,
                alpn::Handled::Refused(why),
            )
        }
    };
    Err(io::Error::new(kind, handled))
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

    /// Server side: TLS handshake over the plain stream (see [`accept`]).
    pub async fn accept_tls(self, config: Arc<ServerConfig>) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => {
                let tls = accept(tcp, config).await?;
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

    /// Trusts any certificate without checking even the handshake signatures: webpki, which
    /// rustls checks them with, refuses the validation certificate's critical acmeIdentifier
    /// (a CA's validator does not verify the chain either: RFC 8737 section 3).
    #[derive(Debug)]
    struct TrustAll;

    impl rustls::client::danger::ServerCertVerifier for TrustAll {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &rustls_pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    type Client = tokio_rustls::client::TlsStream<tokio::io::DuplexStream>;

    /// A client handshake over an in-memory pipe into [`accept`]; the client's view after it
    /// (ALPN negotiated, the server's certificate, its stream) and the server's result.
    async fn handshake(
        server: Arc<ServerConfig>,
        sni: &str,
        alpn: &[&[u8]],
    ) -> (
        io::Result<(Option<Vec<u8>>, Vec<u8>, Client)>,
        io::Result<TlsStream<tokio::io::DuplexStream>>,
    ) {
        let mut client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustAll))
            .with_no_client_auth();
        client.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let (c, s) = tokio::io::duplex(64 * 1024);
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let connect = async {
            let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
                .connect(name, c)
                .await?;
            let (_, conn) = tls.get_ref();
            let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
            let cert = conn.peer_certificates().unwrap()[0].to_vec();
            // The validation answer ends with close_notify and no data; an ordinary session
            // goes on.
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if alpn.is_some() {
                let mut rest = Vec::new();
                tls.read_to_end(&mut rest).await?;
                assert!(rest.is_empty(), "no application data after the answer");
            } else {
                tls.write_all(b"hello").await?;
                tls.flush().await?;
            }
            Ok((alpn, cert, tls))
        };
        let (client, server) = tokio::join!(connect, accept(s, server));
        (client, server)
    }

    /// The TLS-ALPN-01 chooser on real handshakes: while an answer for a name is published,
    /// `acme-tls/1` for it gets the validation certificate with `acme-tls/1` and then the end;
    /// an ordinary client (no ALPN, or another protocol) of the same name gets the listener's
    /// certificate and its session; `acme-tls/1` for a name with no answer is refused with an
    /// alert, without the listener's certificate.
    #[tokio::test]
    async fn tls_alpn_01_answers_only_the_validation_handshake() {
        let ck = rcgen::generate_simple_self_signed(vec!["tls.acme.test".to_string()]).unwrap();
        let listener = from_pem(
            ck.cert.pem().as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let ours = ck.cert.der().to_vec();
        crate::acme::alpn::publish("tls.acme.test", &[9; 32]).unwrap();

        let (client, server) = handshake(
            Arc::clone(&listener),
            "tls.acme.test",
            &[crate::acme::alpn::PROTOCOL],
        )
        .await;
        let (alpn, cert, _) = client.expect("the validation handshake completes");
        assert_eq!(alpn.as_deref(), Some(crate::acme::alpn::PROTOCOL));
        assert_ne!(cert, ours, "the validation certificate, not the listener's");
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
        let oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).unwrap();
        let ext = parsed.extensions().iter().find(|e| e.oid == oid).unwrap();
        assert_eq!(&ext.value[2..], &[9; 32]);
        let e = server.expect_err("no session after a validation");
        assert!(
            matches!(
                crate::acme::alpn::Handled::of(&e),
                Some(crate::acme::alpn::Handled::Answered(n)) if n == "tls.acme.test"
            ),
            "{e}"
        );

        for alpn in [&[][..], &[&b"smtp"[..]][..]] {
            let (client, server) = handshake(Arc::clone(&listener), "tls.acme.test", alpn).await;
            let (negotiated, cert, _client) = client.expect("an ordinary handshake");
            assert_eq!(negotiated, None);
            assert_eq!(cert, ours, "the listener's certificate");
            let mut tls = server.expect("an ordinary session");
            let mut got = [0u8; 5];
            tokio::io::AsyncReadExt::read_exact(&mut tls, &mut got)
                .await
                .unwrap();
            assert_eq!(&got, b"hello");
        }

        let (client, server) = handshake(
            Arc::clone(&listener),
            "other.acme.test",
            &[crate::acme::alpn::PROTOCOL],
        )
        .await;
        let e = client.expect_err("refused");
        assert!(e.to_string().contains("alert"), "{e}");
        let e = server.expect_err("refused");
        assert!(
            matches!(
                crate::acme::alpn::Handled::of(&e),
                Some(crate::acme::alpn::Handled::Refused(why)) if why.contains("other.acme.test")
            ),
            "{e}"
        );
        crate::acme::alpn::withdraw("tls.acme.test");
    }

    #[test]
    fn self_signed_made_once_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls {
            cert: dir.path().join("tls/cert.pem"),
            key: dir.path().join("tls/key.pem"),
            self_signed: true,
            ..Tls::default()
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
            ..Tls::default()
        };
        let e = server_config(&missing, "x").unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
