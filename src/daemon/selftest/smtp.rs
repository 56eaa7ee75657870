//! The SMTP checks: greeting and EHLO keywords, pipelining order, relay refusal, dot
//! transparency, postmaster, SIZE, long lines, the smuggling look-alikes, STARTTLS injection.

use super::peer::Peer;
use super::{ACTUAL_SIZE_CAP, Run};
use crate::control::proto::Outcome;

impl Run<'_> {
    pub(super) async fn greeting_and_ehlo(&mut self) {
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
    /// the foreign recipient is refused, and the message then arrives with its dots intact. When
    /// the selftest's own address may relay (`[relay] networks`), the refused recipient is a
    /// local part no Maildir may have instead, and the relay refusal is skipped: it holds for the
    /// other peers only.
    pub(super) async fn pipelining_relay_dots(&mut self) {
        const PIPE: &str = "RFC 2920 3.1";
        const RELAY: &str = "RFC 5321 3.6, 7.1";
        const DOTS: &str = "RFC 5321 4.5.2";
        let mut p = match self.session().await {
            Ok(p) => p,
            Err(e) => return self.broken("pipelining order", PIPE, e),
        };
        let refused = if self.t.relay_peer {
            format!("relay-test/unsafe@{}", self.t.domain)
        } else {
            "relay-test@example.invalid".to_string()
        };
        let batch = format!(
            "MAIL FROM:<selftest@{}>\r\nRCPT TO:<{}>\r\nRCPT TO:<{refused}>\r\nDATA\r\n",
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
        if self.t.relay_peer {
            let why = format!(
                "{} is in [relay] networks: it may relay (others get 550 5.7.1)",
                self.t.smtp.ip()
            );
            self.record("relay refusal", RELAY, Outcome::Skip, why);
        } else {
            self.check(
                "relay refusal",
                RELAY,
                codes.get(2).is_some_and(|c| (500..600).contains(c)),
                format!("RCPT TO:<{refused}> -> {relay_line}"),
            );
        }
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

    pub(super) async fn postmaster(&mut self) {
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

    pub(super) async fn size(&mut self) {
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
        let skip = if self.t.quick {
            Some(format!("--quick: {} octets not sent", max + 1))
        } else if max > ACTUAL_SIZE_CAP {
            Some(format!(
                "limit {max} octets is over {ACTUAL_SIZE_CAP}: not sent"
            ))
        } else {
            None
        };
        if let Some(why) = skip {
            self.record("SIZE actual", ACTUAL, Outcome::Skip, why);
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

    pub(super) async fn long_lines(&mut self) {
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
    pub(super) async fn smuggling(&mut self) {
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
    pub(super) async fn starttls_injection(&mut self) {
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
}
