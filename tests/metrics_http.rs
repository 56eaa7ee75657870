//! `[metrics] listen`: the Prometheus HTTP endpoint behind the `metrics-http` cargo feature (off
//! by default). Without the feature the key is a config error that says how to get it; with it
//! (`cargo test --features metrics-http`, run by .ci/run), GET /metrics serves the same text
//! as `smtpctl metrics`.
mod common;
use common::*;

#[cfg(not(feature = "metrics-http"))]
#[test]
fn without_the_feature_the_key_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let o = Overrides::new().set("metrics", "listen", "\"127.0.0.1:0\"");
    let config = dir.path().join("smtpd.toml");
    std::fs::write(&config, config_text(dir.path(), &o)).unwrap();
    let out = std::process::Command::new(smtpd_bin())
        .arg("--check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("built without the `metrics-http` feature"),
        "{err}"
    );
    assert!(err.contains("smtpd.toml:"), "file:line: {err}");
}

#[cfg(feature = "metrics-http")]
#[test]
fn get_metrics_serves_the_counters() {
    use std::io::{Read, Write};
    let srv = Server::start_with(Overrides::new().set("metrics", "listen", "\"127.0.0.1:0\""));
    let line = srv.log.wait_for("metrics endpoint listening");
    let addr: std::net::SocketAddr = line
        .split("address=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    srv.deliver("alice@example.test", b"Subject: m\r\n\r\nx\r\n");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let resp = get("/metrics");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp.contains("Content-Type: text/plain; version=0.0.4"));
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
    assert!(get("/").starts_with("HTTP/1.1 404"));
}
