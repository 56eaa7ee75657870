//! The client against a fake CA over HTTPS on loopback that misbehaves in one way per test: a
//! malformed directory, an order with no http-01 challenge, a malformed token, a certificate for
//! another name. Each is refused with an error that says what was wrong.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

use super::*;

#[derive(Clone, Copy, PartialEq)]
enum Misbehave {
    MalformedDirectory,
    DnsOnly,
    BadToken,
    OtherName,
}

struct Fake {
    base: String,
    how: Misbehave,
    finalized: AtomicBool,
    /// What smtpd published for the token when the CA was told to validate.
    seen_answer: Mutex<Option<String>>,
    challenges: Arc<Challenges>,
    /// The chain /cert serves: a leaf for other.acme.test.
    chain: String,
}

type St = State<Arc<Fake>>;

fn reply(status: StatusCode, body: String, location: Option<String>) -> Response {
    let mut h = HeaderMap::new();
    h.insert("Replay-Nonce", "bm9uY2U".parse().unwrap());
    h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    if let Some(l) = location {
        h.insert(header::LOCATION, l.parse().unwrap());
    }
    (status, h, body).into_response()
}

fn order_json(f: &Fake, status: &str) -> String {
    json!({
        "status": status,
        "identifiers": [{"type": "dns", "value": "mail.acme.test"}],
        "authorizations": [format!("{}/authz/1", f.base)],
        "finalize": format!("{}/fin", f.base),
        "certificate": format!("{}/cert", f.base),
    })
    .to_string()
}

async fn directory(State(f): St) -> Response {
    if f.how == Misbehave::MalformedDirectory {
        return reply(StatusCode::OK, "{\"newNonce\": [oops".into(), None);
    }
    let b = &f.base;
    let dir = json!({
        "newNonce": format!("{b}/nonce"),
        "newAccount": format!("{b}/acct"),
        "newOrder": format!("{b}/order"),
    });
    reply(StatusCode::OK, dir.to_string(), None)
}

async fn nonce() -> Response {
    reply(StatusCode::OK, String::new(), None)
}

async fn fake_account(State(f): St) -> Response {
    let body = json!({"status": "valid"}).to_string();
    reply(
        StatusCode::CREATED,
        body,
        Some(format!("{}/acct/1", f.base)),
    )
}

async fn new_order(State(f): St) -> Response {
    let body = order_json(&f, "pending");
    reply(
        StatusCode::CREATED,
        body,
        Some(format!("{}/order/1", f.base)),
    )
}

async fn fake_order(State(f): St) -> Response {
    let status = if f.finalized.load(Ordering::SeqCst) {
        "valid"
    } else {
        "ready"
    };
    reply(StatusCode::OK, order_json(&f, status), None)
}

async fn authz(State(f): St) -> Response {
    let (kind, token) = match f.how {
        Misbehave::DnsOnly => ("dns-01", "tok"),
        Misbehave::BadToken => ("http-01", "../../etc/passwd"),
        _ => ("http-01", "tok"),
    };
    let body = json!({
        "status": "pending",
        "identifier": {"type": "dns", "value": "mail.acme.test"},
        "challenges": [{
            "type": kind,
            "url": format!("{}/ch/1", f.base),
            "token": token,
            "status": "pending",
        }],
    });
    reply(StatusCode::OK, body.to_string(), None)
}

async fn challenge(State(f): St) -> Response {
    *f.seen_answer.lock().unwrap() = f.challenges.answer("tok");
    let body = json!({
        "type": "http-01",
        "url": format!("{}/ch/1", f.base),
        "token": "tok",
        "status": "processing",
    });
    reply(StatusCode::OK, body.to_string(), None)
}

async fn finalize(State(f): St) -> Response {
    f.finalized.store(true, Ordering::SeqCst);
    reply(StatusCode::OK, order_json(&f, "valid"), None)
}

async fn certificate(State(f): St) -> Response {
    let mut h = HeaderMap::new();
    h.insert("Replay-Nonce", "bm9uY2U".parse().unwrap());
    h.insert(
        header::CONTENT_TYPE,
        "application/pem-certificate-chain".parse().unwrap(),
    );
    (StatusCode::OK, h, f.chain.clone()).into_response()
}

/// A CA certificate and a leaf signed by it, PEM: (ca, leaf, leaf key).
fn pki(leaf_names: &[&str]) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Fake CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let names = leaf_names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let leaf = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

/// Starts the fake CA; returns its directory URL, its root file and its state.
async fn start(
    how: Misbehave,
    dir: &std::path::Path,
    challenges: Arc<Challenges>,
) -> (String, String, Arc<Fake>) {
    use rustls_pki_types::pem::PemObject;
    let (ca, leaf, key) = pki(&["127.0.0.1"]);
    let cafile = dir.join("fake-ca.pem");
    std::fs::write(&cafile, &ca).unwrap();
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(leaf.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let (other_ca, other_leaf, _) = pki(&["other.acme.test"]);
    let fake = Arc::new(Fake {
        base: base.clone(),
        how,
        finalized: AtomicBool::new(false),
        seen_answer: Mutex::new(None),
        challenges,
        chain: format!("{other_leaf}{other_ca}"),
    });
    let app = Router::new()
        .route("/dir", any(directory))
        .route("/nonce", any(nonce))
        .route("/acct", any(fake_account))
        .route("/order", any(new_order))
        .route("/order/1", any(fake_order))
        .route("/authz/1", any(authz))
        .route("/ch/1", any(challenge))
        .route("/fin", any(finalize))
        .route("/cert", any(certificate))
        .with_state(Arc::clone(&fake));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (format!("{base}/dir"), cafile.display().to_string(), fake)
}

async fn run(how: Misbehave) -> (Result<Issued, String>, Arc<Fake>, Arc<Challenges>) {
    let dir = tempfile::tempdir().unwrap();
    let challenges = Arc::new(Challenges::default());
    let (url, cafile, fake) = start(how, dir.path(), Arc::clone(&challenges)).await;
    let names = vec!["mail.acme.test".to_string()];
    let req = Request {
        directory: &url,
        email: "pm@acme.test",
        names: &names,
        cafile: &cafile,
        challenge: crate::config::AcmeChallenge::Http01,
    };
    let result = match account(&req, None).await {
        Err(e) => Err(e),
        Ok((a, creds)) => {
            assert!(creds.is_some(), "a new account's credentials to store");
            order(&a, &req, &challenges).await.map_err(|(_, e)| e)
        }
    };
    (result, fake, challenges)
}

fn error_of(r: Result<Issued, String>) -> String {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn malformed_directory_is_refused() {
    let (r, fake, _) = run(Misbehave::MalformedDirectory).await;
    let e = error_of(r);
    eprintln!("refused: {e}");
    assert!(
        e.contains("creating the ACME account") && e.contains(&fake.base) && e.contains("JSON"),
        "{e}"
    );
}

#[tokio::test]
async fn an_order_without_http01_is_refused() {
    let (r, _, challenges) = run(Misbehave::DnsOnly).await;
    let e = error_of(r);
    eprintln!("refused: {e}");
    assert!(e.contains("no http-01 challenge for mail.acme.test"), "{e}");
    assert_eq!(challenges.answer("tok"), None);
}

#[tokio::test]
async fn a_malformed_token_is_refused() {
    let (r, _, challenges) = run(Misbehave::BadToken).await;
    let e = error_of(r);
    eprintln!("refused: {e}");
    assert!(e.contains("malformed token"), "{e}");
    assert_eq!(challenges.answer("../../etc/passwd"), None);
}

/// The order goes through (the answer published while the CA validates, withdrawn after), but
/// the certificate is for another name: the check the daemon runs refuses it.
#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let (r, fake, challenges) = run(Misbehave::OtherName).await;
    let issued = match r {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    };
    let seen = fake.seen_answer.lock().unwrap().clone();
    assert!(seen.is_some_and(|a| a.starts_with("tok.")), "published");
    assert_eq!(challenges.answer("tok"), None, "withdrawn");
    assert!(issued.key_pem.contains("PRIVATE KEY"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let names = vec!["mail.acme.test".to_string()];
    let e = super::super::plan::accept_pem(issued.cert_pem.as_bytes(), &names, now).unwrap_err();
    assert!(
        e.contains("other.acme.test") && e.contains("does not cover mail.acme.test"),
        "{e}"
    );
}
