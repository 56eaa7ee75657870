//! The message routes: list, show (parsed), raw, one part, links, codes, delete. Files are read
//! in `spawn_blocking` ([`blocking`]), a message at most `[limits] max_message_bytes` (and its
//! added headers) for parsing; `/raw` streams the file.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use tokio_util::io::ReaderStream;
use tracing::warn;

use super::access::{self, Caller};
use super::detail;
use super::id::MessageId;
use super::message::{self, Summary};
use super::query;
use super::routes::{Answer, ApiError, App, AppState, Params, Who, blocking, pairs};
use super::select::{self, Order, Target};
use crate::mailbox::browse::{self, Stored};

pub async fn list(State(app): AppState, Extension(caller): Who, q: Params) -> Answer {
    let mut q = query::parse_list(&pairs(q)?).map_err(ApiError::bad_request)?;
    q.filter.mailbox = caller.scope(q.filter.mailbox.take())?;
    let (root, read_max) = (app.ctx.root.clone(), Some(app.ctx.read_max));
    let page = blocking("listing the messages", move || {
        let after = q.cursor.as_ref();
        select::select(&root, &q.filter, Order::Newest, after, q.limit, read_max)
    })
    .await?;
    let next = page.next_cursor().map(|c| c.encode());
    let messages: Vec<Summary> = page.messages.into_iter().map(|(_, s)| s).collect();
    Ok(Json(json!({ "messages": messages, "next_cursor": next })).into_response())
}

pub async fn delete_all(State(app): AppState, Extension(caller): Who, q: Params) -> Answer {
    let mailbox = query::parse_mailbox_only(&pairs(q)?).map_err(ApiError::bad_request)?;
    let mailbox = caller.scope(mailbox)?;
    let root = app.ctx.root.clone();
    let n = blocking("deleting messages", move || {
        select::remove_all(&root, mailbox.as_ref())
    })
    .await?;
    Ok(Json(json!({ "deleted": n })).into_response())
}

/// What `{id}` names: `latest` (with `?mailbox=`) or an id; else 404 (or 400); 403 when it is
/// in a mailbox outside the caller's rights (before looking whether it exists).
pub fn target(caller: &Caller, id: &str, q: Params) -> Result<Target, ApiError> {
    let pairs = pairs(q)?;
    if id == "latest" {
        let mailbox = query::parse_mailbox_only(&pairs).map_err(ApiError::bad_request)?;
        return Ok(Target::Latest(caller.scope(mailbox)?));
    }
    if let Some((name, _)) = pairs.first() {
        let e = format!("unknown parameter `{name}` (only `latest` takes `mailbox`)");
        return Err(ApiError::bad_request(e));
    }
    let id = MessageId::parse(id).ok_or_else(ApiError::no_message)?;
    if !caller.may_see(&id.domain, &id.local) {
        return Err(access::forbidden());
    }
    Ok(Target::Id(id))
}

/// The stored message `{id}` names.
pub async fn stored(app: &App, caller: &Caller, id: &str, q: Params) -> Result<Stored, ApiError> {
    let t = target(caller, id, q)?;
    let root = app.ctx.root.clone();
    blocking("reading the mailbox", move || select::find(&root, &t))
        .await?
        .ok_or_else(ApiError::no_message)
}

/// Reads the message `{id}` names (up to `read_max`), parses it, and gives `f` its summary (with
/// the body's part), its octets and the parse; 404 when it is not there.
pub async fn parsed<T: Send + 'static>(
    app: &App,
    caller: &Caller,
    id: &str,
    q: Params,
    f: impl FnOnce(Summary, &[u8], Option<&mail_parser::Message>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let s = stored(app, caller, id, q).await?;
    let read_max = app.ctx.read_max;
    blocking("reading the message", move || {
        let raw = match browse::read_bounded(&s.path, read_max) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(mut summary) = message::summarize(&s, &raw) else {
            return Ok(None);
        };
        let m = detail::parse(&raw);
        if let Some(m) = &m {
            detail::complete(&mut summary, m);
        }
        Ok(Some(f(summary, &raw, m.as_ref())))
    })
    .await?
    .ok_or_else(ApiError::no_message)
}

pub async fn show(
    State(app): AppState,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Params,
) -> Answer {
    let d = parsed(&app, &caller, &id, q, |s, raw, m| {
        detail::detail(&s, raw, m)
    })
    .await?;
    Ok(Json(d).into_response())
}

pub async fn links(
    State(app): AppState,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Params,
) -> Answer {
    let links = parsed(&app, &caller, &id, q, |_, _, m| m.map(detail::links)).await?;
    Ok(Json(json!({ "links": links.unwrap_or_default() })).into_response())
}

pub async fn codes(
    State(app): AppState,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Params,
) -> Answer {
    let codes = parsed(&app, &caller, &id, q, |_, _, m| m.map(detail::codes)).await?;
    Ok(Json(json!({ "codes": codes.unwrap_or_default() })).into_response())
}

/// What a browser may do with a part: nothing remote, no scripts, no plugins, no forms, no
/// same-origin rights (`sandbox`); inline styles and `data:`/`cid:` images only.
pub const PART_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:; sandbox";

/// One part, decoded, with its own type; attachments as downloads with a safe file name.
pub async fn part(
    State(app): AppState,
    Extension(caller): Who,
    Path((id, n)): Path<(String, String)>,
    q: Params,
) -> Answer {
    let n: usize = n
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "no such part"))?;
    let found = parsed(&app, &caller, &id, q, move |_, _, m| {
        m.map_or(detail::Part::Missing, |m| detail::part(m, n))
    })
    .await?;
    let (content_type, disposition, bytes) = match found {
        detail::Part::Body {
            content_type,
            disposition,
            bytes,
            ..
        } => (content_type, disposition, bytes),
        detail::Part::Container(subs) => {
            let list: Vec<String> = subs.iter().map(usize::to_string).collect();
            let why = format!(
                "part {n} is a multipart: it has no body of its own (its parts: {})",
                list.join(", ")
            );
            return Err(ApiError::new(StatusCode::NOT_FOUND, why));
        }
        detail::Part::Missing => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such part")),
    };
    let mut r = Body::from(bytes).into_response();
    let h = r.headers_mut();
    let ct = HeaderValue::from_str(&content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    if let Some(d) = disposition.and_then(|d| HeaderValue::from_str(&d).ok()) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PART_CSP),
    );
    Ok(r)
}

/// The stored octets, streamed from the file.
pub async fn raw(
    State(app): AppState,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Params,
) -> Answer {
    let s = stored(&app, &caller, &id, q).await?;
    let file = match tokio::fs::File::open(&s.path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::no_message()),
        Err(e) => {
            warn!(error = %e, "http: opening a message failed");
            let why = "reading the message failed";
            return Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, why));
        }
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let mut r = Body::from_stream(ReaderStream::new(file)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(r)
}

pub async fn delete_one(
    State(app): AppState,
    Extension(caller): Who,
    Path(id): Path<String>,
    q: Params,
) -> Answer {
    let s = stored(&app, &caller, &id, q).await?;
    let removed = blocking("deleting the message", move || browse::remove(&s)).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::no_message())
    }
}
