use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::parse;
use crate::config::{AcmeChallenge, Control, Limits, Log, Mailboxes, Pop3, Server, Smtp};

fn problems(text: &str) -> Vec<(usize, String)> {
    match parse(text, Path::new("t.toml")) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect(),
    }
}

#[test]
fn minimal_config_gets_every_default() {
    let c = parse("hostname = \"mx.test\"\n", Path::new("t.toml")).unwrap();
    assert_eq!(c.hostname, "mx.test");
    assert_eq!(c.smtp, Smtp::default());
    assert_eq!(c.pop3, Pop3::default());
    assert_eq!(c.mailboxes, Mailboxes::default());
    assert_eq!(c.limits, Limits::default());
    assert_eq!(c.log, Log::default());
    assert_eq!(c.control, Control::default());
    assert_eq!(c.server, Server::default());
    assert!(c.tls.is_none());
    assert!(c.accounts.is_empty());
}

#[test]
fn acme_keys_are_read_and_names_default_to_the_hostname() {
    let ok = "hostname = \"Mail.Example.test\"\n[http]\nlisten = [\"127.0.0.1:8080\"]\n[tls]\nacme = true\nacme_email = \"pm@example.test\"\n";
    let c = parse(ok, Path::new("t.toml")).unwrap();
    let t = c.tls.unwrap();
    assert!(t.acme);
    assert_eq!(t.acme_names, ["mail.example.test"]);
    assert_eq!(t.acme_directory, crate::config::LETS_ENCRYPT);
    assert_eq!(t.acme_email, "pm@example.test");
    assert_eq!(
        t.acme_account(),
        Path::new("config/tls/acme-account.json"),
        "beside the certificate"
    );
    let named = format!("{ok}acme_names = [\"MX.example.test.\", \"smtp.example.test\"]\n");
    let t = parse(&named, Path::new("t.toml")).unwrap().tls.unwrap();
    assert_eq!(t.acme_names, ["mx.example.test", "smtp.example.test"]);
}

#[test]
fn acme_problems_name_their_line() {
    let base = "hostname = \"mail.example.test\"\n[http]\nlisten = [\"127.0.0.1:8080\"]\n[tls]\nacme = true\n";
    let p = problems(&format!(
        "{base}acme_directory = \"http://ca.example/dir\"\nacme_email = \"nobody\"\nacme_names = [\"*.example.test\", \"10.0.0.1\", \"single\", \"a.example.test\", \"a.example.test\"]\n"
    ));
    let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [6, 7, 8, 8, 8, 8], "{p:?}");
    assert!(p[0].1.contains("https://"), "{p:?}");
    assert!(p[1].1.contains("acme_email") && p[1].1.contains("nobody"));
    assert!(p[2].1.contains("DNS-01"), "{p:?}");
    assert!(p[3].1.contains("an address"), "{p:?}");
    assert!(p[4].1.contains("fully qualified"), "{p:?}");
    assert!(p[5].1.contains("listed twice"), "{p:?}");

    // HTTP-01 needs a plain [http] listener; self_signed is ACME's own business.
    let p = problems("hostname = \"mail.example.test\"\n[tls]\nself_signed = true\nacme = true\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().all(|(l, _)| *l == 4), "{p:?}");
    assert!(p.iter().any(|(_, m)| m.contains("[http] listen")), "{p:?}");
    assert!(p.iter().any(|(_, m)| m.contains("self_signed")), "{p:?}");
    // HTTPS only: `auto` answers TLS-ALPN-01 there; HTTP-01 asked for cannot be answered.
    let https = "hostname = \"mail.example.test\"\n[http]\nlisten = [\"127.0.0.1:8080\"]\ntls = true\n[tls]\nacme = true\n";
    let c = parse(https, Path::new("t.toml")).unwrap();
    assert_eq!(c.tls.unwrap().acme_challenge, AcmeChallenge::TlsAlpn01);
    let p = problems(&format!("{https}acme_challenge = \"http-01\"\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].1.contains("[http] tls = false") && p[0].0 == 6,
        "{p:?}"
    );
    // TLS-ALPN-01 needs an implicit-TLS listener; plain HTTP makes `auto` HTTP-01.
    let plain = "hostname = \"mail.example.test\"\n[http]\nlisten = [\"127.0.0.1:8080\"]\n[tls]\nacme = true\n";
    let c = parse(plain, Path::new("t.toml")).unwrap();
    assert_eq!(c.tls.unwrap().acme_challenge, AcmeChallenge::Http01);
    let p = problems(&format!("{plain}acme_challenge = \"tls-alpn-01\"\n"));
    assert!(p.len() == 1 && p[0].1.contains("there is none"), "{p:?}");
    let alpn = "hostname = \"mail.example.test\"\n[smtp]\nsubmissions = [\"127.0.0.1:4465\"]\n[tls]\nacme = true\n";
    let c = parse(alpn, Path::new("t.toml")).unwrap();
    assert_eq!(c.tls.unwrap().acme_challenge, AcmeChallenge::TlsAlpn01);
    let p = problems(&format!("{alpn}acme_challenge = \"tls-alpn-02\"\n"));
    assert!(p.len() == 1 && p[0].1.contains("\"tls-alpn-01\""), "{p:?}");
    // A hostname that is no DNS name needs acme_names.
    let p = problems(
        "hostname = \"[127.0.0.1]\"\n[http]\nlisten = [\"127.0.0.1:8080\"]\n[tls]\nacme = true\n",
    );
    assert!(p.len() == 1 && p[0].1.contains("acme_names"), "{p:?}");
}

#[test]
fn bundled_config_is_valid() {
    let text = include_str!("../../../config/smtpd.toml");
    let c = parse(text, Path::new("config/smtpd.toml")).unwrap();
    assert_eq!(
        c.smtp.listen,
        vec!["127.0.0.1:2525".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(c.mailboxes.root, PathBuf::from("mailboxes"));
    assert_eq!(c.log.dir, PathBuf::from("logs"));
}

#[test]
fn hostname_is_required() {
    let p = problems("[smtp]\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].1.contains("hostname"));
}

#[test]
fn every_problem_reported_with_its_line() {
    let text = "hostname = \"mx.test\"\n\
                bogus = 1\n\
                [smtp]\n\
                listen = [\"127.0.0.1:2525\", \"localhost:25\"]\n\
                [limits]\n\
                max_recipients = \"many\"\n\
                max_errors = -1\n\
                max_command_line = 100\n\
                [mailboxes]\n\
                accept = \"some\"\n\
                domains = [\"ok.test\", \"bad/domain\"]\n\
                [log]\n\
                rotation = \"weekly\"\n\
                levle = \"info\"\n";
    let p = problems(text);
    let lines: Vec<usize> = p.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 4, 6, 7, 8, 10, 11, 13, 14], "{p:#?}");
    assert!(p[0].1.contains("unknown key `bogus`"));
    assert!(p[1].1.contains("localhost:25"));
    assert!(p[2].1.contains("max_recipients"));
    assert!(p[8].1.contains("unknown key `levle` in [log]"));
}

#[test]
fn syntax_errors_have_lines() {
    let p = problems("hostname = \"mx.test\"\n[smtp]\nlisten = [\n");
    assert!(!p.is_empty());
    assert!(p[0].0 >= 3, "{p:?}");
}

#[test]
fn accounts_are_checked() {
    let text = "hostname = \"mx.test\"\n\
                [mailboxes]\ndomains = [\"example.test\"]\naccept = \"accounts\"\n\
                [[accounts]]\naddress = \"Alice@Example.test\"\npassword = \"$argon2id$x\"\n\
                [[accounts]]\naddress = \"bob@other.test\"\npassword = \"$6$x$y\"\n\
                [[accounts]]\naddress = \"carol@example.test\"\n";
    let p = problems(text);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].0, 9);
    assert!(p[0].1.contains("not in mailboxes.domains"));
    assert_eq!(p[1].0, 12);
    assert!(p[1].1.contains("password"));
    let ok = "hostname = \"mx.test\"\n[mailboxes]\ndomains = [\"example.test\"]\naccept = \"accounts\"\n[[accounts]]\naddress = \"Alice@Example.test\"\npassword = \"$argon2id$h\"\n";
    let c = parse(ok, Path::new("t.toml")).unwrap();
    assert_eq!(c.accounts[0].address, "alice@example.test");
}

#[test]
fn plaintext_password_is_refused() {
    let p = problems(
        "hostname = \"mx.test\"\n[mailboxes]\ndomains = [\"example.test\"]\n[[accounts]]\naddress = \"a@example.test\"\npassword = \"hunter2\"\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, 6);
    assert!(p[0].1.contains("never the password itself"));
}

#[test]
fn duplicate_listener_is_an_error() {
    let p = problems(
        "hostname = \"mx.test\"\n[smtp]\nlisten = [\"127.0.0.1:2525\"]\n[pop3]\nlisten = [\"127.0.0.1:2525\"]\n",
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, 5);
}

#[test]
fn display_is_path_line_message() {
    let e = parse("hostname = \"mx.test\"\nx = 1\n", Path::new("c/s.toml")).unwrap_err();
    assert!(
        e.to_string().starts_with("c/s.toml:2: unknown key `x`"),
        "{e}"
    );
}

#[test]
fn http_section() {
    let c = parse("hostname = \"mx.test\"\n", Path::new("t.toml")).unwrap();
    assert_eq!(c.http, crate::config::Http::default());
    assert!(c.http.listen.is_empty());
    let c = parse(
        "hostname = \"mx.test\"\n[http]\nlisten = [\"127.0.0.1:8025\"]\ntoken = \"0123456789abcdef\"\nmax_wait_secs = 5\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(c.http.listen, vec!["127.0.0.1:8025".parse().unwrap()]);
    assert_eq!(
        (c.http.token.as_str(), c.http.max_wait_secs),
        ("0123456789abcdef", 5)
    );
    let p = problems(
        "hostname = \"mx.test\"\n[smtp]\nlisten = [\"127.0.0.1:8025\"]\n[http]\nlisten = [\"127.0.0.1:8025\"]\ntoken = \"short\"\nmax_header_bytes = 100\n",
    );
    assert_eq!(
        p,
        [
            (5, "`127.0.0.1:8025` is listed twice among the listeners".to_string()),
            (6, "`http.token`: a token of 5 characters is too easy to guess: use at least 16 (e.g. the output of `openssl rand -hex 16`)".to_string()),
            (7, "`http.max_header_bytes` must be a whole number of at least 1024, not 100".to_string()),
        ]
    );
    let p = problems("hostname = \"mx.test\"\n[http]\ntoken = \"has space in it, 16+\"\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].1.contains("' ' cannot be in a Bearer token"), "{p:?}");
}

/// `[http] tls = true` needs the [tls] certificate; admins are lower-cased; `[metrics] listen`
/// is accepted and reported as deprecated.
#[test]
fn http_tls_admins_and_the_deprecated_metrics_key() {
    let text = "hostname = \"mx.test\"\n[http]\nlisten = [\"127.0.0.1:0\"]\ntls = true\n";
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, 3, "the listen line: {p:?}");
    assert!(p[0].1.contains("[tls] section"), "{p:?}");
    let text = "hostname = \"mx.test\"\n[http]\nadmins = [\"Bob@Example.test\"]\n[metrics]\nlisten = \"127.0.0.1:9325\"\n";
    let c = parse(text, Path::new("t.toml")).unwrap();
    assert_eq!(c.http.admins, ["bob@example.test"]);
    let d = c.deprecations();
    assert!(
        d.len() == 1 && d[0].contains("`[metrics] listen = \"127.0.0.1:9325\"` is deprecated"),
        "{d:?}"
    );
    assert!(
        parse("hostname = \"mx.test\"\n", Path::new("t.toml"))
            .unwrap()
            .deprecations()
            .is_empty()
    );
}

/// `[server] instance` names Maildir files: a name with a path separator, a Maildir
/// separator or spaces is refused where it stands; `proxy_from` takes networks like
/// `[relay] networks`, an address alone being one host.
#[test]
fn server_instance_and_proxy_from_are_checked() {
    let base = "hostname = \"mx.example.test\"\n[server]\n";
    for bad in ["a/b", "node:1", "two words", &"x".repeat(65)] {
        let p = problems(&format!("{base}instance = \"{bad}\"\n"));
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
        assert_eq!(p[0].0, 3, "{p:?}");
        assert!(p[0].1.contains("is not a name for Maildir files"), "{p:?}");
    }
    let c = parse(
        &format!(
            "{base}instance = \"node-b.lab_1\"\nproxy_from = [\"10.1.2.3\", \"192.0.2.0/24\"]\n"
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(c.server.instance_name(), "node-b.lab_1");
    let nets: Vec<String> = c
        .server
        .proxy_from
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["10.1.2.3/32", "192.0.2.0/24"]);
    let p = problems(&format!("{base}proxy_from = [\"10.0.0.0/40\"]\n"));
    assert!(p[0].1.contains("`server.proxy_from`"), "{p:?}");
    assert!(!Server::default().instance_name().is_empty());
}
