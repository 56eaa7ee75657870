//! The router: every route (also listed in `openapi.json`, which a test holds to this table), the
//! access rule, and the handlers. Blocking file work runs in `spawn_blocking`; a request error is
//! a JSON `{"error": "..."}` with its status, and never names a path.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::json;
use tracing::warn;

use super::access::{self, Caller};
use super::query::Filter;
use super::{HttpContext, HttpShared};
use super::{autoconfig, messages};

/// One connection's view: the generation's context, the daemon's part, and who is asking.
pub struct App {
    pub ctx: Arc<HttpContext>,
    pub shared: Arc<HttpShared>,
    pub peer: SocketAddr,
    /// The connection is HTTPS (`[http] tls = true`): Basic credentials may be used.
    pub tls: bool,
}

pub type AppState = State<Arc<App>>;
pub type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;
/// The caller of a guarded route, as [`access::access`] decided.
pub type Who = Extension<Caller>;

/// Every route: its path and methods (as the OpenAPI document lists them).
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/health", &["get"]),
    ("/metrics", &["get"]),
    ("/api/openapi.json", &["get"]),
    ("/api/v1/messages", &["get", "delete"]),
    ("/api/v1/messages/{id}", &["get", "delete"]),
    ("/api/v1/messages/{id}/raw", &["get"]),
    ("/api/v1/messages/{id}/parts/{n}", &["get"]),
    ("/api/v1/messages/{id}/links", &["get"]),
    ("/api/v1/messages/{id}/codes", &["get"]),
    ("/api/v1/wait", &["get"]),
    ("/api/v1/events", &["get"]),
    ("/mail/config-v1.1.xml", &["get"]),
    ("/.well-known/autoconfig/mail/config-v1.1.xml", &["get"]),
    ("/.well-known/acme-challenge/{token}", &["get"]),
];

/// Routes open to every peer, whatever its Host: or credentials: readiness, the autoconfig
/// document (a mail client asks for it, by the domain's name, before it has credentials) and
/// the ACME HTTP-01 answers (the CA asks by the certificate's names).
const OPEN: &[&str] = &[
    "/health",
    "/mail/config-v1.1.xml",
    "/.well-known/autoconfig/mail/config-v1.1.xml",
    "/.well-known/acme-challenge/{token}",
];

/// The OpenAPI 3.1 document served at `/api/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The routes as [`ROUTES`] lists them; [`OPEN`] ones are open to all, the rest go through
/// [`access`].
fn table() -> Vec<(&'static str, MethodRouter<Arc<App>>)> {
    vec![
        ("/health", get(health)),
        ("/metrics", get(metrics)),
        ("/api/openapi.json", get(openapi)),
        (
            "/api/v1/messages",
            get(messages::list).delete(messages::delete_all),
        ),
        (
            "/api/v1/messages/{id}",
            get(messages::show).delete(messages::delete_one),
        ),
        ("/api/v1/messages/{id}/raw", get(messages::raw)),
        ("/api/v1/messages/{id}/parts/{n}", get(messages::part)),
        ("/api/v1/messages/{id}/links", get(messages::links)),
        ("/api/v1/messages/{id}/codes", get(messages::codes)),
        ("/api/v1/wait", get(super::wait::wait)),
        ("/api/v1/events", get(super::events::events)),
        ("/mail/config-v1.1.xml", get(autoconfig::autoconfig)),
        (
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(autoconfig::autoconfig),
        ),
        ("/.well-known/acme-challenge/{token}", get(acme_challenge)),
    ]
}

pub fn router(app: Arc<App>) -> Router {
    let mut open = Router::new();
    let mut guarded = Router::new();
    for (path, route) in table() {
        if OPEN.contains(&path) {
            open = open.route(path, route);
        } else {
            guarded = guarded.route(path, route);
        }
    }
    // The web view: HTML pages, not part of the API document.
    for (path, route) in super::web::routes() {
        guarded = guarded.route(path, route);
    }
    let guarded = guarded.route_layer(middleware::from_fn_with_state(
        Arc::clone(&app),
        access::access,
    ));
    open.merge(guarded).fallback(not_found).with_state(app)
}

/// A request that cannot be answered as asked: its status and what to tell the client (never a
/// path), as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn no_message() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "no such message")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub type Answer = Result<Response, ApiError>;

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route (see /api/openapi.json)",
    )
}

async fn health(State(app): AppState) -> Response {
    if app.shared.shutdown.is_cancelled() {
        let body = Json(json!({"status": "stopping"}));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    } else if app
        .shared
        .draining
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        let body = Json(json!({"status": "draining"}));
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    } else {
        Json(json!({"status": "ok"})).into_response()
    }
}

async fn metrics(State(app): AppState) -> Response {
    let text = (app.shared.metrics)();
    let kind = [(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )];
    (kind, text).into_response()
}

/// HTTP-01 (RFC 8555 section 8.3): the key authorization of a challenge in flight, as
/// `application/octet-stream` would also do; anything else is 404.
async fn acme_challenge(
    State(app): AppState,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    match app.shared.challenges.answer(&token) {
        Some(answer) => ([(header::CONTENT_TYPE, "text/plain")], answer).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "no such ACME challenge").into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The query pairs, or the 400 for an undecodable query.
pub fn pairs(p: Params) -> Result<Vec<(String, String)>, ApiError> {
    p.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))
}

/// Runs blocking file work; an I/O error is logged and answered 500.
pub async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let failed = || ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} failed"));
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => {
            warn!(error = %e, "http: {what} failed");
            Err(failed())
        }
        Err(_) => Err(failed()),
    }
}

/// What a filter means in words, for a 408.
pub fn describe(f: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some((d, l)) = &f.mailbox {
        parts.push(format!("mailbox={l}@{d}"));
    }
    let texts = [
        ("to", &f.to),
        ("from", &f.from),
        ("subject", &f.subject),
        ("contains", &f.contains),
    ];
    for (name, v) in texts {
        if let Some(v) = v {
            parts.push(format!("{name}={v}"));
        }
    }
    if parts.is_empty() {
        "any message".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
