//! The metrics over HTTP (issue 17): `GET /metrics` on `[http] listen` serves the same Prometheus
//! text as `smtpctl metrics`. It replaced `[metrics] listen` (and its cargo feature): the key is
//! still accepted, with a deprecation warning from `--check-config` and in the log, and nothing
//! listens on its address.
mod common;
use common::*;

use std::io::{Read, Write};

fn deprecated(o: Overrides, addr: &str) -> Overrides {
    o.set("metrics", "listen", &format!("\"{addr}\""))
}

#[test]
fn check_config_warns_about_metrics_listen() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smtpd.toml");
    let text = config_text(dir.path(), &deprecated(Overrides::new(), "127.0.0.1:9325"));
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(smtpd_bin())
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: `[metrics] listen = \"127.0.0.1:9325\"` is deprecated")
            && err.contains("GET /metrics` on `[http] listen`"),
        "{err}"
    );
}

#[test]
fn get_metrics_on_the_http_listener() {
    // An address nothing else holds: the old key names it, and it must stay unbound.
    let old = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = Overrides::new().set("http", "listen", "[\"127.0.0.1:0\"]");
    let srv = Server::start_with(deprecated(o, &old.to_string()));
    srv.log.wait_for("`[metrics] listen");
    let addr = srv.addr("http");
    srv.deliver("alice@example.test", b"Subject: m\r\n\r\nx\r\n");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let resp = get("/metrics");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{resp}"
    );
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    // Exposition format: HELP/TYPE comments, then `name{labels} value` samples.
    let mut samples = 0;
    for l in body.lines() {
        if l.starts_with("# HELP ") || l.starts_with("# TYPE ") {
            continue;
        }
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(name.starts_with("smtpd_"), "{l}");
        value.parse::<f64>().unwrap();
        samples += 1;
    }
    assert!(samples > 5, "{body}");
    let accepted = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("smtpd_messages_accepted_total"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(accepted(body).as_deref(), Some("1"), "{body}");
    assert_eq!(accepted(&stdout(&srv.ctl(&["metrics"]))), accepted(body));
    assert!(
        std::net::TcpStream::connect(old).is_err(),
        "nothing listens on the old [metrics] listen address"
    );
}
