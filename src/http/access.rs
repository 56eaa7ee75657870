//! Who is asking, and what they may see. A loopback peer (whose `Host:` names this machine), the
//! `[http] token` (Bearer) and an account in `[http] admins` are operators: every mailbox and
//! every route. Any other account, logged in with Basic credentials (over HTTPS only, never in
//! clear), sees its own mailbox only: a list, wait or delete-all is limited to it, and anything
//! naming another mailbox is 403 whether it exists or not. Operator routes ([`OPERATOR`]) refuse
//! such accounts.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;

use super::routes::{ApiError, AppState};
use super::{host_is_local, is_loopback};

/// Routes for operators only: the counters and the event stream (every session's peer and
/// addresses).
pub const OPERATOR: &[&str] = &["/metrics", "/api/v1/events"];

/// The caller of a guarded route (in the request's extensions once [`access`] let it through).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Loopback, the token, or an admin account: every mailbox.
    Operator,
    /// An account: its own Maildir, (domain, local part) lower-cased.
    Account(String, String),
}

/// The answer for a mailbox outside the caller's rights; the same whether it exists or not.
pub fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "that mailbox is outside this account's rights",
    )
}

impl Caller {
    /// Whether the caller may see the Maildir `(domain, local)`.
    pub fn may_see(&self, domain: &str, local: &str) -> bool {
        match self {
            Caller::Operator => true,
            Caller::Account(d, l) => d == domain && l == local,
        }
    }

    /// The Maildir a list, wait or delete-all is limited to: the one asked for, if the caller
    /// may see it (else 403), or, when none is asked, all (operators) or the account's own.
    pub fn scope(
        &self,
        asked: Option<(String, String)>,
    ) -> Result<Option<(String, String)>, ApiError> {
        match (self, asked) {
            (_, Some((d, l))) if self.may_see(&d, &l) => Ok(Some((d, l))),
            (_, Some(_)) => Err(forbidden()),
            (Caller::Operator, None) => Ok(None),
            (Caller::Account(d, l), None) => Ok(Some((d.clone(), l.clone()))),
        }
    }
}

/// The credentials of an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    None,
    Bearer(Vec<u8>),
    Basic(String, String),
    Bad,
}

fn presented(value: Option<&HeaderValue>) -> Presented {
    let Some(v) = value else {
        return Presented::None;
    };
    let v = v.as_bytes();
    let Some(sp) = v.iter().position(|&b| b == b' ') else {
        return Presented::Bad;
    };
    let (scheme, rest) = (&v[..sp], v[sp + 1..].trim_ascii());
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return Presented::Bearer(rest.to_vec());
    }
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Presented::Bad;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest);
    let Some(text) = decoded.ok().and_then(|d| String::from_utf8(d).ok()) else {
        return Presented::Bad;
    };
    match text.split_once(':') {
        Some((user, pass)) => Presented::Basic(user.to_string(), pass.to_string()),
        None => Presented::Bad,
    }
}

/// The middleware of every guarded route: decides the [`Caller`] (401 without usable
/// credentials, 403 for a loopback `Host:` naming another site or an account on an operator
/// route) and hands it to the handler.
pub async fn access(State(app): AppState, mut req: Request, next: Next) -> Response {
    // Copied out: the request (its body) is not Sync, so it is not held across the await.
    let host = req.headers().get(header::HOST).cloned();
    let auth = req.headers().get(header::AUTHORIZATION).cloned();
    let caller = match caller(&app, host, auth).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Operator routes have no parameters: the request's path is the route's.
    if caller != Caller::Operator && OPERATOR.contains(&req.uri().path()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "this route is for operators: loopback peers, the [http] token, or accounts in [http] admins",
        )
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn caller(
    app: &super::routes::App,
    host: Option<HeaderValue>,
    auth: Option<HeaderValue>,
) -> Result<Caller, Response> {
    if is_loopback(&app.peer) {
        let host = host.as_ref().map(|h| h.to_str().unwrap_or("\u{0}"));
        if host_is_local(host, &app.ctx.hostname) {
            return Ok(Caller::Operator);
        }
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Host names another site: loopback peers must use localhost, an address or this server's hostname (DNS rebinding protection)",
        )
        .into_response());
    }
    let token = app.ctx.token.as_bytes();
    let why = match presented(auth.as_ref()) {
        Presented::Bearer(t) if !token.is_empty() && bool::from(t.ct_eq(token)) => {
            return Ok(Caller::Operator);
        }
        Presented::Bearer(_) if token.is_empty() => {
            "[http] token is not set: this server serves loopback peers only (and accounts over HTTPS)"
        }
        Presented::Bearer(_) => "wrong token",
        Presented::Basic(..) if !app.tls => {
            "Basic credentials are accepted over HTTPS only ([http] tls = true)"
        }
        Presented::Basic(user, pass) => {
            // One request, one try: the delay does not grow (there is no session to count in).
            let delay = app.ctx.auth_failure_delay;
            let ok = crate::net::login::check(&app.ctx.accounts, &user, pass, delay, 0).await;
            match user.to_ascii_lowercase().rsplit_once('@') {
                Some((l, d)) if ok => {
                    let admin = app
                        .ctx
                        .admins
                        .iter()
                        .any(|a| *a == user.to_ascii_lowercase());
                    return Ok(if admin {
                        Caller::Operator
                    } else {
                        Caller::Account(d.to_string(), l.to_string())
                    });
                }
                _ => "wrong user name or password",
            }
        }
        Presented::Bad => "unreadable Authorization header",
        Presented::None if token.is_empty() && !app.tls => {
            "this server serves its API to loopback peers only ([http] token is not set)"
        }
        Presented::None => {
            "send Authorization: Bearer <token> ([http] token), or an account's Basic credentials over HTTPS"
        }
    };
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, why).into_response();
    let challenge = if app.tls {
        "Bearer realm=\"smtpd\", Basic realm=\"smtpd\", charset=\"UTF-8\""
    } else {
        "Bearer realm=\"smtpd\""
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    Err(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(presented(None), Presented::None);
        assert_eq!(
            presented(Some(&h("Bearer abc"))),
            Presented::Bearer(b"abc".to_vec())
        );
        assert_eq!(
            presented(Some(&h("bearer  abc "))),
            Presented::Bearer(b"abc".to_vec())
        );
        // "alice@example.test:pa:ss"
        assert_eq!(
            presented(Some(&h("Basic YWxpY2VAZXhhbXBsZS50ZXN0OnBhOnNz"))),
            Presented::Basic("alice@example.test".into(), "pa:ss".into())
        );
        for bad in ["Basic", "Basic !!!", "Basic YWxpY2U=", "Digest x", "x"] {
            assert_eq!(presented(Some(&h(bad))), Presented::Bad, "{bad}");
        }
    }

    #[test]
    fn scopes() {
        let op = Caller::Operator;
        let alice = Caller::Account("example.test".into(), "alice".into());
        let mb = |l: &str| Some(("example.test".to_string(), l.to_string()));
        assert_eq!(op.scope(None).unwrap(), None);
        assert_eq!(op.scope(mb("bob")).unwrap(), mb("bob"));
        assert_eq!(alice.scope(None).unwrap(), mb("alice"));
        assert_eq!(alice.scope(mb("alice")).unwrap(), mb("alice"));
        assert_eq!(
            alice.scope(mb("bob")).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(alice.may_see("example.test", "alice") && !alice.may_see("example.test", "bob"));
    }
}
