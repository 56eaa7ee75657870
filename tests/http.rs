//! The HTTP listener (issue 17, first part) from outside: every route with curl and Python's
//! urllib, the server-side wait woken by an SMTP delivery, its timeout and its bound, /raw
//! byte-exact against the Maildir file, DELETE, bad ids, the head size and header timeout limits,
//! keep-alive, reload, and the token rule from a non-loopback peer in a network namespace.
mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn http() -> Overrides {
    Overrides::new().set("http", "listen", "[\"127.0.0.1:0\"]")
}

/// `curl -s` with `args`; (status, body).
fn curl(args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let mut body = out.stdout;
    let nl = body.iter().rposition(|&b| b == b'\n').expect("status line");
    let code = String::from_utf8_lossy(&body[nl + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(nl);
    (code, body)
}

fn curl_json(args: &[&str]) -> (u16, Value) {
    let (code, body) = curl(args);
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&body)));
    (code, v)
}

/// What urllib does: METHOD url; prints the status on the first line, then the body.
const URLLIB: &str = r#"
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], method=sys.argv[2])
try:
    r = urllib.request.urlopen(req, timeout=60)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
sys.stdout.write(str(code) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(body)
"#;

fn urllib_cmd(method: &str, url: &str) -> Command {
    let mut c = Command::new("python3");
    c.args(["-c", URLLIB, url, method]);
    c
}

fn parse_urllib(out: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(out);
    let (code, body) = text.split_once('\n').expect("status line");
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (code.parse().unwrap(), v)
}

fn urllib(method: &str, url: &str) -> (u16, Value) {
    let out = urllib_cmd(method, url).output().expect("run python3");
    assert!(out.status.success(), "{}", stderr(&out));
    parse_urllib(&out.stdout)
}

fn message(to: &str, subject: &str) -> Vec<u8> {
    format!("From: Alice <alice@b.test>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHello from {subject}.\r\n").into_bytes()
}

fn subjects(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or("").to_string())
        .collect()
}

fn tools() -> bool {
    have("curl") && have("python3")
}

/// Waits until `n` waits are in progress, as the server's own gauge says.
fn until_waits(base: &str, n: u32) {
    let want = format!("\nsmtpd_http_waits {n}\n");
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = curl(&[&format!("{base}/metrics")]);
        if String::from_utf8_lossy(&body).contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} waits in progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every route, from curl and from urllib; the listener shows in `smtpctl status --json`.
#[test]
fn every_route_from_curl_and_urllib() {
    if !tools() {
        return;
    }
    let srv = Server::start_with(http());
    let base = srv.http_base();
    let status = srv.ctl_json(&["status"]);
    let listeners = status["listeners"].as_array().unwrap();
    assert!(
        listeners
            .iter()
            .any(|l| l["protocol"] == "http" && l["address"] == srv.addr("http").to_string()),
        "{status}"
    );

    let (code, health) = curl_json(&[&format!("{base}/health")]);
    assert_eq!((code, health), (200, serde_json::json!({"status": "ok"})));

    srv.deliver("bob@example.test", &message("bob@example.test", "first"));
    srv.deliver("bob@example.test", &message("bob@example.test", "second"));
    srv.deliver(
        "carol@example.test",
        &message("carol@example.test", "third"),
    );

    // The list, newest first, filtered, and paged with the cursor.
    let (code, page) = urllib(
        "GET",
        &format!("{base}/api/v1/messages?to=bob@example.test"),
    );
    assert_eq!(code, 200);
    assert_eq!(subjects(&page), ["second", "first"]);
    let m = &page["messages"][0];
    for key in [
        "id", "mailbox", "folder", "from", "to", "subject", "date", "size", "flags",
    ] {
        assert!(m.get(key).is_some(), "{key} missing: {m}");
    }
    assert_eq!(
        (m["mailbox"].as_str(), m["from"].as_str()),
        (Some("bob@example.test"), Some("alice@b.test"))
    );
    let (_, page) = urllib("GET", &format!("{base}/api/v1/messages?limit=2"));
    assert_eq!(subjects(&page), ["third", "second"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = urllib(
        "GET",
        &format!("{base}/api/v1/messages?limit=2&cursor={cursor}"),
    );
    assert_eq!(
        (subjects(&page), &page["next_cursor"]),
        (vec!["first".to_string()], &Value::Null)
    );
    let (_, page) = curl_json(&[&format!("{base}/api/v1/messages?subject=THIRD&from=alice")]);
    assert_eq!(subjects(&page), ["third"]);
    let (code, err) = curl_json(&[&format!("{base}/api/v1/messages?limit=5000")]);
    assert_eq!(code, 400);
    assert!(err["error"].as_str().unwrap().contains("`limit`"), "{err}");

    // One message, parsed; its raw bytes, exactly the Maildir file's.
    let (_, page) = urllib(
        "GET",
        &format!("{base}/api/v1/messages?mailbox=bob@example.test&limit=1"),
    );
    let id = page["messages"][0]["id"].as_str().unwrap().to_string();
    let (code, detail) = curl_json(&[&format!("{base}/api/v1/messages/{id}")]);
    assert_eq!(code, 200);
    assert_eq!(detail["subject"], "second");
    assert_eq!(detail["text"], "Hello from second.\n");
    assert!(
        detail["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "Received")
    );
    let file = srv
        .new_mail("example.test", "bob")
        .into_iter()
        .find(|p| id.ends_with(p.file_name().unwrap().to_str().unwrap()))
        .expect("the listed file");
    let (code, raw) = curl(&[&format!("{base}/api/v1/messages/{id}/raw")]);
    assert_eq!(code, 200);
    assert_eq!(
        raw,
        std::fs::read(&file).unwrap(),
        "/raw is the stored bytes"
    );
    let (code, raw) = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/api/v1/messages/{id}/raw"),
    ]);
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(
        code == 200 && head.contains("content-type: message/rfc822"),
        "{head}"
    );
    let (_, latest) = urllib(
        "GET",
        &format!("{base}/api/v1/messages/latest?mailbox=carol@example.test"),
    );
    assert_eq!(latest["subject"], "third");

    // The OpenAPI document and the metrics, the same text as `smtpctl metrics`.
    let (code, doc) = curl_json(&[&format!("{base}/api/openapi.json")]);
    assert_eq!((code, doc["openapi"].as_str()), (200, Some("3.1.0")));
    assert!(doc["paths"]["/api/v1/wait"]["get"].is_object());
    let (code, metrics) = curl(&[&format!("{base}/metrics")]);
    let metrics = String::from_utf8(metrics).unwrap();
    assert_eq!(code, 200);
    let ctl = stdout(&srv.ctl(&["metrics"]));
    for line in [
        "smtpd_messages_accepted_total 3",
        "# TYPE smtpd_sessions_total counter",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
        assert!(
            ctl.lines().any(|l| l == line),
            "{line} not in smtpctl metrics"
        );
    }

    // DELETE one (the file goes), then a Maildir, then all.
    let (code, _) = curl(&["-X", "DELETE", &format!("{base}/api/v1/messages/{id}")]);
    assert_eq!(code, 204);
    assert!(!file.exists());
    let (code, _) = urllib("DELETE", &format!("{base}/api/v1/messages/{id}"));
    assert_eq!(code, 404);
    let (code, n) = urllib(
        "DELETE",
        &format!("{base}/api/v1/messages?mailbox=bob@example.test"),
    );
    assert_eq!((code, n), (200, serde_json::json!({"deleted": 1})));
    let (_, n) = curl_json(&["-X", "DELETE", &format!("{base}/api/v1/messages")]);
    assert_eq!(n, serde_json::json!({"deleted": 1}));
    assert!(srv.new_mail("example.test", "carol").is_empty());

    // Unknown routes 404, wrong methods 405.
    let (code, _) = curl(&[&format!("{base}/api/v2/messages")]);
    assert_eq!(code, 404);
    let (code, _) = curl(&["-X", "POST", &format!("{base}/api/v1/messages")]);
    assert_eq!(code, 405);
    let (code, _) = curl(&["-X", "PUT", &format!("{base}/health")]);
    assert_eq!(code, 405);
}

/// A wait started before the delivery returns it (before its timeout: woken by the delivery);
/// one with no match gets 408 at its timeout; waits beyond `max_waiters` get 503.
#[test]
fn wait_is_woken_by_an_smtp_delivery() {
    if !tools() {
        return;
    }
    let srv = Server::start_with(http().set("http", "max_waiters", "1"));
    let base = srv.http_base();
    let waiting = urllib_cmd(
        "GET",
        &format!("{base}/api/v1/wait?to=dave@example.test&subject=wake&timeout=20s"),
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("run python3");
    until_waits(&base, 1);

    let (code, err) = curl_json(&[&format!("{base}/api/v1/wait?timeout=1s")]);
    assert_eq!(code, 503, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("max_waiters"),
        "{err}"
    );

    let sent = Instant::now();
    srv.deliver("dave@example.test", &message("dave@example.test", "wake"));
    let out = waiting.wait_with_output().unwrap();
    let (code, m) = parse_urllib(&out.stdout);
    assert_eq!(code, 200, "{m}");
    assert_eq!(
        (m["subject"].as_str(), m["mailbox"].as_str()),
        (Some("wake"), Some("dave@example.test"))
    );
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "returned before its timeout"
    );
    until_waits(&base, 0);

    // Already delivered: found at once with `since` before it, not by default (since = now).
    let (code, m) = curl_json(&[&format!(
        "{base}/api/v1/wait?to=dave@example.test&since=0&timeout=5s"
    )]);
    assert_eq!((code, m["subject"].as_str()), (200, Some("wake")));
    let started = Instant::now();
    let (code, err) = curl_json(&[&format!(
        "{base}/api/v1/wait?to=dave@example.test&timeout=1s"
    )]);
    assert_eq!(code, 408, "{err}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(
        err["error"].as_str().unwrap().contains("within 1 s"),
        "{err}"
    );
    let (code, _) = curl_json(&[&format!("{base}/api/v1/wait?timeout=soon")]);
    assert_eq!(code, 400);
}

/// Ids that are not ours, or that try to leave the mailbox root, are 404; never a file.
#[test]
fn bad_ids_are_not_found() {
    if !have("curl") {
        return;
    }
    let srv = Server::start_with(http());
    let base = srv.http_base();
    srv.deliver("bob@example.test", &message("bob@example.test", "kept"));
    let long = "a".repeat(4000);
    for id in [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "x~y",
        "bob@example.test~..",
        "bob@example.test~%2E%2E",
        "..@example.test~x",
        long.as_str(),
    ] {
        for suffix in ["", "/raw"] {
            let url = format!("{base}/api/v1/messages/{id}{suffix}");
            let (code, body) = curl(&["--path-as-is", &url]);
            assert_eq!(
                code,
                404,
                "{id}{suffix}: {}",
                String::from_utf8_lossy(&body)
            );
            assert!(!String::from_utf8_lossy(&body).contains("root:"), "{id}");
        }
        let (code, _) = curl(&[
            "--path-as-is",
            "-X",
            "DELETE",
            &format!("{base}/api/v1/messages/{id}"),
        ]);
        assert_eq!(code, 404, "DELETE {id}");
    }
    let (code, _) = curl(&[
        "--path-as-is",
        &format!("{base}/api/v1/messages/../../../etc/passwd"),
    ]);
    assert_eq!(code, 404);
    assert_eq!(
        srv.new_mail("example.test", "bob").len(),
        1,
        "nothing was deleted"
    );
}

fn read_all(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

/// A request head over `max_header_bytes` is refused (431, then the connection closes); a slow
/// client that sends half a head, and an idle keep-alive connection, are dropped after
/// `header_timeout_secs`; requests on one connection are served in turn (keep-alive).
#[test]
fn head_limits_and_slow_clients() {
    let srv = Server::start_with(http().set("http", "header_timeout_secs", "1").set(
        "http",
        "max_header_bytes",
        "2048",
    ));
    let addr = srv.addr("http");
    let connect = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    };

    let mut s = connect();
    let big = "a".repeat(4000);
    let _ = write!(s, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let (resp, _) = read_all(&mut s);
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 431"),
        "{resp}"
    );

    // Under the limit: served, twice on one connection, then closed when idle.
    let mut s = connect();
    let fill = "b".repeat(1500);
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Fill: {fill}\r\n\r\n"
    )
    .unwrap();
    write!(s, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (resp, idle) = read_all(&mut s);
    assert_eq!(resp.matches("HTTP/1.1 200 OK").count(), 2, "{resp}");
    assert!(resp.ends_with("{\"status\":\"ok\"}"), "{resp}");
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(10),
        "{idle:?}"
    );

    // Half a head, then silence.
    let mut s = connect();
    s.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    let (resp, took) = read_all(&mut s);
    assert!(!resp.contains("200 OK"), "{resp}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

/// The listener follows the config on reload: added, served, removed.
#[test]
fn reload_adds_and_removes_the_listener() {
    if !have("curl") {
        return;
    }
    let srv = Server::start();
    srv.rewrite_config(&http());
    let out = srv.ctl(&["reload"]);
    assert!(
        stdout(&out).contains("listener added: http 127.0.0.1:0"),
        "{}",
        stdout(&out)
    );
    srv.log.wait_for("listening on http ");
    let (code, _) = curl(&[&format!("{}/health", srv.http_base())]);
    assert_eq!(code, 200);
    srv.rewrite_config(&Overrides::new());
    let out = srv.ctl(&["reload"]);
    assert!(
        stdout(&out).contains("listener removed: http 127.0.0.1:0"),
        "{}",
        stdout(&out)
    );
    let status = srv.ctl_json(&["status"]);
    assert!(!status.to_string().contains("\"http\""), "{status}");
}

/// From a non-loopback peer: 401 with `WWW-Authenticate: Bearer` without the token (or with a
/// wrong one), 200 with it; /health is open.
#[test]
fn a_non_loopback_peer_needs_the_token() {
    if !have("curl") {
        return;
    }
    let Some(ns) = NetNs::new("http", "10.254.77.6") else {
        return;
    };
    let token = "s3cr3t-t0ken-for-tests";
    let o = Overrides::new()
        .set("smtp", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set("http", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set("http", "token", &format!("\"{token}\""));
    let srv = Server::start_wrapped(o, &ns.wrapper());
    let base = srv.http_base();
    let get = |path: &str, auth: Option<&str>| {
        let url = format!("{base}{path}");
        let header;
        let mut args = vec!["-s", "-D", "-", "-o", "/dev/null", url.as_str()];
        if let Some(a) = auth {
            header = format!("Authorization: {a}");
            args.extend(["-H", header.as_str()]);
        }
        let out = ns.run("curl", &args);
        stdout(&out)
    };
    let head = get("/api/v1/messages", None);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    let head = get(
        "/api/v1/messages",
        Some("Bearer wrong-token-of-some-length"),
    );
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let head = get("/api/v1/messages", Some(&format!("Bearer {token}")));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let head = get("/metrics", Some(&format!("Bearer {token}")));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let head = get("/health", None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// Access rules over HTTPS (`[http] tls = true`, the [tls] certificate) from a non-loopback
/// peer: an account's Basic credentials see its own mailbox only (another one is 403, existing
/// or not; the operator routes too), an account in `[http] admins` and the token see all.
#[test]
fn accounts_over_https_from_a_non_loopback_peer() {
    if !have("curl") {
        return;
    }
    let Some(ns) = NetNs::new("https", "10.254.77.7") else {
        return;
    };
    let token = "s3cr3t-t0ken-for-tests";
    let o = Overrides::new()
        .set("smtp", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set("tls", "cert", "\"tls/cert.pem\"")
        .set("tls", "key", "\"tls/key.pem\"")
        .set("tls", "self_signed", "true")
        .set("http", "listen", &format!("[\"{}:0\"]", ns.addr))
        .set("http", "tls", "true")
        .set("http", "token", &format!("\"{token}\""))
        .set("http", "admins", "[\"bob@example.test\"]")
        .account("alice@example.test", PASSWORD)
        .account("bob@example.test", PASSWORD);
    let srv = Server::start_wrapped(o, &ns.wrapper());
    for (local, subject) in [("alice", "for alice"), ("carol", "for carol")] {
        let md = srv.root().join("example.test").join(local);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        let text = format!("To: {local}@example.test\nSubject: {subject}\n\nx\n");
        std::fs::write(md.join("new/1700000000.M1P1Q1.h"), text).unwrap();
    }
    let base = format!("https://{}", srv.addr("http"));
    // (status, body) of a GET inside the namespace; `who`: curl's credentials arguments.
    let get = |path: &str, who: &[&str]| {
        let url = format!("{base}{path}");
        let mut args = vec!["-sk", "-w", "\n%{http_code}", url.as_str()];
        args.extend(who);
        let out = stdout(&ns.run("curl", &args));
        let (body, code) = out.rsplit_once('\n').unwrap();
        (code.trim().parse::<u16>().unwrap_or(0), body.to_string())
    };
    let alice_pw = format!("alice@example.test:{PASSWORD}");
    let bob_pw = format!("bob@example.test:{PASSWORD}");
    let alice = ["-u", alice_pw.as_str()];
    let bob = ["-u", bob_pw.as_str()];
    let bearer = format!("Authorization: Bearer {token}");

    let (code, _) = get("/api/v1/messages", &[]);
    assert_eq!(code, 401);
    let (code, _) = get("/api/v1/messages", &["-u", "alice@example.test:wrong"]);
    assert_eq!(code, 401);
    let (code, body) = get("/api/v1/messages", &alice);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let subjects: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["for alice"]);
    let (a, b) = (
        get(
            "/api/v1/messages/carol@example.test~1700000000.M1P1Q1.h",
            &alice,
        ),
        get(
            "/api/v1/messages/dave@example.test~1700000000.M1P1Q1.h",
            &alice,
        ),
    );
    assert_eq!((a.0, b.0), (403, 403));
    assert_eq!(a.1, b.1, "a 403 does not say whether the mailbox exists");
    let (code, _) = get("/api/v1/messages?mailbox=carol@example.test", &alice);
    assert_eq!(code, 403);
    let (code, _) = get("/metrics", &alice);
    assert_eq!(code, 403);
    let (code, body) = get("/api/v1/messages?mailbox=carol@example.test", &bob);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("for carol"), "{body}");
    let (code, _) = get("/metrics", &bob);
    assert_eq!(code, 200);
    let (code, body) = get("/api/v1/messages", &["-H", bearer.as_str()]);
    assert_eq!(code, 200);
    assert!(
        body.contains("for alice") && body.contains("for carol"),
        "{body}"
    );
    // Plain HTTP on the HTTPS listener gets no answer.
    let plain = format!("http://{}/health", srv.addr("http"));
    let out = ns.run(
        "curl",
        &["-s", "--max-time", "5", "-w", "%{http_code}", &plain],
    );
    assert_ne!(stdout(&out).trim(), "200");
}

/// DNS rebinding: a loopback peer whose Host: names another site (what a browser sends when a
/// page's own name resolves to 127.0.0.1) gets 403; localhost, an address or our hostname pass.
#[test]
fn loopback_requests_must_name_this_machine() {
    if !have("curl") {
        return;
    }
    let srv = Server::start_with(http());
    let url = format!("{}/api/v1/messages", srv.http_base());
    let (code, body) = curl_json(&["-H", "Host: attacker.example:8025", &url]);
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("DNS rebinding"),
        "{body}"
    );
    for host in ["localhost:8025", "mx.example.test", "127.0.0.1"] {
        let (code, body) = curl_json(&["-H", &format!("Host: {host}"), &url]);
        assert_eq!(code, 200, "{host}: {body}");
    }
    let (code, _) = curl(&[&url]);
    assert_eq!(code, 200);
}

/// A MIME message with text, HTML and an attachment, as a sign-up mail looks.
fn signup_mail(to: &str) -> Vec<u8> {
    format!(
        "From: Shop <noreply@shop.test>\r\nTo: {to}\r\nSubject: Confirm your account\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n   your   verification code is 482913.\r\nConfirm at https://shop.test/confirm?u=7&t=abc.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Your verification code is <b>482913</b>.</p><a href=\"https://shop.test/confirm?u=7&amp;t=abc\">Confirm</a> <a href=\"https://shop.test/help\">Help</a><script>alert(1)</script>\r\n--alt--\r\n--outer\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../../etc/evil\\\"name.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--outer--\r\n"
    )
    .into_bytes()
}

/// `curl -i`: (status, lower-cased head, body).
fn curl_head(url: &str) -> (u16, String, Vec<u8>) {
    let (code, text) = curl(&["-i", url]);
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&text[..split]).to_ascii_lowercase();
    (code, head, text[split + 4..].to_vec())
}

/// Issue 17, message details: the list's attachment count and snippet; the parsed message with
/// part numbers; each part served decoded under its own type (an attachment as a download with a
/// safe name, every part under a strict CSP and nosniff); the links and the code; `latest`.
#[test]
fn message_details_parts_links_and_codes() {
    if !tools() {
        return;
    }
    let srv = Server::start_with(http());
    let base = srv.http_base();
    srv.deliver("erin@example.test", &signup_mail("erin@example.test"));
    srv.deliver("erin@example.test", &message("erin@example.test", "plain"));

    let (code, page) = urllib(
        "GET",
        &format!("{base}/api/v1/messages?mailbox=erin@example.test&subject=confirm"),
    );
    assert_eq!(code, 200);
    let m = &page["messages"][0];
    assert_eq!(m["attachments"], 1, "{m}");
    assert_eq!(
        m["snippet"],
        "Hello, your verification code is 482913. Confirm at https://shop.test/confirm?u=7&t=abc."
    );
    let id = m["id"].as_str().unwrap().to_string();

    let (code, d) = curl_json(&[&format!("{base}/api/v1/messages/{id}")]);
    assert_eq!(code, 200, "{d}");
    let att = &d["attachments"][0];
    assert_eq!(
        (
            att["type"].as_str(),
            att["size"].as_u64(),
            att["disposition"].as_str()
        ),
        (Some("application/pdf"), Some(9), Some("attachment"))
    );
    let (text_part, html_part) = (
        d["text_part"].as_u64().unwrap(),
        d["html_part"].as_u64().unwrap(),
    );
    let att_part = att["part"].as_u64().unwrap();
    assert!(d["html"].as_str().unwrap().contains("<b>482913</b>"));

    let (code, head, body) = curl_head(&format!("{base}/api/v1/messages/{id}/parts/{att_part}"));
    assert_eq!((code, body.as_slice()), (200, b"%PDF-1.4\n".as_slice()));
    assert!(head.contains("content-type: application/pdf"), "{head}");
    assert!(
        head.contains("content-disposition: attachment; filename=\"evil_name.pdf\""),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    let (code, head, body) = curl_head(&format!("{base}/api/v1/messages/{id}/parts/{html_part}"));
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:; sandbox"),
        "{head}"
    );
    assert!(!head.contains("content-disposition"), "{head}");
    assert!(
        String::from_utf8_lossy(&body).contains("<script>"),
        "served as it is, sandboxed"
    );
    let (code, body) = curl(&[&format!("{base}/api/v1/messages/{id}/parts/{text_part}")]);
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).starts_with("Hello,\n"));
    for bad in ["0", "99", "-1", "x"] {
        let (code, _) = curl(&[&format!("{base}/api/v1/messages/{id}/parts/{bad}")]);
        assert_eq!(code, 404, "part {bad}");
    }

    let (code, links) = urllib("GET", &format!("{base}/api/v1/messages/{id}/links"));
    assert_eq!(code, 200);
    assert_eq!(
        links,
        serde_json::json!({"links": ["https://shop.test/confirm?u=7&t=abc", "https://shop.test/help"]})
    );
    let (code, codes) = curl_json(&[&format!("{base}/api/v1/messages/{id}/codes")]);
    assert_eq!(
        (code, codes),
        (200, serde_json::json!({"codes": ["482913"]}))
    );

    // `latest` of the Maildir is the plain one: no attachments, no links, no codes.
    let (_, latest) = urllib(
        "GET",
        &format!("{base}/api/v1/messages/latest?mailbox=erin@example.test"),
    );
    assert_eq!(
        (latest["subject"].as_str(), &latest["attachments"]),
        (Some("plain"), &serde_json::json!([]))
    );
    let (_, codes) = curl_json(&[&format!(
        "{base}/api/v1/messages/latest/codes?mailbox=erin@example.test"
    )]);
    assert_eq!(codes, serde_json::json!({"codes": []}));
    let (code, _) = curl(&[&format!(
        "{base}/api/v1/messages/latest/links?mailbox=nobody@example.test"
    )]);
    assert_eq!(code, 404);
}

/// Reads the autoconfig document with urllib and checks it with xml.etree, field by field
/// (Thunderbird's clientConfig 1.1); prints `OK` or the first problem.
const AUTOCONFIG_CHECK: &str = r#"
import sys, json, urllib.request, urllib.error, xml.etree.ElementTree as ET
url, want = sys.argv[1], json.loads(sys.argv[2])
try:
    r = urllib.request.urlopen(url, timeout=30)
except urllib.error.HTTPError as e:
    print("HTTP", e.code); sys.exit(0)
assert r.headers.get_content_type() == "application/xml", r.headers["Content-Type"]
root = ET.fromstring(r.read())
assert root.tag == "clientConfig" and root.get("version") == "1.1", root.tag
providers = root.findall("emailProvider")
assert len(providers) == 1
p = providers[0]
assert p.get("id") == want["id"], p.get("id")
assert [d.text for d in p.findall("domain")] == want["domains"], [d.text for d in p.findall("domain")]
got = []
for tag in ("incomingServer", "outgoingServer"):
    for s in p.findall(tag):
        assert s.find("hostname").text == want["hostname"], s.find("hostname").text
        assert s.find("username").text == "%EMAILADDRESS%"
        assert s.find("authentication").text == "password-cleartext"
        got.append([s.get("type"), int(s.find("port").text), s.find("socketType").text])
assert got == want["servers"], got
print("OK")
"#;

/// Autoconfig (both paths) from the bound listeners: POP3 over TLS and STARTTLS, submission over
/// TLS and STARTTLS, the hostname, every local domain; `?emailaddress=` of a local domain names
/// it, of another domain is 404. Open to a loopback client that names the domain in Host:.
#[test]
fn autoconfig_for_mail_clients() {
    if !tools() {
        return;
    }
    let srv = Server::start_with(http().tls(&[]));
    let base = srv.http_base();
    let port = |p: &str| srv.addr(p).port();
    let servers = serde_json::json!([
        ["pop3", port("pop3s"), "SSL"],
        ["pop3", port("pop3"), "STARTTLS"],
        ["smtp", port("submissions"), "SSL"],
        ["smtp", port("submission"), "STARTTLS"],
    ]);
    let check = |url: &str, id: &str| {
        let want = serde_json::json!({
            "id": id,
            "domains": ["example.test", "localhost"],
            "hostname": "mx.example.test",
            "servers": servers,
        });
        let out = Command::new("python3")
            .args(["-c", AUTOCONFIG_CHECK, url, &want.to_string()])
            .output()
            .expect("run python3");
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    assert_eq!(
        check(&format!("{base}/mail/config-v1.1.xml"), "example.test"),
        "OK"
    );
    assert_eq!(
        check(
            &format!(
                "{base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=carol%40LOCALHOST"
            ),
            "localhost"
        ),
        "OK"
    );
    assert_eq!(
        check(
            &format!("{base}/mail/config-v1.1.xml?emailaddress=carol@elsewhere.test"),
            "x"
        ),
        "HTTP 404"
    );
    assert_eq!(
        check(
            &format!("{base}/mail/config-v1.1.xml?emailaddress=nonsense"),
            "x"
        ),
        "HTTP 400"
    );
    // Thunderbird asks http://autoconfig.<domain>/...: a Host: of another name is fine here.
    let (code, body) = curl(&[
        "-H",
        "Host: autoconfig.example.test",
        &format!("{base}/mail/config-v1.1.xml"),
    ]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a running `curl -N`, read on a thread.
fn curl_stream(url: &str) -> (KillOnDrop, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new("curl")
        .args(["-s", "-N", url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run curl");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (KillOnDrop(child), rx)
}

/// Lines until one that `f` accepts (within the harness wait); the lines read.
fn lines_until(rx: &std::sync::mpsc::Receiver<String>, f: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = f(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("stream ended or timed out; read:\n{}", seen.join("\n")),
        }
    }
}

/// Server-sent events read with `curl -N` while an SMTP message is sent: the session's start,
/// the delivery (with its recipient) and the end, as `smtpctl watch` shows them; a keep-alive
/// comment on the idle stream; a second stream beyond `max_event_streams` is 503.
#[test]
fn events_stream_deliveries_to_curl() {
    if !tools() {
        return;
    }
    let srv = Server::start_with(http().set("http", "max_event_streams", "1").set(
        "http",
        "event_keepalive_secs",
        "1",
    ));
    let base = srv.http_base();
    let (child, rx) = curl_stream(&format!("{base}/api/v1/events"));
    lines_until(&rx, |l| l == ": smtpd events");

    let (code, err) = curl_json(&[&format!("{base}/api/v1/events")]);
    assert_eq!(code, 503, "{err}");

    srv.deliver("frank@example.test", &message("frank@example.test", "sse"));
    let seen = lines_until(&rx, |l| l == "event: session_end");
    let text = seen.join("\n");
    let start = text.find("event: session_start").expect(&text);
    let delivered = text.find("event: delivered").expect(&text);
    assert!(start < delivered, "{text}");
    let data = seen
        .iter()
        .skip_while(|l| *l != "event: delivered")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .expect(&text);
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["to"][0].as_str()),
        (Some("delivered"), Some("frank@example.test"))
    );
    lines_until(&rx, |l| l == ": keep-alive");
    drop(child);
    // Its place is given back once curl has gone.
    until("the stream's place is given back", || {
        let (_, body) = curl(&[&format!("{base}/metrics")]);
        String::from_utf8_lossy(&body).contains("\nsmtpd_http_event_streams 0\n")
    });
}

/// Issue 19, a rolling restart behind a balancer: `smtpctl drain` turns `/health` to 503
/// `draining` while every session is still served (the open one, and a new one the balancer
/// might still send), and returns once the last one has closed; `smtpctl undrain` gives 200.
#[test]
fn drain_turns_health_away_but_serves_every_session() {
    if !have("curl") {
        return;
    }
    let srv = Server::start_with(http());
    let health = format!("{}/health", srv.http_base());
    let mut open = srv.connect();
    open.expect(220);
    let mut drain = Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(srv.socket())
        .args(["drain", "--timeout", "60s", "--settle", "0s"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run smtpctl drain");
    until("/health answers 503", || curl(&[&health]).0 == 503);
    let (_, body) = curl(&[&health]);
    assert_eq!(String::from_utf8_lossy(&body), r#"{"status":"draining"}"#);
    assert_eq!(srv.ctl_json(&["status"])["draining"], true);
    let mut late = srv.connect();
    late.expect(220);
    let r = late.send_mail(
        "a@b.test",
        &["alice@example.test"],
        b"Subject: late\r\n\r\nx\r\n",
    );
    assert_eq!(r.code, 250, "a session during the drain is served");
    assert_eq!(late.cmd("QUIT").code, 221);
    assert!(late.is_closed());
    assert!(
        drain.try_wait().unwrap().is_none(),
        "drain returned with a session open"
    );
    let short = srv.ctl(&["drain", "--timeout", "1s", "--settle", "0s"]);
    assert!(!short.status.success(), "{}", stdout(&short));
    assert!(
        stdout(&short).contains("not drained: 1 session(s) still open"),
        "{}",
        stdout(&short)
    );
    assert_eq!(open.cmd("QUIT").code, 221);
    let out = drain.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("drained in"), "{}", stdout(&out));
    assert_eq!(
        curl(&[&health]).0,
        503,
        "still draining until undrain or a restart"
    );
    assert!(srv.ctl(&["undrain"]).status.success());
    assert_eq!(curl(&[&health]).0, 200);
}
