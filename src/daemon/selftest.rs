//! `smtpctl selftest`: the daemon dials its own listeners over loopback and checks the RFC MUSTs a
//! mail client or relay relies on. Everything goes to a probe mailbox (`smtpd-selftest@<first
//! domain>`, removed afterwards) and POP3 logs in with a one-off secret (see
//! [`crate::auth::accounts::set_probe`]); nothing reaches a real user's mailbox.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The probe mailbox's local part.
pub const PROBE_LOCAL: &str = "smtpd-selftest";
const STEP: Duration = Duration::from_secs(10);
/// The SIZE check sends a message one octet over the limit only when the limit is at most this.
const ACTUAL_SIZE_CAP: u64 = 64 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// Where the rule is written.
    pub rfc: String,
    pub outcome: Outcome,
    /// What was seen (or why the check was skipped).
    pub seen: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub smtp: String,
    pub pop3: Option<String>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

/// What the run needs from the running configuration.
pub struct Target {
    pub smtp: SocketAddr,
    pub pop3: Option<SocketAddr>,
    pub starttls: bool,
    pub hostname: String,
    pub domain: String,
    pub root: PathBuf,
    pub max_message_bytes: u64,
    pub max_command_line: usize,
    pub max_line_length: usize,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A line-oriented client over a plain or TLS stream.
struct Peer {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Peer {
    async fn connect(addr: SocketAddr) -> Result<Peer, String> {
        let tcp = tokio::time::timeout(STEP, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr}: timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(Peer {
            io: Box::new(tcp),
            buf: Vec::new(),
        })
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        tokio::time::timeout(STEP, self.io.write_all(bytes))
            .await
            .map_err(|_| "write timed out".to_string())?
            .map_err(|e| format!("write: {e}"))
    }

    /// One line without its CRLF; Err on timeout or close.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(STEP, self.io.read(&mut chunk))
                .await
                .map_err(|_| "no answer within 10 s".to_string())?
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// An SMTP reply: every line, the code of the last.
    async fn reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await?;
            let last = l.as_bytes().get(3) != Some(&b'-');
            lines.push(l);
            if last {
                let code = lines
                    .last()
                    .and_then(|l| l.get(..3))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                return Ok((code, lines));
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> Result<(u16, Vec<String>), String> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// POP3 multi-line body (byte-stuffing removed, CRLF kept), after a +OK line.
    async fn multiline(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await?;
            if l == "." {
                return Ok(out);
            }
            out.extend_from_slice(l.strip_prefix('.').unwrap_or(&l).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    async fn starttls(self, hostname: &str) -> Result<Peer, String> {
        let cfg = crate::net::tls::client_config(None, true)?;
        let name = rustls::pki_types::ServerName::try_from(hostname.to_string())
            .map_err(|e| e.to_string())?;
        // The check is that nothing is left over from before the handshake.
        let leftover = self.buf.len();
        let tcp = self.io;
        let tls = tokio::time::timeout(
            STEP,
            tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
        )
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
        if leftover > 0 {
            return Err(format!("{leftover} octets arrived in plaintext after 220"));
        }
        Ok(Peer {
            io: Box::new(tls),
            buf: Vec::new(),
        })
    }
}

struct Run<'a> {
    t: &'a Target,
    probe: String,
    token: String,
    checks: Vec<Check>,
}

impl Run<'_> {
    fn record(&mut self, name: &str, rfc: &str, outcome: Outcome, seen: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            rfc: rfc.into(),
            outcome,
            seen: seen.into(),
        });
    }

    fn check(&mut self, name: &str, rfc: &str, pass: bool, seen: impl Into<String>) {
        let o = if pass { Outcome::Pass } else { Outcome::Fail };
        self.record(name, rfc, o, seen);
    }

    fn broken(&mut self, name: &str, rfc: &str, e: String) {
        self.record(name, rfc, Outcome::Fail, e);
    }

    async fn session(&mut self) -> Result<Peer, String> {
        let mut p = Peer::connect(self.t.smtp).await?;
        let (code, _) = p.reply().await?;
        if code != 220 {
            return Err(format!("greeting {code}"));
        }
        let (code, _) = p.cmd("EHLO selftest.invalid").await?;
        if code != 250 {
            return Err(format!("EHLO {code}"));
        }
        Ok(p)
    }

    /// The stored copies (in the probe's new/) whose text contains `needle`.
    async fn stored(&self, needle: &str) -> Vec<String> {
        let dir = self
            .t
            .root
            .join(&self.t.domain)
            .join(PROBE_LOCAL)
            .join("new");
        let needle = needle.to_string();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read(e.path()) {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    if text.contains(&needle) {
                        found.push(text);
                    }
                }
            }
            found
        })
        .await
        .unwrap_or_default()
    }

    async fn greeting_and_ehlo(&mut self) {
        const RFC: &str = "RFC 5321 4.1.1.1, 2920, 1870, 6152, 2034";
        let mut p = match Peer::connect(self.t.smtp).await {
            Ok(p) => p,
            Err(e) => return self.broken("greeting", "RFC 5321 4.2", e),
        };
        match p.reply().await {
            Ok((code, lines)) => self.check(
                "greeting",
                "RFC 5321 3.1, 4.2",
                code == 220,
                lines.join(" | "),
            ),
            Err(e) => return self.broken("greeting", "RFC 5321 3.1", e),
        }
        match p.cmd("EHLO selftest.invalid").await {
            Ok((250, lines)) => {
                let kw: Vec<String> = lines
                    .iter()
                    .skip(1)
                    .map(|l| l.get(4..).unwrap_or("").to_string())
                    .collect();
                let has = |k: &str| kw.iter().any(|l| l.split(' ').next() == Some(k));
                let size_ok = kw.iter().any(|l| {
                    l.strip_prefix("SIZE ")
                        .is_some_and(|n| n.parse::<u64>().is_ok())
                });
                let mut missing: Vec<&str> = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
                    .into_iter()
                    .filter(|k| !has(k))
                    .collect();
                if !size_ok {
                    missing.push("SIZE <n>");
                }
                if self.t.starttls && !has("STARTTLS") {
                    missing.push("STARTTLS");
                }
                let seen = if missing.is_empty() {
                    kw.join(", ")
                } else {
                    format!("missing {}; got {}", missing.join(", "), kw.join(", "))
                };
                self.check("EHLO keywords", RFC, missing.is_empty(), seen);
            }
            Ok((code, lines)) => self.check(
                "EHLO keywords",
                RFC,
                false,
                format!("{code}: {}", lines.join(" | ")),
            ),
            Err(e) => self.broken("EHLO keywords", RFC, e),
        }
        let _ = p.cmd("QUIT").await;
    }

    /// One write holding MAIL, two RCPTs (one not local) and DATA: the replies come in order,
    /// the foreign recipient is refused, and the message then arrives with its dots intact.
    async fn pipelining_relay_dots(&mut self) {
        const PIPE: &str = "RFC 2920 3.1";
        const RELAY: &str = "RFC 5321 3.6, 7.1";
        const DOTS: &str = "RFC 5321 4.5.2";
        let mut p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("pipelining order", PIPE, e),
        };
        let batch = format!(
            "MAIL FROM:<selftest@{}>\r\nRCPT TO:<{}>\r\nRCPT TO:<relay-test@example.invalid>\r\nDATA\r\n",
            self.t.hostname, self.probe
        );
        if let Err(e) = p.send(batch.as_bytes()).await {
            return self.broken("pipelining order", PIPE, e);
        }
        let mut codes = Vec::new();
        let mut relay_line = String::new();
        for i in 0..4 {
            match p.reply().await {
                Ok((code, lines)) => {
                    if i == 2 {
                        relay_line = lines.join(" | ");
                    }
                    codes.push(code);
                }
                Err(e) => {
                    return self.broken("pipelining order", PIPE, format!("after {codes:?}: {e}"));
                }
            }
        }
        let in_order = codes.len() == 4
            && codes[0] == 250
            && codes[1] == 250
            && (500..600).contains(&codes[2])
            && codes[3] == 354;
        self.check(
            "pipelining order",
            PIPE,
            in_order,
            format!("MAIL RCPT RCPT DATA in one write -> {codes:?}"),
        );
        self.check(
            "relay refusal",
            RELAY,
            codes.get(2).is_some_and(|c| (500..600).contains(c)),
            format!("RCPT TO:<relay-test@example.invalid> -> {relay_line}"),
        );
        if codes.get(3) != Some(&354) {
            return self.broken("dot transparency", DOTS, "DATA was not accepted".into());
        }
        let id = format!("{}-dots", self.token);
        let body = format!(
            "Subject: selftest {id}\r\n\r\n..leading dot\r\n..\r\n...two dots\r\nend\r\n.\r\n"
        );
        let reply = async {
            p.send(body.as_bytes()).await?;
            p.reply().await
        }
        .await;
        match reply {
            Ok((250, _)) => {
                let stored = self.stored(&id).await;
                let want = "\n.leading dot\n.\n..two dots\nend\n";
                let ok = stored.len() == 1 && stored[0].ends_with(want);
                let seen = match stored.first() {
                    Some(_) if ok => "\"..leading dot\", \"..\" and \"...two dots\" stored as \".leading dot\", \".\" and \"..two dots\"".to_string(),
                    Some(text) => format!(
                        "stored text ends {:?}",
                        text.get(text.len().saturating_sub(60)..).unwrap_or(text)
                    ),
                    None => "accepted but not found in the probe mailbox".into(),
                };
                self.check("dot transparency", DOTS, ok, seen);
            }
            Ok((code, lines)) => {
                self.check(
                    "dot transparency",
                    DOTS,
                    false,
                    format!("{code}: {}", lines.join(" | ")),
                );
            }
            Err(e) => self.broken("dot transparency", DOTS, e),
        }
        let _ = p.cmd("QUIT").await;
    }

    async fn postmaster(&mut self) {
        const RFC: &str = "RFC 5321 4.5.1";
        let mut p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("postmaster", RFC, e),
        };
        let mut seen = Vec::new();
        let mut ok = matches!(p.cmd("MAIL FROM:<>").await, Ok((250, _)));
        for rcpt in ["postmaster", &format!("postmaster@{}", self.t.domain)] {
            match p.cmd(&format!("RCPT TO:<{rcpt}>")).await {
                Ok((code, _)) => {
                    ok &= code == 250;
                    seen.push(format!("<{rcpt}> -> {code}"));
                }
                Err(e) => {
                    ok = false;
                    seen.push(format!("<{rcpt}> -> {e}"));
                }
            }
        }
        let _ = p.cmd("RSET").await;
        let _ = p.cmd("QUIT").await;
        self.check("postmaster", RFC, ok, seen.join(", "));
    }

    async fn size(&mut self) {
        const DECLARED: &str = "RFC 1870 6.1";
        const ACTUAL: &str = "RFC 1870 6.3";
        let max = self.t.max_message_bytes;
        let mut p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("SIZE declared", DECLARED, e),
        };
        match p
            .cmd(&format!(
                "MAIL FROM:<selftest@{}> SIZE={}",
                self.t.hostname,
                max + 1
            ))
            .await
        {
            Ok((code, lines)) => self.check(
                "SIZE declared",
                DECLARED,
                code == 552,
                format!("SIZE={} -> {}", max + 1, lines.join(" | ")),
            ),
            Err(e) => self.broken("SIZE declared", DECLARED, e),
        }
        let _ = p.cmd("RSET").await;
        if max > ACTUAL_SIZE_CAP {
            self.record(
                "SIZE actual",
                ACTUAL,
                Outcome::Skip,
                format!("limit {max} octets is over {ACTUAL_SIZE_CAP}: not sent"),
            );
            let _ = p.cmd("QUIT").await;
            return;
        }
        let result = async {
            p.cmd(&format!("MAIL FROM:<selftest@{}>", self.t.hostname))
                .await?;
            p.cmd(&format!("RCPT TO:<{}>", self.probe)).await?;
            let (code, _) = p.cmd("DATA").await?;
            if code != 354 {
                return Err(format!("DATA -> {code}"));
            }
            let mut body = format!("Subject: selftest {}-size\r\n\r\n", self.token).into_bytes();
            let line = [b'x'; 78];
            while (body.len() as u64) <= max {
                body.extend_from_slice(&line);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b".\r\n");
            p.send(&body).await?;
            let r = p.reply().await?;
            Ok::<_, String>((r, body.len() - 3))
        }
        .await;
        match result {
            Ok(((code, lines), sent)) => self.check(
                "SIZE actual",
                ACTUAL,
                (500..600).contains(&code) && code != 500,
                format!("{sent} octets sent undeclared -> {}", lines.join(" | ")),
            ),
            Err(e) => self.broken("SIZE actual", ACTUAL, e),
        }
        let _ = p.cmd("QUIT").await;
    }

    async fn long_lines(&mut self) {
        const CMD: &str = "RFC 5321 4.5.3.1.4";
        const TEXT: &str = "RFC 5321 4.5.3.1.6";
        let mut p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("oversize command line", CMD, e),
        };
        let long = format!("NOOP {}", "x".repeat(self.t.max_command_line + 10));
        let first = p.cmd(&long).await;
        let after = p.cmd("NOOP").await;
        match (first, after) {
            (Ok((code, l1)), Ok((next, _))) => self.check(
                "oversize command line",
                CMD,
                (500..600).contains(&code) && next == 250,
                format!(
                    "{} octets -> {}; then NOOP -> {next}",
                    long.len() + 2,
                    l1.join(" | ")
                ),
            ),
            (Err(e), _) | (_, Err(e)) => self.broken("oversize command line", CMD, e),
        }
        let result = async {
            p.cmd(&format!("MAIL FROM:<selftest@{}>", self.t.hostname))
                .await?;
            p.cmd(&format!("RCPT TO:<{}>", self.probe)).await?;
            p.cmd("DATA").await?;
            let body = format!(
                "Subject: selftest {}-long\r\n\r\n{}\r\n.\r\n",
                self.token,
                "y".repeat(self.t.max_line_length)
            );
            p.send(body.as_bytes()).await?;
            let r = p.reply().await?;
            let next = p.cmd("NOOP").await?;
            Ok::<_, String>((r, next.0))
        }
        .await;
        match result {
            Ok(((code, lines), next)) => self.check(
                "oversize text line",
                TEXT,
                (500..600).contains(&code) && next == 250,
                format!(
                    "a {}-octet line in DATA -> {}; then NOOP -> {next}",
                    self.t.max_line_length + 2,
                    lines.join(" | ")
                ),
            ),
            Err(e) => self.broken("oversize text line", TEXT, e),
        }
        let _ = p.cmd("QUIT").await;
    }

    /// The end-of-data look-alikes of SMTP smuggling: each must stay inside the message, so the
    /// commands after it are text, not a second transaction.
    async fn smuggling(&mut self) {
        const RFC: &str = "RFC 5321 4.1.1.4, 2.3.8";
        let variants: [(&str, &[u8]); 5] = [
            ("<LF>.<LF>", b"\n.\n"),
            ("<CR>.<CR>", b"\r.\r"),
            ("<LF>.<CR><LF>", b"\n.\r\n"),
            ("<CR><LF>.<LF>", b"\r\n.\n"),
            ("<CR><LF>.<CR>", b"\r\n.\r"),
        ];
        let mut p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("SMTP smuggling", RFC, e),
        };
        let mut failures = Vec::new();
        for (i, (name, seq)) in variants.iter().enumerate() {
            let id = format!("{}-smuggle{i}", self.token);
            let result = async {
                p.cmd(&format!("MAIL FROM:<selftest@{}>", self.t.hostname)).await?;
                p.cmd(&format!("RCPT TO:<{}>", self.probe)).await?;
                let (code, _) = p.cmd("DATA").await?;
                if code != 354 {
                    return Err(format!("DATA -> {code}"));
                }
                let mut body = format!("Subject: selftest {id}\r\n\r\nbefore").into_bytes();
                body.extend_from_slice(seq);
                body.extend_from_slice(
                    format!(
                        "MAIL FROM:<smuggled@example.invalid>\r\nRCPT TO:<{}>\r\nDATA\r\nSubject: smuggled {id}\r\n\r\nsmuggled\r\n.\r\n",
                        self.probe
                    )
                    .as_bytes(),
                );
                p.send(&body).await?;
                let (end, _) = p.reply().await?;
                // A smuggled transaction would have its own replies queued before NOOP's.
                let (next, lines) = p.cmd("NOOP").await?;
                Ok::<_, String>((end, next, lines.join(" | ")))
            }
            .await;
            match result {
                Ok((end, 250, noop)) if noop.contains("2.0.0") => {
                    let copies = self.stored(&id).await;
                    let separate = copies.iter().any(|t| {
                        t.contains(&format!("\nSubject: smuggled {id}")) && !t.contains("before")
                    });
                    if separate || (end == 250 && copies.len() != 1) {
                        failures.push(format!("{name}: {} stored copies", copies.len()));
                    }
                }
                Ok((end, next, noop)) => {
                    failures.push(format!("{name}: end -> {end}, then NOOP -> {next} {noop}"))
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
            let _ = p.cmd("RSET").await;
        }
        let seen = if failures.is_empty() {
            "5 variants stayed inside their message; one reply each".to_string()
        } else {
            failures.join("; ")
        };
        self.check("SMTP smuggling", RFC, failures.is_empty(), seen);
        let _ = p.cmd("QUIT").await;
    }

    /// STARTTLS with a command pipelined behind it in plaintext: the command must be dropped,
    /// not answered inside TLS (CVE-2011-0411), and STARTTLS no longer offered.
    async fn starttls_injection(&mut self) {
        const RFC: &str = "RFC 3207 4, 4.2";
        if !self.t.starttls {
            return self.record(
                "STARTTLS injection",
                RFC,
                Outcome::Skip,
                "no STARTTLS on this listener ([tls] not configured)",
            );
        }
        let p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("STARTTLS injection", RFC, e),
        };
        let result = async {
            let mut p = p;
            p.send(b"STARTTLS\r\nNOOP\r\n").await?;
            let (code, _) = p.reply().await?;
            if code != 220 {
                return Err(format!("STARTTLS -> {code}"));
            }
            let mut t = p.starttls(&self.t.hostname).await?;
            let (code, lines) = t.cmd("EHLO selftest.invalid").await?;
            Ok::<_, String>((code, lines))
        }
        .await;
        match result {
            Ok((250, lines)) => {
                let injected =
                    !lines[0].starts_with("250-") && !lines[0].contains(&self.t.hostname);
                let offered = lines.iter().any(|l| l.get(4..) == Some("STARTTLS"));
                self.check(
                    "STARTTLS injection",
                    RFC,
                    !injected && !offered,
                    format!(
                        "first reply inside TLS: {:?}; STARTTLS offered again: {offered}",
                        lines[0]
                    ),
                );
            }
            Ok((code, lines)) => self.check(
                "STARTTLS injection",
                RFC,
                false,
                format!("first reply inside TLS: {code} {}", lines.join(" | ")),
            ),
            // Closing the connection rather than answering is also safe.
            Err(e) if e.contains("closed") => {
                self.check("STARTTLS injection", RFC, true, format!("server {e}"))
            }
            Err(e) => self.broken("STARTTLS injection", RFC, e),
        }
    }

    async fn pop3_login(&self, addr: SocketAddr, secret: &str) -> Result<Peer, String> {
        let mut p = Peer::connect(addr).await?;
        let greet = p.line().await?;
        if !greet.starts_with("+OK") {
            return Err(format!("greeting {greet}"));
        }
        for line in [format!("USER {}", self.probe), format!("PASS {secret}")] {
            p.send(format!("{line}\r\n").as_bytes()).await?;
            let r = p.line().await?;
            if !r.starts_with("+OK") {
                return Err(format!("{} -> {r}", line.split(' ').next().unwrap_or("")));
            }
        }
        Ok(p)
    }

    async fn pop3_cmd(p: &mut Peer, line: &str) -> Result<String, String> {
        p.send(format!("{line}\r\n").as_bytes()).await?;
        let r = p.line().await?;
        if r.starts_with("+OK") {
            Ok(r)
        } else {
            Err(format!("{line} -> {r}"))
        }
    }

    async fn pop3(&mut self, secret: &str) {
        const LIST: &str = "RFC 1939 5 (LIST, RETR)";
        const UIDL: &str = "RFC 1939 7";
        const DELE: &str = "RFC 1939 6";
        let Some(addr) = self.t.pop3 else {
            for (n, r) in [
                ("POP3 LIST size = RETR octets", LIST),
                ("POP3 UIDL stable", UIDL),
                ("POP3 DELE without QUIT", DELE),
            ] {
                self.record(n, r, Outcome::Skip, "no [pop3] listener");
            }
            return;
        };
        // Session 1: sizes and UIDs.
        let first = async {
            let mut p = self.pop3_login(addr, secret).await?;
            Self::pop3_cmd(&mut p, "LIST").await?;
            let list = String::from_utf8_lossy(&p.multiline().await?).into_owned();
            let mut mismatches = Vec::new();
            let mut count = 0;
            for l in list.lines() {
                let mut f = l.split(' ');
                let (Some(n), Some(size)) = (f.next(), f.next()) else {
                    continue;
                };
                count += 1;
                Self::pop3_cmd(&mut p, &format!("RETR {n}")).await?;
                let got = p.multiline().await?.len();
                if size.parse::<usize>().ok() != Some(got) {
                    mismatches.push(format!("message {n}: LIST {size}, RETR {got}"));
                }
            }
            Self::pop3_cmd(&mut p, "UIDL").await?;
            let uidl = p.multiline().await?;
            Self::pop3_cmd(&mut p, "QUIT").await?;
            Ok::<_, String>((count, mismatches, uidl))
        }
        .await;
        let uidl1 = match first {
            Ok((count, mismatches, uidl)) => {
                let seen = if mismatches.is_empty() {
                    format!("{count} messages, every size equal")
                } else {
                    mismatches.join("; ")
                };
                self.check(
                    "POP3 LIST size = RETR octets",
                    LIST,
                    count > 0 && mismatches.is_empty(),
                    seen,
                );
                uidl
            }
            Err(e) => {
                self.broken("POP3 LIST size = RETR octets", LIST, e);
                return;
            }
        };
        // Session 2: the same UIDs (the messages moved to cur/ meanwhile); DELE, then drop the
        // connection without QUIT.
        let second = async {
            let mut p = self.pop3_login(addr, secret).await?;
            Self::pop3_cmd(&mut p, "UIDL").await?;
            let uidl = p.multiline().await?;
            let stat = Self::pop3_cmd(&mut p, "STAT").await?;
            Self::pop3_cmd(&mut p, "DELE 1").await?;
            drop(p);
            Ok::<_, String>((uidl, stat))
        }
        .await;
        let stat_before = match second {
            Ok((uidl2, stat)) => {
                self.check(
                    "POP3 UIDL stable",
                    UIDL,
                    uidl2 == uidl1,
                    format!(
                        "{} UIDs, {} across two sessions",
                        String::from_utf8_lossy(&uidl1).lines().count(),
                        if uidl2 == uidl1 {
                            "the same"
                        } else {
                            "different"
                        }
                    ),
                );
                stat
            }
            Err(e) => {
                self.broken("POP3 UIDL stable", UIDL, e);
                return;
            }
        };
        // Session 3: still all there (the lock of session 2 is released when its socket closes,
        // which may take a moment). Then empty the probe maildrop properly.
        let mut third = Err(String::new());
        for _ in 0..50 {
            third = async {
                let mut p = self.pop3_login(addr, secret).await?;
                let stat = Self::pop3_cmd(&mut p, "STAT").await?;
                let n: usize = stat
                    .split(' ')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                for i in 1..=n {
                    Self::pop3_cmd(&mut p, &format!("DELE {i}")).await?;
                }
                Self::pop3_cmd(&mut p, "QUIT").await?;
                Ok::<_, String>(stat)
            }
            .await;
            match &third {
                Err(e) if e.contains("IN-USE") => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => break,
            }
        }
        match third {
            Ok(stat) => self.check(
                "POP3 DELE without QUIT",
                DELE,
                stat == stat_before,
                format!("STAT before DELE: {stat_before:?}; after a close without QUIT: {stat:?}"),
            ),
            Err(e) => self.broken("POP3 DELE without QUIT", DELE, e),
        }
    }
}

/// Random hex from the kernel.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        buf = t.to_le_bytes().repeat(bytes / 16 + 1);
        buf.truncate(bytes);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs every check against `t`; one run at a time per process.
pub async fn run(t: Target) -> Report {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE.lock().await;
    let probe = format!("{PROBE_LOCAL}@{}", t.domain);
    let secret = random_hex(24);
    let started = Instant::now();
    crate::auth::accounts::set_probe(&probe, &secret, started + Duration::from_secs(300));
    let mut r = Run {
        t: &t,
        probe,
        token: format!("st{}", random_hex(6)),
        checks: Vec::new(),
    };
    r.greeting_and_ehlo().await;
    r.pipelining_relay_dots().await;
    r.postmaster().await;
    r.size().await;
    r.long_lines().await;
    r.smuggling().await;
    r.starttls_injection().await;
    r.pop3(&secret).await;
    crate::auth::accounts::clear_probe();
    let checks = std::mem::take(&mut r.checks);
    let dir = t.root.join(&t.domain).join(PROBE_LOCAL);
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    Report {
        smtp: t.smtp.to_string(),
        pop3: t.pop3.map(|a| a.to_string()),
        passed: checks.iter().all(|c| c.outcome != Outcome::Fail),
        checks,
    }
}
