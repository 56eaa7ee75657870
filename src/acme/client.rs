//! The conversation with the CA (RFC 8555) on instant-acme: the account, then one order whose
//! HTTP-01 challenges are answered through [`Challenges`], or TLS-ALPN-01 ones (RFC 8737)
//! through [`super::alpn`]. Thin: what to do with the result is
//! decided by [`super::plan`] and the daemon. Every error says which step failed and why, with
//! the cause chain and the CA's problem document when there is one.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, Order, OrderStatus, RetryPolicy,
};

use super::challenges::Challenges;

/// What an order needs from `[tls]`.
pub struct Request<'a> {
    pub directory: &'a str,
    pub email: &'a str,
    pub names: &'a [String],
    /// PEM root for the CA's HTTPS certificate; empty: the system's roots.
    pub cafile: &'a str,
    /// The challenge answered: HTTP-01 or TLS-ALPN-01 (never `Auto`: the daemon decides).
    pub challenge: crate::config::AcmeChallenge,
}

/// An answer published for an order, withdrawn at its end.
enum Published {
    /// HTTP-01: a token in [`Challenges`].
    Token(String),
    /// TLS-ALPN-01: a name in [`super::alpn`].
    Name(String),
}

/// A certificate chain and its key, both PEM, as the CA issued them (not yet checked).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// How long polling the order for validation, and then for the certificate, may take.
const POLL: Duration = Duration::from_secs(90);

/// An error and what caused it, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

fn step<'a>(what: &'a str, directory: &'a str) -> impl Fn(instant_acme::Error) -> String + 'a {
    move |e| {
        let why = chain(&e);
        let hint = if why.contains("(Connect)") {
            "; is the ACME server reachable from here?"
        } else {
            ""
        };
        format!("{what} (ACME server {directory}): {why}{hint}")
    }
}

/// Whether the CA no longer knows the account (a test CA restarted, or the account was
/// deactivated): then a new one is made.
fn account_gone(e: &instant_acme::Error) -> bool {
    match e {
        instant_acme::Error::Api(p) => p
            .r#type
            .as_deref()
            .is_some_and(|t| t.ends_with(":accountDoesNotExist") || t.ends_with(":unauthorized")),
        _ => false,
    }
}

fn builder(req: &Request) -> Result<instant_acme::AccountBuilder, String> {
    if req.cafile.is_empty() {
        Account::builder()
            .map_err(|e| format!("cannot set up the HTTPS client for ACME: {}", chain(&e)))
    } else {
        Account::builder_with_root(req.cafile).map_err(|e| {
            format!(
                "[tls] acme_cafile {}: cannot use it as the ACME server's root: {}",
                req.cafile,
                chain(&e)
            )
        })
    }
}

/// Opens the account stored earlier (`stored`), or makes one. Returns the account and, when it
/// is new, its credentials to store.
pub async fn account(
    req: &Request<'_>,
    stored: Option<serde_json::Value>,
) -> Result<(Account, Option<serde_json::Value>), String> {
    if let Some(value) = stored {
        let creds: AccountCredentials = serde_json::from_value(value)
            .map_err(|e| format!("the stored ACME account does not parse ({e}); remove acme-account.json to make a new one"))?;
        let a = builder(req)?
            .from_credentials(creds)
            .await
            .map_err(step("opening the ACME account", req.directory))?;
        return Ok((a, None));
    }
    let contact = format!("mailto:{}", req.email);
    let contacts: Vec<&str> = if req.email.is_empty() {
        Vec::new()
    } else {
        vec![contact.as_str()]
    };
    let (a, creds) = builder(req)?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            req.directory.to_string(),
            None,
        )
        .await
        .map_err(step("creating the ACME account", req.directory))?;
    let value = serde_json::to_value(&creds).map_err(|e| e.to_string())?;
    Ok((a, Some(value)))
}

/// Places an order for `req.names` and sees it through: HTTP-01 answers published in
/// `challenges` (and withdrawn at the end, whatever happens), validation, a new key and CSR,
/// the certificate. An error whose first part is true: the CA does not know the account (make a
/// new one and try again).
pub async fn order(
    account: &Account,
    req: &Request<'_>,
    challenges: &Challenges,
) -> Result<Issued, (bool, String)> {
    let ids: Vec<Identifier> = req
        .names
        .iter()
        .map(|n| Identifier::Dns(n.clone()))
        .collect();
    let mut order = match account.new_order(&NewOrder::new(&ids)).await {
        Ok(o) => o,
        Err(e) => {
            let gone = account_gone(&e);
            return Err((gone, step("placing the order", req.directory)(e)));
        }
    };
    let mut published = Vec::new();
    let result = run(&mut order, req, challenges, &mut published).await;
    for p in &published {
        match p {
            Published::Token(t) => challenges.remove(t),
            Published::Name(n) => super::alpn::withdraw(n),
        }
    }
    result.map_err(|e| (false, e))
}

async fn run(
    order: &mut Order,
    req: &Request<'_>,
    challenges: &Challenges,
    published: &mut Vec<Published>,
) -> Result<Issued, String> {
    use crate::config::AcmeChallenge;
    let dir = req.directory;
    let (kind, label) = match req.challenge {
        AcmeChallenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, "tls-alpn-01"),
        AcmeChallenge::Http01 | AcmeChallenge::Auto => (ChallengeType::Http01, "http-01"),
    };
    let mut auths = order.authorizations();
    while let Some(a) = auths.next().await {
        let mut a = a.map_err(step("reading the order's authorizations", dir))?;
        let name = a.identifier().to_string();
        match a.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(format!(
                    "the CA's authorization for {name} is {other:?}, not pending (ACME server {dir})"
                ));
            }
        }
        let mut ch = a.challenge(kind.clone()).ok_or_else(|| {
            format!(
                "the CA offers no {label} challenge for {name} (set [tls] acme_challenge to the other of \"http-01\" and \"tls-alpn-01\"; ACME server {dir})"
            )
        })?;
        if kind == ChallengeType::TlsAlpn01 {
            super::alpn::publish(&name, ch.key_authorization().digest().as_ref())?;
            published.push(Published::Name(name.clone()));
            ch.set_ready()
                .await
                .map_err(step(&format!("answering the challenge for {name}"), dir))?;
            continue;
        }
        if ch.token.is_empty()
            || !ch
                .token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "the CA's http-01 challenge for {name} has a malformed token (RFC 8555 section 8.3: base64url); refused (ACME server {dir})"
            ));
        }
        challenges.insert(&ch.token, ch.key_authorization().as_str());
        published.push(Published::Token(ch.token.clone()));
        ch.set_ready()
            .await
            .map_err(step(&format!("answering the challenge for {name}"), dir))?;
    }
    let status = order
        .poll_ready(&RetryPolicy::new().timeout(POLL))
        .await
        .map_err(step("waiting for the CA to validate the names", dir))?;
    if status != OrderStatus::Ready {
        return Err(why_invalid(order, req, label).await);
    }
    let key_pem = order
        .finalize()
        .await
        .map_err(step("finalizing the order (sending the CSR)", dir))?;
    let cert_pem = order
        .poll_certificate(&RetryPolicy::new().timeout(POLL))
        .await
        .map_err(step("downloading the certificate", dir))?;
    Ok(Issued { cert_pem, key_pem })
}

#[cfg(test)]
mod tests;

/// The CA's reasons for an order that became invalid: each failed challenge's problem.
async fn why_invalid(order: &mut Order, req: &Request<'_>, label: &str) -> String {
    let mut reasons = Vec::new();
    let mut auths = order.authorizations();
    while let Some(Ok(mut a)) = auths.next().await {
        let Ok(state) = a.refresh().await else {
            continue;
        };
        let name = state.identifier().to_string();
        for c in &state.challenges {
            if let Some(p) = &c.error {
                reasons.push(format!("{name}: {p}"));
            }
        }
    }
    let why = if reasons.is_empty() {
        "no reason given".to_string()
    } else {
        reasons.join("; ")
    };
    let how = match label {
        "tls-alpn-01" => {
            "the CA must reach NAME:443 with TLS on an implicit-TLS listener (submissions, pop3s, imaps or [http] tls = true)"
        }
        _ => "the CA must reach http://NAME/.well-known/acme-challenge/ on [http] listen",
    };
    format!(
        "the CA did not validate {} over {label} ({why}); {how} (ACME server {})",
        req.names.join(", "),
        req.directory
    )
}
