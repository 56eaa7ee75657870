//! The router in-process (no socket): the route table against the OpenAPI document, the access
//! rule, and each route's answers on a small Maildir tree.

use std::collections::BTreeSet;
use std::fs;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::http::Waiters;
use crate::net::stats::Stats;

const TOKEN: &str = "0123456789abcdef";

fn app(root: &std::path::Path, peer: &str, token: &str) -> Arc<App> {
    let text = format!(
        "hostname = \"mx.test\"\n[mailboxes]\nroot = \"{}\"\n[http]\ntoken = \"{token}\"\nmax_waiters = 1\n",
        root.display()
    );
    let config: Config = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    Arc::new(App {
        ctx: Arc::new(HttpContext::new(
            &config,
            Arc::new(Stats::default()),
            Arc::new(crate::auth::accounts::Accounts::new([], Default::default())),
            None,
        )),
        shared: Arc::new(HttpShared {
            metrics: Box::new(|| "smtpd_up 1\n".to_string()),
            listeners: Box::new(|| {
                vec![
                    (
                        crate::net::Protocol::Submission,
                        "127.0.0.1:2587".parse().unwrap(),
                    ),
                    (
                        crate::net::Protocol::Pop3,
                        "127.0.0.1:2110".parse().unwrap(),
                    ),
                    (
                        crate::net::Protocol::Http,
                        "127.0.0.1:8025".parse().unwrap(),
                    ),
                ]
            }),
            waiters: Arc::new(Waiters::default()),
            streams: Arc::new(Waiters::default()),
            shutdown: CancellationToken::new(),
            draining: Arc::default(),
            challenges: Arc::default(),
        }),
        peer: peer.parse().unwrap(),
        tls: false,
    })
}

async fn call(
    app: &Arc<App>,
    method: Method,
    uri: &str,
    auth: Option<&str>,
) -> (StatusCode, Response) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let r = router(Arc::clone(app))
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    (r.status(), r)
}

async fn body(r: Response) -> Vec<u8> {
    to_bytes(r.into_body(), 1 << 24).await.unwrap().to_vec()
}

async fn json_of(r: Response) -> serde_json::Value {
    serde_json::from_slice(&body(r).await).unwrap()
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("example.test/bob");
    for s in ["tmp", "new", "cur"] {
        fs::create_dir_all(md.join(s)).unwrap();
    }
    fs::write(
        md.join("new/100.M1P1Q1.h,S=44"),
        "From: a@b.test\nTo: bob@example.test\nSubject: one\n\nfirst\n",
    )
    .unwrap();
    fs::write(
        md.join("cur/200.M1P1Q2.h:2,S"),
        "From: a@b.test\nTo: bob@example.test\nSubject: two\n\nsecond\n",
    )
    .unwrap();
    dir
}

/// The OpenAPI document lists exactly the router's routes and methods, and every route of the
/// table answers its methods (not 404/405) and refuses the others with 405.
#[tokio::test]
async fn openapi_lists_every_route() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    let mut table = BTreeSet::new();
    for (path, methods) in ROUTES {
        for m in *methods {
            table.insert((path.to_string(), m.to_string()));
        }
    }
    assert_eq!(documented, table);
    let routed: Vec<&str> = super::table().iter().map(|(p, _)| *p).collect();
    let listed: Vec<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    assert_eq!(routed, listed);

    let dir = tree();
    let app = app(dir.path(), "127.0.0.1:9", "");
    for (path, methods) in ROUTES {
        let uri = path.replace("{id}", "latest").replace("{n}", "0")
            + if path.ends_with("wait") {
                "?timeout=0"
            } else {
                ""
            };
        for m in ["GET", "DELETE", "POST", "PUT"] {
            let (status, r) =
                call(&app, Method::from_bytes(m.as_bytes()).unwrap(), &uri, None).await;
            let allowed = methods.contains(&m.to_ascii_lowercase().as_str());
            if allowed {
                // Routed: anything but 405, and a 404 only from the route (`latest` once the
                // DELETE of /api/v1/messages has emptied the tree), never the fallback's.
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
                if status == StatusCode::NOT_FOUND {
                    let want = if path.contains("acme-challenge") {
                        "no such ACME challenge"
                    } else {
                        "no such message"
                    };
                    assert_eq!(json_of(r).await["error"], want, "{m} {uri}");
                }
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {uri}");
            }
        }
    }
    let (status, r) = call(&app, Method::GET, "/api/v2/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("no such route")
    );
}

/// The refusals the document promises are the ones given: every guarded route documents 401
/// and 403 and answers a remote peer without credentials with 401 and a loopback peer whose
/// `Host:` names another site with 403; the open ones document neither and refuse neither.
#[tokio::test]
async fn openapi_documents_the_refusals_each_route_gives() {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
    let dir = tree();
    let remote = app(dir.path(), "10.254.77.9:4000", TOKEN);
    let local = app(dir.path(), "127.0.0.1:9", "");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let uri = path.replace("{id}", "latest").replace("{n}", "0") + "?timeout=0";
        for (method, op) in item.as_object().unwrap() {
            let documented = |code: &str| op["responses"].get(code).is_some();
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let (from_remote, _) = call(&remote, m.clone(), &uri, None).await;
            let req = Request::builder()
                .method(m)
                .uri(&uri)
                .header(header::HOST, "rebound.example.net")
                .body(Body::empty())
                .unwrap();
            let rebound = router(Arc::clone(&local))
                .oneshot(req)
                .await
                .unwrap()
                .status();
            if OPEN.contains(&path.as_str()) {
                assert!(!documented("401") && !documented("403"), "{method} {path}");
                assert_ne!(from_remote, StatusCode::UNAUTHORIZED, "{method} {path}");
                assert_ne!(rebound, StatusCode::FORBIDDEN, "{method} {path}");
            } else {
                assert!(documented("401") && documented("403"), "{method} {path}");
                assert_eq!(from_remote, StatusCode::UNAUTHORIZED, "{method} {path}");
                assert_eq!(rebound, StatusCode::FORBIDDEN, "{method} {path}");
            }
        }
    }
}

/// HTTP-01: any peer, without credentials, gets the key authorization of a challenge in flight,
/// and 404 for any other token.
#[tokio::test]
async fn acme_challenge_answers_anyone() {
    let dir = tree();
    let remote = app(dir.path(), "192.0.2.7:4000", TOKEN);
    remote
        .shared
        .challenges
        .insert("tok-EN_1", "tok-EN_1.thumbprint");
    let (status, r) = call(
        &remote,
        Method::GET,
        "/.well-known/acme-challenge/tok-EN_1",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/plain");
    assert_eq!(body(r).await, b"tok-EN_1.thumbprint");
    let (status, _) = call(
        &remote,
        Method::GET,
        "/.well-known/acme-challenge/other",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    remote.shared.challenges.remove("tok-EN_1");
    let (status, _) = call(
        &remote,
        Method::GET,
        "/.well-known/acme-challenge/tok-EN_1",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn access_rule() {
    let dir = tree();
    let remote = app(dir.path(), "10.254.77.9:4000", TOKEN);
    let (status, r) = call(&remote, Method::GET, "/api/v1/messages", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()[header::WWW_AUTHENTICATE],
        "Bearer realm=\"smtpd\""
    );
    for wrong in [
        "Bearer nope",
        "Basic MDEyMzQ1Njc4OWFiY2RlZg==",
        "Bearer 0123456789abcdeF",
        "Bearer",
    ] {
        let (status, _) = call(&remote, Method::GET, "/metrics", Some(wrong)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
    }
    let good = format!("Bearer {TOKEN}");
    let (status, _) = call(&remote, Method::GET, "/api/v1/messages", Some(&good)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &remote,
        Method::GET,
        "/api/v1/messages",
        Some(&format!("bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&remote, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK, "health is open");
    // So is autoconfig, built from the bound listeners.
    for path in [
        "/mail/config-v1.1.xml",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@example.test",
    ] {
        let (status, r) = call(&remote, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let xml = String::from_utf8(body(r).await).unwrap();
        assert!(
            xml.contains("<port>2587</port>") && xml.contains("type=\"pop3\""),
            "{xml}"
        );
        assert!(!xml.contains("8025"), "{xml}");
    }
    // No token configured: non-loopback peers are never served, whatever they send.
    let closed = app(dir.path(), "10.254.77.9:4000", "");
    let (status, r) = call(&closed, Method::GET, "/api/v1/messages", Some("Bearer ")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("loopback peers only")
    );
}

/// An account (Basic credentials, over HTTPS only) sees its own mailbox: lists, waits and
/// delete-all are limited to it, another mailbox is 403 whether it exists or not, and the
/// operator routes are refused; an account in `[http] admins` sees everything.
#[tokio::test]
async fn accounts_see_their_own_mailbox() {
    let dir = tree();
    let md = dir.path().join("example.test/alice");
    for s in ["tmp", "new", "cur"] {
        fs::create_dir_all(md.join(s)).unwrap();
    }
    fs::write(
        md.join("new/300.M1P1Q3.h"),
        "From: a@b.test\nTo: alice@example.test\nSubject: hers\n\nx\n",
    )
    .unwrap();
    let hash = crate::auth::password::hash("pw").unwrap();
    let accounts = Arc::new(crate::auth::accounts::Accounts::new(
        [
            ("alice@example.test", hash.as_str()),
            ("carol@example.test", hash.as_str()),
        ],
        Default::default(),
    ));
    let base = app(dir.path(), "10.254.77.9:4000", "");
    let mut ctx = HttpContext::new(
        &crate::config::parse(
            &format!(
                "hostname = \"mx.test\"\n[mailboxes]\nroot = \"{}\"\n[http]\nadmins = [\"Carol@example.test\"]\n",
                dir.path().display()
            ),
            std::path::Path::new("t.toml"),
        )
        .unwrap(),
        Arc::new(Stats::default()),
        accounts,
        None,
    );
    ctx.max_wait = std::time::Duration::from_secs(1);
    let https = Arc::new(App {
        ctx: Arc::new(ctx),
        shared: Arc::clone(&base.shared),
        peer: base.peer,
        tls: true,
    });
    let plain = Arc::new(App {
        ctx: Arc::clone(&https.ctx),
        shared: Arc::clone(&base.shared),
        peer: base.peer,
        tls: false,
    });
    let basic = |user: &str, pass: &str| {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {b}")
    };
    let alice = basic("alice@example.test", "pw");

    let (status, r) = call(&plain, Method::GET, "/api/v1/messages", Some(&alice)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("HTTPS only")
    );
    let (status, r) = call(&https, Method::GET, "/api/v1/messages", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("Basic")
    );
    let wrong = basic("alice@example.test", "nope");
    let t = std::time::Instant::now();
    let (status, _) = call(&https, Method::GET, "/api/v1/messages", Some(&wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        t.elapsed() >= https.ctx.auth_failure_delay,
        "a wrong password is answered late"
    );

    let (status, r) = call(&https, Method::GET, "/api/v1/messages", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    let list = json_of(r).await;
    let subjects: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["hers"]);
    // Another mailbox: 403, the same for a message that exists and one that does not.
    let mut refusals = BTreeSet::new();
    for uri in [
        "/api/v1/messages?mailbox=bob@example.test",
        "/api/v1/messages/bob@example.test~100.M1P1Q1.h,S=44",
        "/api/v1/messages/bob@example.test~100.M1P1Q1.h,S=44/raw",
        "/api/v1/messages/bob@example.test~999.M1P1Q9.h",
        "/api/v1/messages/nobody@example.test~999.M1P1Q9.h/links",
        "/api/v1/messages/latest?mailbox=bob@example.test",
        "/api/v1/wait?mailbox=bob@example.test&timeout=1s",
    ] {
        let (status, r) = call(&https, Method::GET, uri, Some(&alice)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        refusals.insert(body(r).await);
    }
    assert_eq!(refusals.len(), 1, "one answer for all: {refusals:?}");
    let (status, _) = call(
        &https,
        Method::DELETE,
        "/api/v1/messages/bob@example.test~100.M1P1Q1.h,S=44",
        Some(&alice),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for uri in ["/metrics", "/api/v1/events"] {
        let (status, _) = call(&https, Method::GET, uri, Some(&alice)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
    let (status, r) = call(&https, Method::GET, "/api/v1/messages/latest", Some(&alice)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(r).await["subject"], "hers");
    // Delete-all is hers alone.
    let (status, r) = call(&https, Method::DELETE, "/api/v1/messages", Some(&alice)).await;
    assert_eq!(
        (status, json_of(r).await["deleted"].clone()),
        (StatusCode::OK, 1.into())
    );
    assert!(
        dir.path()
            .join("example.test/bob/new/100.M1P1Q1.h,S=44")
            .exists()
    );

    // An admin sees every mailbox and the operator routes.
    let carol = basic("carol@example.test", "pw");
    let (status, r) = call(
        &https,
        Method::GET,
        "/api/v1/messages?mailbox=bob@example.test",
        Some(&carol),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(r).await["messages"].as_array().unwrap().len(), 2);
    let (status, _) = call(&https, Method::GET, "/metrics", Some(&carol)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn messages_routes() {
    let dir = tree();
    let app = app(dir.path(), "[::1]:9", "");
    let (status, r) = call(&app, Method::GET, "/api/v1/messages?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    let page = json_of(r).await;
    assert_eq!(page["messages"][0]["subject"], "two");
    assert_eq!(page["messages"][0]["flags"][0], "seen");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, r) = call(
        &app,
        Method::GET,
        &format!("/api/v1/messages?cursor={cursor}"),
        None,
    )
    .await;
    let page = json_of(r).await;
    assert_eq!(page["messages"][0]["subject"], "one");
    assert_eq!(page["next_cursor"], serde_json::Value::Null);
    let (status, r) = call(&app, Method::GET, "/api/v1/messages?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("`limit`")
    );

    let id = "bob@example.test~100.M1P1Q1.h,S=44";
    let (status, r) = call(&app, Method::GET, &format!("/api/v1/messages/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let d = json_of(r).await;
    assert_eq!(
        (d["id"].as_str(), d["text"].as_str()),
        (Some(id), Some("first\n"))
    );
    let (status, r) = call(
        &app,
        Method::GET,
        &format!("/api/v1/messages/{id}/raw"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "message/rfc822");
    let stored = fs::read(dir.path().join("example.test/bob/new/100.M1P1Q1.h,S=44")).unwrap();
    assert_eq!(body(r).await, stored);
    let (_, r) = call(
        &app,
        Method::GET,
        "/api/v1/messages/latest?mailbox=bob@example.test",
        None,
    )
    .await;
    assert_eq!(json_of(r).await["subject"], "two");
    for bad in [
        "..%2F..%2Fetc%2Fpasswd",
        "x~y",
        "bob@example.test~..",
        "bob@example.test~100.M1P1Q1.h,S=44:2,",
        &"a".repeat(5000),
    ] {
        for suffix in ["", "/raw"] {
            let (status, _) = call(
                &app,
                Method::GET,
                &format!("/api/v1/messages/{bad}{suffix}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{bad}{suffix}");
        }
    }
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/messages/{id}?x=1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/messages/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/messages/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, r) = call(
        &app,
        Method::DELETE,
        "/api/v1/messages?mailbox=bob@example.test",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(r).await["deleted"], 1);
    let (status, _) = call(&app, Method::GET, "/api/v1/messages/latest", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_metrics_openapi_and_wait_limits() {
    let dir = tree();
    let app = app(dir.path(), "127.0.0.1:9", "");
    let (_, r) = call(&app, Method::GET, "/health", None).await;
    assert_eq!(json_of(r).await, json!({"status": "ok"}));
    let (_, r) = call(&app, Method::GET, "/metrics", None).await;
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(body(r).await, b"smtpd_up 1\n");
    let (_, r) = call(&app, Method::GET, "/api/openapi.json", None).await;
    assert_eq!(body(r).await, OPENAPI.as_bytes());

    // The match is delivered before the call: found with since=0, not by default.
    let (status, r) = call(
        &app,
        Method::GET,
        "/api/v1/wait?subject=one&since=0&timeout=0",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(r).await["subject"], "one");
    let (status, r) = call(
        &app,
        Method::GET,
        "/api/v1/wait?subject=one&timeout=50ms",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("subject=one within 50 ms")
    );
    let (status, _) = call(&app, Method::GET, "/api/v1/wait?timeout=forever", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // max_waiters = 1: a second wait while one is in progress gets 503.
    let held = app.shared.waiters.try_acquire(1).unwrap();
    let (status, _) = call(&app, Method::GET, "/api/v1/wait?timeout=0", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    // `smtpctl drain`: 503 draining for the balancer, the API as before.
    app.shared
        .draining
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (status, r) = call(&app, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_of(r).await, json!({"status": "draining"}));
    let (status, _) = call(&app, Method::GET, "/api/v1/messages", None).await;
    assert_eq!(status, StatusCode::OK);
    app.shared
        .draining
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let (status, _) = call(&app, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    app.shared.shutdown.cancel();
    let (status, _) = call(&app, Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

/// A wait in progress is woken by a delivery event and answers with the message.
#[tokio::test]
async fn wait_is_woken_by_a_delivery_event() {
    wait_woken(false).await;
}

/// The same, with events that name the delivery's copies (as the SMTP session's do): the wait
/// reads just those.
#[tokio::test]
async fn wait_is_woken_by_a_delivery_event_naming_its_copies() {
    wait_woken(true).await;
}

async fn wait_woken(naming: bool) {
    let dir = tree();
    let app = app(dir.path(), "127.0.0.1:9", "");
    let waiting = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            call(&app, Method::GET, "/api/v1/wait?to=carol&timeout=20s", None).await
        })
    };
    // The slot is taken just before the subscription, with no await between.
    while app.shared.waiters.active() == 0 {
        tokio::task::yield_now().await;
    }
    // A message delivered after the call (named a second ahead), then delivery events until the
    // wait answers (the first scan may have missed the file; an event makes it scan again).
    let md = dir.path().join("example.test/carol");
    for s in ["tmp", "new", "cur"] {
        fs::create_dir_all(md.join(s)).unwrap();
    }
    let name = format!(
        "{}.M1P1Q9.h",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1
    );
    // Written in tmp/ and renamed into new/, as a delivery does: a scan never sees it half
    // written (a plain write into new/ made this test flaky: the wait read an empty file).
    fs::write(
        md.join("tmp").join(&name),
        "To: carol@example.test\nSubject: hi\n\n",
    )
    .unwrap();
    fs::rename(md.join("tmp").join(&name), md.join("new").join(&name)).unwrap();
    let event = crate::net::watch::WatchEvent {
        time: 0,
        session: 1,
        peer: "127.0.0.1:1".into(),
        event: "delivered".into(),
        from: None,
        to: vec!["carol@example.test".into()],
        size: None,
        result: String::new(),
        stored: naming.then(|| vec![md.join("new").join(&name)]),
    };
    loop {
        app.ctx.stats.watch.publish(|| event.clone());
        if waiting.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, r) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(r).await["subject"], "hi");
}

fn watch_event(n: u64) -> crate::net::watch::WatchEvent {
    crate::net::watch::WatchEvent {
        time: n,
        session: n,
        peer: "127.0.0.1:1".into(),
        event: "session start".into(),
        from: None,
        to: vec![format!("u{n}@example.test")],
        size: None,
        result: String::new(),
        stored: None,
    }
}

/// The event stream: opened with a comment, one `event:`/`data:` per watch event (filtered by
/// `address`), bounded in number (503), and a client that falls behind the channel is told so
/// and dropped (the body ends) instead of being buffered for.
#[tokio::test]
async fn event_streams_are_bounded_and_drop_slow_clients() {
    let dir = tree();
    let app = app(dir.path(), "127.0.0.1:9", "");
    let (status, r) = call(
        &app,
        Method::GET,
        "/api/v1/events?address=u1@example.test",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
    // max_event_streams defaults to 64; the in-process app has the default.
    assert_eq!(app.shared.streams.active(), 1);
    let mut body = r.into_body().into_data_stream();
    use futures_util::StreamExt;
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b": smtpd events\n\n");
    app.ctx.stats.watch.publish(|| watch_event(2));
    app.ctx.stats.watch.publish(|| watch_event(1));
    let ev = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(ev.starts_with("event: session_start\ndata: {"), "{ev}");
    assert!(
        ev.contains("\"u1@example.test\"") && !ev.contains("u2@"),
        "{ev}"
    );
    // Far more events than the channel holds, unread: the stream says so and ends.
    for n in 0..3000 {
        app.ctx.stats.watch.publish(|| watch_event(n));
    }
    let ev = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(ev.starts_with("event: lagged\ndata: {\"missed\":"), "{ev}");
    assert!(body.next().await.is_none(), "a slow client is dropped");
    drop(body);
    assert_eq!(app.shared.streams.active(), 0, "its place is given back");

    let held: Vec<_> = (0..64)
        .map(|_| app.shared.streams.try_acquire(64).unwrap())
        .collect();
    let (status, r) = call(&app, Method::GET, "/api/v1/events", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        json_of(r).await["error"]
            .as_str()
            .unwrap()
            .contains("max_event_streams")
    );
    drop(held);
    let (status, _) = call(&app, Method::GET, "/api/v1/events?x=1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
