//! The web view (issue 17) from outside: the pages with Python's urllib (hostile mail escaped,
//! search, pages, a malformed and a huge message, deletes with and without the form token), and
//! in headless Chromium the HTML part of a hostile message neither runs its script nor loads a
//! remote image (remote = another loopback port, whose listener must see no connection), and
//! (Selenium driving it) a message delivered while the list is open shows up by itself; with
//! screenshots under target/ci-artefacts.
mod common;
use common::*;

use std::io::Read;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn http() -> Overrides {
    Overrides::new().set("http", "listen", "[\"127.0.0.1:0\"]")
}

/// urllib: METHOD url [form body]; prints the status, the headers as JSON, then the body.
/// Redirects are not followed.
const URLLIB: &str = r#"
import sys, json, urllib.request, urllib.error
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
opener = urllib.request.build_opener(NoRedirect)
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(sys.argv[1], method=sys.argv[2], data=data)
try:
    r = opener.open(req, timeout=60)
    code, headers, body = r.status, dict(r.headers), r.read()
except urllib.error.HTTPError as e:
    code, headers, body = e.code, dict(e.headers), e.read()
sys.stdout.write(str(code) + "\n" + json.dumps({k.lower(): v for k, v in headers.items()}) + "\n")
sys.stdout.flush()
sys.stdout.buffer.write(body)
"#;

struct Got {
    code: u16,
    headers: serde_json::Value,
    body: String,
}

fn urllib(method: &str, url: &str, form: Option<&str>) -> Got {
    let mut c = Command::new("python3");
    c.args(["-c", URLLIB, url, method]);
    if let Some(f) = form {
        c.arg(f);
    }
    let out = c.output().expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut it = text.splitn(3, '\n');
    let code = it.next().unwrap_or("").trim().parse().unwrap_or(0);
    let headers = serde_json::from_str(it.next().unwrap_or("{}")).unwrap_or_default();
    let body = it.next().unwrap_or("").to_string();
    assert!(code != 0, "{method} {url}: {}", stderr(&out));
    Got {
        code,
        headers,
        body,
    }
}

/// The value of `name="csrf" value="..."` in a page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// A message built to hurt: markup in headers, a script and remote loads in its HTML part.
fn hostile(logger: u16) -> Vec<u8> {
    format!(
        "From: \"<b>Evil</b>\" <evil@b.test>\r\nTo: bob@example.test\r\nSubject: <script>alert('subject')</script> & more\r\nX-Inject: \"><img src=x onerror=alert(1)>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain </pre><script>alert('text')</script>\r\n--b\r\nContent-Type: text/html\r\n\r\n<html><head><link rel=stylesheet href=\"http://127.0.0.1:{logger}/css\"></head><body><h1 id=h>HTML part</h1><img src=\"http://127.0.0.1:{logger}/img\"><script>new Image().src='http://127.0.0.1:{logger}/script';document.getElementById('h').textContent='SCRIPT RAN'</script><iframe src=\"http://127.0.0.1:{logger}/frame\"></iframe></body></html>\r\n--b--\r\n"
    )
    .into_bytes()
}

fn ids(srv: &Server, mailbox: &str) -> Vec<String> {
    let url = format!("{}/api/v1/messages?mailbox={mailbox}", srv.http_base());
    let got = urllib("GET", &url, None);
    let v: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pages_from_urllib() {
    if !have("python3") {
        return;
    }
    let srv = Server::start_with(http());
    let base = srv.http_base();
    srv.deliver("bob@example.test", &hostile(9));
    srv.deliver(
        "alice@example.test",
        b"Subject: for alice\r\n\r\nthe secretword is here\r\n",
    );
    // Malformed MIME: a boundary that never comes, a bad header line.
    srv.deliver(
        "alice@example.test",
        b"Subject: broken\r\nContent-Type: multipart/mixed; boundary=\"never\r\nbad header line\r\n\r\n--nope\r\nstuff\r\n",
    );

    let list = urllib("GET", &format!("{base}/web"), None);
    assert_eq!(list.code, 200, "{}", list.body);
    assert!(
        list.headers["content-type"]
            .as_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = list.headers["content-security-policy"].as_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    assert!(
        !list.body.contains("<script>alert") && list.body.contains("&lt;script&gt;alert"),
        "escaped: {}",
        list.body
    );
    assert!(list.body.contains("for alice") && list.body.contains("broken"));
    let mine = urllib(
        "GET",
        &format!("{base}/web?mailbox=alice@example.test"),
        None,
    );
    assert!(mine.body.contains("for alice") && !mine.body.contains("alert"));
    let found = urllib("GET", &format!("{base}/web?q=SecretWord"), None);
    assert!(found.body.contains("for alice") && !found.body.contains("broken"));

    // The hostile message's page: all of it escaped, the HTML part in a sandboxed frame whose
    // own route forbids scripts and remote loads.
    let bob = ids(&srv, "bob@example.test");
    let page = urllib("GET", &format!("{base}/web/messages/{}", bob[0]), None);
    assert_eq!(page.code, 200, "{}", page.body);
    for raw in ["<script>alert", "<img src=x", "<b>Evil"] {
        assert!(!page.body.contains(raw), "{raw} in {}", page.body);
    }
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let frame = page.body.find("<iframe").expect("an iframe");
    let tag = &page.body[frame..frame + page.body[frame..].find('>').unwrap()];
    assert!(tag.contains("sandbox=\"\""), "{tag}");
    let src = tag
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let part = urllib("GET", &format!("{base}{src}"), None);
    let part_csp = part.headers["content-security-policy"].as_str().unwrap();
    assert!(
        part_csp.contains("default-src 'none'") && part_csp.contains("sandbox"),
        "{part_csp}"
    );
    assert!(!part_csp.contains("script-src"), "{part_csp}");

    let alice = ids(&srv, "alice@example.test");
    for id in &alice {
        let p = urllib("GET", &format!("{base}/web/messages/{id}"), None);
        assert_eq!(p.code, 200, "malformed or not: {}", p.body);
    }

    // Deleting: refused without the form token, done with it.
    let url = format!("{base}/web/messages/{}/delete", bob[0]);
    assert_eq!(urllib("POST", &url, Some("csrf=wrong")).code, 403);
    assert_eq!(ids(&srv, "bob@example.test").len(), 1);
    let token = csrf(&page.body);
    let done = urllib("POST", &url, Some(&format!("csrf={token}")));
    assert_eq!(done.code, 303, "{}", done.body);
    assert!(ids(&srv, "bob@example.test").is_empty());
    let all = format!("{base}/web/delete-all");
    let done = urllib(
        "POST",
        &all,
        Some(&format!("csrf={token}&mailbox=alice%40example.test")),
    );
    assert_eq!(done.code, 303);
    assert!(ids(&srv, "alice@example.test").is_empty());
}

/// A list of more than a page goes on through "Older messages"; a huge message's page shows a
/// cut text, and its raw source is all there.
#[test]
fn pages_of_many_and_a_huge_message() {
    if !have("python3") {
        return;
    }
    let srv = Server::start_with(http());
    let base = srv.http_base();
    let md = srv.root().join("example.test/carol");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    for i in 0..60 {
        let name = format!("{}.M{i}P1Q{i}.h", 1_700_000_000 + i);
        let text = format!("Subject: number {i}\n\nx\n");
        std::fs::write(md.join("new").join(name), text).unwrap();
    }
    let first = urllib(
        "GET",
        &format!("{base}/web?mailbox=carol@example.test"),
        None,
    );
    assert!(first.body.contains("number 59") && !first.body.contains("number 9<"));
    let at = first.body.find("href=\"/web?").expect("a next page");
    let next = first.body[at + 6..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = urllib("GET", &format!("{base}{next}"), None);
    assert!(second.body.contains("number 9<") && !second.body.contains("number 59"));

    let big = "0123456789abcdef".repeat(64 * 1024 + 1); // a bit over 1 MiB of text
    let mut data = b"Subject: huge\r\n\r\n".to_vec();
    for line in big.as_bytes().chunks(64) {
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    srv.deliver("dave@example.test", &data);
    let id = ids(&srv, "dave@example.test").remove(0);
    let page = urllib("GET", &format!("{base}/web/messages/{id}"), None);
    assert_eq!(page.code, 200);
    assert!(page.body.contains("Cut at 256 KiB"), "the note");
    assert!(page.body.len() < 600 * 1024, "{}", page.body.len());
    let raw = urllib("GET", &format!("{base}/api/v1/messages/{id}/raw"), None);
    let file = std::fs::metadata(&srv.new_mail("example.test", "dave")[0]).unwrap();
    assert_eq!(raw.body.len() as u64, file.len());
}

/// The "remote" server of the test: a loopback port that keeps the request line of every
/// request it gets (its access log). Connections are served one at a time, so once a request
/// of our own is logged, every earlier one is too. (Chromium may open speculative connections
/// that send nothing: those are no request and are not logged.)
struct Logger {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Logger {
    fn start() -> Logger {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let line = String::from_utf8_lossy(&buf[..n]);
                let line = line.lines().next().unwrap_or("").to_string();
                kept.lock().unwrap().push(line);
                let _ = s.write_all(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok",
                );
            }
        });
        Logger { port, log }
    }

    /// Every request so far (after a request of our own has come through, left out).
    fn requests(&self) -> Vec<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"GET /end-of-test HTTP/1.0\r\n\r\n").unwrap();
        until("the logger's own request", || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("/end-of-test"))
        });
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|l| !l.contains("/end-of-test"))
            .cloned()
            .collect()
    }
}

fn artefacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ci-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium on `url`: a screenshot to `shot`, and the DOM it ended with.
fn chromium(url: &str, shot: &std::path::Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &str| {
        Command::new("timeout")
            .args([
                "60",
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1200,900",
                "--timeout=4000",
                &format!("--user-data-dir={}", profile.path().display()),
                extra,
                url,
            ])
            .output()
            .expect("run chromium")
    };
    let out = run(&format!("--screenshot={}", shot.display()));
    assert!(shot.exists(), "no screenshot: {}", stderr(&out));
    stdout(&run("--dump-dom"))
}

#[test]
fn html_part_cannot_script_or_load_remote_in_chromium() {
    if !have("chromium") || !have("python3") {
        return;
    }
    // The control, on a port of its own: Chromium does load from such a port when nothing
    // forbids it.
    let dir = artefacts();
    let control = Logger::start();
    chromium(
        &format!("http://127.0.0.1:{}/control", control.port),
        &dir.join("web-control.png"),
    );
    let seen = control.requests();
    assert!(
        seen.iter().any(|l| l.starts_with("GET /control")),
        "{seen:?}"
    );
    let remote = Logger::start();
    let port = remote.port;

    let srv = Server::start_with(http());
    srv.deliver("bob@example.test", &hostile(port));
    srv.deliver(
        "alice@example.test",
        b"Subject: hello\r\n\r\nan ordinary message\r\n",
    );
    let base = srv.http_base();
    let list = chromium(&format!("{base}/web"), &dir.join("web-list.png"));
    assert!(
        list.contains("hello") && list.contains("&lt;script&gt;"),
        "{list}"
    );
    let id = ids(&srv, "bob@example.test").remove(0);
    let page = chromium(
        &format!("{base}/web/messages/{id}"),
        &dir.join("web-message.png"),
    );
    assert!(page.contains("<iframe sandbox=\"\""), "{page}");
    // The frame's own document, opened alone: the script does not run there either (its CSP);
    // had it run, the heading would say so.
    let detail = urllib("GET", &format!("{base}/api/v1/messages/{id}"), None);
    let detail: serde_json::Value = serde_json::from_str(&detail.body).unwrap();
    let src = format!("{base}/api/v1/messages/{id}/parts/{}", detail["html_part"]);
    let part = chromium(&src, &dir.join("web-html-part.png"));
    assert!(part.contains("<h1 id=\"h\">HTML part</h1>"), "{part}");
    let seen = remote.requests();
    assert!(
        seen.is_empty(),
        "the message reached the remote port: {seen:?}"
    );
}

/// Live arrival in a real browser (Selenium driving headless Chromium): the first page of the
/// list shows a message delivered while it is open, by itself (the events stream reloads it);
/// an older page keeps its place and shows the "New mail arrived" notice instead.
#[test]
fn live_arrival_in_chromium() {
    if !have("chromium") || !have("chromedriver") || !have("python3") {
        return;
    }
    // Debian's interpreter, where python3-selenium is (not a python3 earlier in PATH).
    let python = "/usr/bin/python3";
    let has_selenium = Command::new(python)
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_selenium {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3-selenium is required under CI=true (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python3-selenium is not installed");
        return;
    }
    let srv = Server::start_with(http());
    // More than one page (50 a page), so that there is an older page to open.
    for i in 0..51 {
        srv.deliver(
            "alice@example.test",
            format!("Subject: filler {i}\r\n\r\nfiller\r\n").as_bytes(),
        );
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/web_live.py");
    let out = Command::new("timeout")
        .args(["120", python, script])
        .arg(srv.http_base())
        .arg(srv.smtp.to_string())
        .arg(artefacts())
        .output()
        .expect("run python3");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("first page: reloaded"), "{text}");
    assert!(text.contains("older page: notice shown"), "{text}");
    eprintln!("{text}");
}
