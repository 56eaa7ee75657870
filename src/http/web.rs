//! The small web view: server-rendered pages (maud, compiled in; no JavaScript framework) behind
//! the same access rule as the API. `/web`: the messages of one mailbox or all, newest first,
//! with search and pages, and a few lines of script (`/web/live.js`) that reload the first page
//! when the events stream says a message arrived. `/web/messages/{id}`: headers, the text part,
//! the HTML part in an iframe (`sandbox` without scripts) of `/api/v1/messages/{id}/parts/{n}`,
//! whose own CSP forbids scripts and remote loads; attachments, the raw source. Deleting (one,
//! or all) is a POST carrying the per-process CSRF token, refused from another origin.
//!
//! Everything from a message is escaped by maud; nothing of it reaches a page unescaped. A
//! message is parsed up to `[limits] max_message_bytes`; the page shows at most [`TEXT_MAX`] of
//! its text (the rest through the raw source, which is streamed).

use std::sync::OnceLock;

use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use std::sync::Arc;

use super::access::Caller;
use super::id::Cursor;
use super::messages;
use super::query::{self, Filter};
use super::routes::{Answer, ApiError, App, AppState, Who, blocking};
use super::select::{self, Order};
use crate::mailbox::browse;

/// Messages on one page of the list.
const PAGE: usize = 50;
/// Octets of the text part shown on a message page.
pub const TEXT_MAX: usize = 256 * 1024;

/// The pages' policy: their own script and styles, frames of this origin (the HTML part), no
/// remote loads, not framed by anyone, forms only to this origin.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; frame-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em;color:#222}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .5em;border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4}a{color:#0645ad}pre{white-space:pre-wrap;background:#f8f8f8;padding:.8em;border:1px solid #ddd}iframe{width:100%;height:30em;border:1px solid #ddd}form.inline{display:inline}.muted{color:#777}#arrived{background:#ffd;padding:.4em}";

/// Plain script, no framework: on a delivery event, the first page reloads; later pages say so.
const LIVE_JS: &str = r#""use strict";
const es = new EventSource("/api/v1/events");
es.addEventListener("delivered", () => {
  if (document.body.dataset.first === "1") { location.reload(); }
  else { document.getElementById("arrived").hidden = false; }
});
es.onerror = () => es.close();
"#;

pub fn routes() -> Vec<(&'static str, MethodRouter<Arc<App>>)> {
    vec![
        ("/web", get(list)),
        ("/web/live.js", get(live_js)),
        ("/web/messages/{id}", get(show)),
        ("/web/messages/{id}/delete", post(delete_one)),
        ("/web/delete-all", post(delete_all)),
    ]
}

/// The per-process token every delete form carries (a cross-site page cannot read it).
fn csrf() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let mut b = [0u8; 24];
        // Without randomness, an empty token refuses every POST (the check below).
        if getrandom::fill(&mut b).is_err() {
            return String::new();
        }
        b.iter().map(|x| format!("{x:02x}")).collect()
    })
}

/// A POST that may act: the right token, and not sent by another site (`Origin` and
/// `Sec-Fetch-Site`, when the browser sends them).
fn check_post(headers: &HeaderMap, form: &[(String, String)]) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::new(StatusCode::FORBIDDEN, why.to_string());
    let token = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    let good = csrf();
    if good.is_empty() || token != Some(good) {
        return Err(refused(
            "missing or wrong form token: reload the page and try again",
        ));
    }
    let h = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if h("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return Err(refused("a form of another site"));
    }
    if let (Some(origin), Some(host)) = (h("origin"), h("host")) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        if origin_host != host {
            return Err(refused("a form of another origin"));
        }
    }
    Ok(())
}

fn page(title: &str, first: bool, body: Markup) -> Response {
    let m = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="referrer" content="no-referrer";
                title { (title) " · smtpd" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body data-first=(if first { "1" } else { "0" }) {
                p { a href="/web" { "smtpd mail" } }
                (body)
                script src="/web/live.js" {}
            }
        }
    };
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn live_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        LIVE_JS,
    )
        .into_response()
}

/// `GET /web?mailbox=&q=&cursor=`: one page of the list.
async fn list(
    State(app): AppState,
    Extension(caller): Who,
    Form(q): Form<Vec<(String, String)>>,
) -> Answer {
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (mailbox_text, search, cursor_text) = (get("mailbox"), get("q"), get("cursor"));
    let asked = match mailbox_text.as_str() {
        "" => None,
        t => Some(query::parse_mailbox(t).map_err(ApiError::bad_request)?),
    };
    let mailbox = caller.scope(asked)?;
    let cursor = match cursor_text.as_str() {
        "" => None,
        t => Some(Cursor::parse(t).ok_or_else(|| ApiError::bad_request("bad cursor"))?),
    };
    let filter = Filter {
        mailbox: mailbox.clone(),
        contains: Some(search.to_lowercase()).filter(|s| !s.is_empty()),
        ..Filter::default()
    };
    let (root, read_max) = (app.ctx.root.clone(), Some(app.ctx.read_max));
    let (page_, boxes) = blocking("listing the messages", move || {
        let p = select::select(
            &root,
            &filter,
            Order::Newest,
            cursor.as_ref(),
            PAGE,
            read_max,
        )?;
        Ok((p, browse::maildirs(&root)?))
    })
    .await?;
    let boxes: Vec<String> = boxes
        .into_iter()
        .filter(|(d, l)| caller.may_see(d, l))
        .map(|(d, l)| format!("{l}@{d}"))
        .collect();
    let shown = mailbox.as_ref().map(|(d, l)| format!("{l}@{d}"));
    let next = page_.next_cursor().map(|c| c.encode());
    let first = cursor_text.is_empty();
    let body = html! {
        form method="get" action="/web" {
            select name="mailbox" {
                @if caller == Caller::Operator {
                    option value="" { "all mailboxes" }
                }
                @for b in &boxes {
                    option value=(b) selected[shown.as_deref() == Some(b.as_str())] { (b) }
                }
            }
            " "
            input type="search" name="q" value=(search) placeholder="subject or text";
            " "
            button { "Search" }
        }
        p id="arrived" hidden { "New mail arrived: " a href="/web" { "reload" } }
        table {
            tr { th { "Delivered" } th { "Mailbox" } th { "From" } th { "To" } th { "Subject" } th { "Size" } }
            @for (_, s) in &page_.messages {
                tr {
                    td class="muted" { (s.delivered) }
                    td { (s.mailbox) }
                    td { (s.from.as_deref().unwrap_or("")) }
                    td { (s.to.join(", ")) }
                    td {
                        a href={ "/web/messages/" (s.id) } {
                            (s.subject.as_deref().filter(|t| !t.is_empty()).unwrap_or("(no subject)"))
                        }
                        @if s.attachments > 0 { " 📎" }
                        br; span class="muted" { (s.snippet) }
                    }
                    td { (s.size) }
                }
            }
        }
        @if page_.messages.is_empty() { p class="muted" { "No messages." } }
        @if let Some(n) = &next {
            p { a href={ "/web?" (encode(&[("mailbox", shown.as_deref().unwrap_or("")), ("q", &search), ("cursor", n)])) } { "Older messages →" } }
        }
        form class="inline" method="post" action="/web/delete-all" {
            input type="hidden" name="csrf" value=(csrf());
            input type="hidden" name="mailbox" value=(shown.as_deref().unwrap_or(""));
            button { "Delete all messages" @if let Some(m) = &shown { " of " (m) } }
        }
    };
    Ok(page("Messages", first, body))
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// `GET /web/messages/{id}`: one message.
async fn show(State(app): AppState, Extension(caller): Who, Path(id): Path<String>) -> Answer {
    let d = messages::parsed(&app, &caller, &id, Ok(Query(Vec::new())), |s, raw, m| {
        super::detail::detail(&s, raw, m)
    })
    .await?;
    let id = text(&d, "id");
    let mut body_text = text(&d, "text");
    let cut = body_text.len() > TEXT_MAX;
    if cut {
        let mut end = TEXT_MAX;
        while !body_text.is_char_boundary(end) {
            end -= 1;
        }
        body_text.truncate(end);
    }
    let html_part = d.get("html_part").and_then(Value::as_u64);
    let headers = d["headers"].as_array().cloned().unwrap_or_default();
    let attachments = d["attachments"].as_array().cloned().unwrap_or_default();
    let subject = Some(text(&d, "subject")).filter(|s| !s.is_empty());
    let body = html! {
        h1 { (subject.as_deref().unwrap_or("(no subject)")) }
        p {
            a href={ "/api/v1/messages/" (id) "/raw" } { "Raw source" }
            " · "
            form class="inline" method="post" action={ "/web/messages/" (id) "/delete" } {
                input type="hidden" name="csrf" value=(csrf());
                button { "Delete" }
            }
        }
        details {
            summary { "Headers (" (headers.len()) ")" }
            table {
                @for h in &headers {
                    tr { th { (text(h, "name")) } td { (text(h, "value")) } }
                }
            }
        }
        @if !attachments.is_empty() {
            h2 { "Attachments" }
            ul {
                @for a in &attachments {
                    li {
                        a href={ "/api/v1/messages/" (id) "/parts/" (a["part"]) } {
                            (a.get("name").and_then(Value::as_str).unwrap_or("(unnamed)"))
                        }
                        " " span class="muted" { (text(a, "content_type")) ", " (a["size"]) " octets" }
                    }
                }
            }
        }
        @if let Some(n) = html_part {
            h2 { "HTML" }
            iframe sandbox="" referrerpolicy="no-referrer" src={ "/api/v1/messages/" (id) "/parts/" (n) } title="HTML part" {}
        }
        @if !body_text.is_empty() || html_part.is_none() {
            h2 { "Text" }
            pre { (body_text) }
            @if cut {
                p class="muted" { "Cut at " (TEXT_MAX / 1024) " KiB: see the raw source for the rest." }
            }
        }
    };
    Ok(page(subject.as_deref().unwrap_or("Message"), false, body))
}

async fn delete_one(
    State(app): AppState,
    Extension(caller): Who,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Answer {
    check_post(&headers, &form)?;
    let s = messages::stored(&app, &caller, &id, Ok(Query(Vec::new()))).await?;
    blocking("deleting the message", move || browse::remove(&s)).await?;
    Ok(Redirect::to("/web").into_response())
}

async fn delete_all(
    State(app): AppState,
    Extension(caller): Who,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Answer {
    check_post(&headers, &form)?;
    let asked = match form
        .iter()
        .find(|(k, _)| k == "mailbox")
        .map(|(_, v)| v.trim())
    {
        None | Some("") => None,
        Some(t) => Some(query::parse_mailbox(t).map_err(ApiError::bad_request)?),
    };
    let mailbox = caller.scope(asked)?;
    let root = app.ctx.root.clone();
    let back = match &mailbox {
        Some((d, l)) => format!("/web?{}", encode(&[("mailbox", &format!("{l}@{d}"))])),
        None => "/web".to_string(),
    };
    blocking("deleting messages", move || {
        select::remove_all(&root, mailbox.as_ref())
    })
    .await?;
    Ok(Redirect::to(&back).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_need_the_token_and_this_origin() {
        let form = |t: &str| vec![("csrf".to_string(), t.to_string())];
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8025"));
        assert!(check_post(&h, &form(csrf())).is_ok());
        assert!(check_post(&h, &form("nope")).is_err());
        assert!(check_post(&h, &[]).is_err());
        let mut same = h.clone();
        same.insert("origin", HeaderValue::from_static("http://127.0.0.1:8025"));
        assert!(check_post(&same, &form(csrf())).is_ok());
        let mut other = h.clone();
        other.insert("origin", HeaderValue::from_static("http://evil.test"));
        assert!(check_post(&other, &form(csrf())).is_err());
        let mut cross = h;
        cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_post(&cross, &form(csrf())).is_err());
    }
}
