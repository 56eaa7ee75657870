//! A small async SMTP client: greeting, EHLO (HELO fallback on 500/502), MAIL, RCPT, DATA with
//! dot-stuffing and CRLF line ends, QUIT. Uses PIPELINING when the server offers it, refuses
//! locally a message above the advertised SIZE, and can show every line as it goes (`C:`/`S:`).
//! STARTTLS ([`Client::start_tls`]), implicit TLS ([`Client::connect_tls`]) and AUTH PLAIN or
//! LOGIN ([`Client::authenticate`], the secret kept out of the transcript).

use std::net::SocketAddr;
use std::time::Duration;

pub use super::conn::ClientError;
use super::conn::Conn;
use crate::dsn::{Notify, Ret};
/// A server's reply, as parsed by [`crate::proto::smtp::response`].
pub use crate::proto::smtp::response::Response as Reply;

/// Called with each transcript line (`C: ...` or `S: ...`) as it happens.
pub type LineHook = Box<dyn FnMut(&str) + Send>;

pub struct Client {
    conn: Conn,
    /// `C: ...` / `S: ...` lines, when recording.
    pub transcript: Option<Vec<String>>,
    /// Shown live, when set.
    pub hook: Option<LineHook>,
    /// Keywords from the EHLO reply (upper-cased first word of each line).
    pub extensions: Vec<String>,
    /// The SIZE the server advertised (0 or absent: no limit).
    pub max_size: Option<u64>,
    /// The SASL mechanisms of the EHLO reply's AUTH line.
    pub auth_mechanisms: Vec<String>,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(Client, Reply), ClientError> {
        Self::connect_with(addr, timeout, None).await
    }

    /// Connects with a live transcript hook, and reads the greeting.
    pub async fn connect_with(
        addr: SocketAddr,
        timeout: Duration,
        hook: Option<LineHook>,
    ) -> Result<(Client, Reply), ClientError> {
        let mut c = Self::open(addr, timeout).await?;
        c.hook = hook;
        let greeting = c.reply().await?;
        Ok((c, greeting))
    }

    async fn open(addr: SocketAddr, timeout: Duration) -> Result<Client, ClientError> {
        let c = Client {
            conn: Conn::connect(addr, timeout).await?,
            transcript: None,
            hook: None,
            extensions: Vec::new(),
            max_size: None,
            auth_mechanisms: Vec::new(),
        };
        Ok(c)
    }

    pub fn record(&mut self) {
        self.transcript = Some(Vec::new());
    }

    fn note(&mut self, prefix: &str, line: &str) {
        if self.transcript.is_none() && self.hook.is_none() {
            return;
        }
        let text = format!("{prefix}{line}");
        if let Some(h) = self.hook.as_mut() {
            h(&text);
        }
        if let Some(t) = self.transcript.as_mut() {
            t.push(text);
        }
    }

    fn noting(&self) -> bool {
        self.transcript.is_some() || self.hook.is_some()
    }

    /// Reads one reply (all its lines).
    pub async fn reply(&mut self) -> Result<Reply, ClientError> {
        let noting = self.noting();
        let mut seen = Vec::new();
        let r = self
            .conn
            .reply_with(|line| {
                if noting {
                    seen.push(line.to_string());
                }
            })
            .await;
        for line in seen {
            self.note("S: ", &line);
        }
        r
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.conn.write(bytes).await
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.note("C: ", line);
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// EHLO, falling back to HELO when the server does not know EHLO (500/502).
    pub async fn hello(&mut self, name: &str) -> Result<Reply, ClientError> {
        let r = self.command(&format!("EHLO {name}")).await?;
        if r.code == 500 || r.code == 502 {
            self.extensions.clear();
            return self.command(&format!("HELO {name}")).await;
        }
        if r.is_positive() {
            self.extensions = r.keywords();
            self.max_size = r.size_limit();
            self.auth_mechanisms = r.auth_mechanisms();
        }
        Ok(r)
    }

    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// TLS handshake on the connection (after a 220 to STARTTLS, or right away for implicit TLS).
    /// What the server says is forgotten: EHLO must be sent again.
    pub async fn start_tls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: rustls_pki_types::ServerName<'static>,
    ) -> Result<(), ClientError> {
        self.conn.start_tls(config, server_name).await?;
        self.extensions.clear();
        self.max_size = None;
        self.auth_mechanisms.clear();
        self.note("C: ", "[TLS handshake done]");
        Ok(())
    }

    /// Connects with implicit TLS (port 465 role) and reads the greeting.
    pub async fn connect_tls(
        addr: SocketAddr,
        timeout: Duration,
        hook: Option<LineHook>,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: rustls_pki_types::ServerName<'static>,
    ) -> Result<(Client, Reply), ClientError> {
        let mut c = Self::open(addr, timeout).await?;
        c.hook = hook;
        c.start_tls(config, server_name).await?;
        let greeting = c.reply().await?;
        Ok((c, greeting))
    }

    /// Logs in with the mechanism the server offers: PLAIN when offered (or when the EHLO reply
    /// names none: some servers only list it after STARTTLS, and then the server's reply
    /// says), else LOGIN; an error when it offers only others. The reply that ends the
    /// exchange (235 when logged in).
    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<Reply, ClientError> {
        let offers = |m: &str| self.auth_mechanisms.iter().any(|o| o == m);
        if self.auth_mechanisms.is_empty() || offers("PLAIN") {
            self.auth_plain(user, password).await
        } else if offers("LOGIN") {
            self.auth_login(user, password).await
        } else {
            Err(ClientError::Malformed(format!(
                "the server offers AUTH {} but neither PLAIN nor LOGIN",
                self.auth_mechanisms.join(" ")
            )))
        }
    }

    /// AUTH LOGIN (draft-murchison-sasl-login): the user name and the password, each base64
    /// after a 334; the secret is not shown in the transcript.
    pub async fn auth_login(&mut self, user: &str, password: &str) -> Result<Reply, ClientError> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let r = self.command("AUTH LOGIN").await?;
        if r.code != 334 {
            return Ok(r);
        }
        self.note("C: ", "[user name hidden]");
        self.write(format!("{}\r\n", b64(user)).as_bytes()).await?;
        let r = self.reply().await?;
        if r.code != 334 {
            return Ok(r);
        }
        self.note("C: ", "[password hidden]");
        self.write(format!("{}\r\n", b64(password)).as_bytes())
            .await?;
        self.reply().await
    }

    /// AUTH PLAIN with an initial response (RFC 4954); the secret is not shown in the transcript.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> Result<Reply, ClientError> {
        let ir = crate::proto::sasl::encode_plain(user, password);
        // `write` records nothing: only this redacted line reaches the transcript.
        self.note("C: ", "AUTH PLAIN [credentials hidden]");
        self.write(format!("AUTH PLAIN {ir}\r\n").as_bytes())
            .await?;
        self.reply().await
    }

    pub fn has(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }

    /// Sends several command lines in one write (PIPELINING) and reads their replies in order.
    pub async fn pipeline(&mut self, lines: &[String]) -> Result<Vec<Reply>, ClientError> {
        let mut out = String::new();
        for l in lines {
            self.note("C: ", l);
            out.push_str(l);
            out.push_str("\r\n");
        }
        self.write(out.as_bytes()).await?;
        let mut replies = Vec::with_capacity(lines.len());
        for _ in lines {
            replies.push(self.reply().await?);
        }
        Ok(replies)
    }

    /// DATA, the message (line ends made CRLF, dot-stuffed), and the final dot.
    pub async fn data(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let r = self.command("DATA").await?;
        if r.code != 354 {
            return Ok(r);
        }
        self.send_body(message).await
    }

    /// The message after a 354 (line ends made CRLF, dot-stuffed), the final dot, and its reply.
    pub async fn send_body(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let mut out = Vec::with_capacity(message.len() + 64);
        for line in message.split_inclusive(|&b| b == b'\n') {
            let content = line
                .strip_suffix(b"\n")
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .unwrap_or(line);
            if content.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        if self.noting() {
            if out.len() <= 64 * 1024 {
                let text = String::from_utf8_lossy(&out[..out.len() - 3]).into_owned();
                for line in text.split("\r\n") {
                    self.note("C: ", line);
                }
            } else {
                let n = message.split_inclusive(|&b| b == b'\n').count();
                self.note("C: ", &format!("[{} octets in {n} lines]", message.len()));
            }
            self.note("C: ", ".");
        }
        self.write(&out).await?;
        self.reply().await
    }
}

/// What happened to one message.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub accepted: Vec<String>,
    pub rejected: Vec<(String, Reply)>,
    /// The reply that decided: to the final dot, or the refusal that stopped the transaction.
    pub reply: Reply,
    pub delivered: bool,
}

impl Outcome {
    /// A refusal before any recipient (greeting, EHLO, MAIL...): the same for all.
    pub fn refused(reply: Reply) -> Outcome {
        Outcome {
            accepted: Vec::new(),
            rejected: Vec::new(),
            reply,
            delivered: false,
        }
    }
}

/// One whole transaction on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    ehlo: &str,
    from: &str,
    to: &[String],
    message: &[u8],
    timeout: Duration,
) -> Result<Outcome, ClientError> {
    let mail = Mail {
        from,
        to,
        message,
        ..Mail::default()
    };
    send_mail(addr, ehlo, &mail, timeout).await
}

/// [`send`] of a [`Mail`] (with its DSN requests).
pub async fn send_mail(
    addr: SocketAddr,
    ehlo: &str,
    mail: &Mail<'_>,
    timeout: Duration,
) -> Result<Outcome, ClientError> {
    let (mut c, greeting) = Client::connect(addr, timeout).await?;
    if greeting.code != 220 {
        return Ok(Outcome::refused(greeting));
    }
    let r = c.hello(ehlo).await?;
    if !r.is_positive() {
        return Ok(Outcome::refused(r));
    }
    let outcome = transaction_mail(&mut c, mail).await?;
    let _ = c.command("QUIT").await;
    Ok(outcome)
}

/// MAIL, RCPT..., DATA and the message on an open, greeted connection (after EHLO/HELO);
/// pipelined when the server offers PIPELINING. Nothing is sent when the message is above the
/// advertised SIZE.
pub async fn transaction(
    c: &mut Client,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<Outcome, ClientError> {
    let mail = Mail {
        from,
        to,
        message,
        ..Mail::default()
    };
    transaction_mail(c, &mail).await
}

/// One message to send: its envelope, what it asks of delivery reports, and its text.
#[derive(Default)]
pub struct Mail<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    pub message: &'a [u8],
    /// RFC 3461 `RET=` and `ENVID=`, sent when the server offers DSN.
    pub ret: Option<Ret>,
    pub envid: Option<&'a str>,
    /// Per recipient, in the order of `to` (or empty): `NOTIFY=` and `ORCPT=`.
    pub rcpt_dsn: &'a [(Option<Notify>, Option<String>)],
    /// The submitter asked for SMTPUTF8: a message that needs it (non-ASCII addresses or header
    /// fields) is not sent to a server without it (RFC 6531 §3.2).
    pub smtputf8: bool,
}

/// The 5.6.7 failure of a message that needs SMTPUTF8 for a server that does not offer it.
pub const NEEDS_SMTPUTF8: u16 = 550;

impl Mail<'_> {
    /// Non-ASCII in an address, or (asked for SMTPUTF8) in the header section.
    fn needs_smtputf8(&self) -> bool {
        if !self.from.is_ascii() || self.to.iter().any(|t| !t.is_ascii()) {
            return true;
        }
        let end = crate::mailbox::headers::header_end(self.message).unwrap_or(self.message.len());
        self.smtputf8 && !self.message[..end].is_ascii()
    }
}

/// [`transaction`] with DSN requests and the SMTPUTF8 rule.
pub async fn transaction_mail(c: &mut Client, m: &Mail<'_>) -> Result<Outcome, ClientError> {
    let (from, to, message) = (m.from, m.to, m.message);
    // RFC 1870: the size with CRLF line ends (as sent), without the dot-stuffing.
    let size = crate::wire::wire_size(message);
    if let Some(max) = c.max_size
        && size > max
    {
        return Err(ClientError::TooBig {
            size: size as usize,
            max,
        });
    }
    let utf8 = m.needs_smtputf8();
    if utf8 && !c.has("SMTPUTF8") {
        return Ok(Outcome::refused(Reply {
            code: NEEDS_SMTPUTF8,
            lines: vec![
                "5.6.7 the message needs SMTPUTF8 (non-ASCII addresses or header fields), which the server does not offer".into(),
            ],
        }));
    }
    let dsn = c.has("DSN");
    let mut mail = format!("MAIL FROM:<{from}>");
    if c.max_size.is_some() || c.has("SIZE") {
        mail.push_str(&format!(" SIZE={size}"));
    }
    if c.has("8BITMIME") && !message.is_ascii() {
        mail.push_str(" BODY=8BITMIME");
    }
    if utf8 {
        mail.push_str(" SMTPUTF8");
    }
    if dsn {
        if let Some(ret) = m.ret {
            mail.push_str(&format!(" RET={}", ret.keyword()));
        }
        if let Some(envid) = m.envid {
            mail.push_str(&format!(" ENVID={envid}"));
        }
    }
    let rcpt_line = |i: usize, t: &str| {
        let mut line = format!("RCPT TO:<{t}>");
        if let (true, Some((notify, orcpt))) = (dsn, m.rcpt_dsn.get(i)) {
            if let Some(n) = notify {
                line.push_str(&format!(" NOTIFY={}", n.keyword()));
            }
            if let Some(o) = orcpt {
                line.push_str(&format!(" ORCPT={o}"));
            }
        }
        line
    };
    let stop = |reply: Reply, accepted, rejected| Outcome {
        accepted,
        rejected,
        reply,
        delivered: false,
    };
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    if c.has("PIPELINING") {
        let mut lines = vec![mail];
        lines.extend(to.iter().enumerate().map(|(i, t)| rcpt_line(i, t)));
        lines.push("DATA".into());
        let replies = c.pipeline(&lines).await?;
        let mail_reply = &replies[0];
        for (rcpt, r) in to.iter().zip(&replies[1..]) {
            if r.is_positive() {
                accepted.push(rcpt.clone());
            } else {
                rejected.push((rcpt.clone(), r.clone()));
            }
        }
        let data_reply = replies[replies.len() - 1].clone();
        if data_reply.code != 354 {
            let decisive = if !mail_reply.is_positive() {
                mail_reply.clone()
            } else if accepted.is_empty() {
                rejected
                    .last()
                    .map(|(_, r)| r.clone())
                    .unwrap_or(data_reply)
            } else {
                data_reply
            };
            return Ok(stop(decisive, accepted, rejected));
        }
        if accepted.is_empty() {
            // A server that said 354 with no recipient: end the empty transaction.
            let r = c.send_body(b"").await?;
            return Ok(stop(r, accepted, rejected));
        }
        let r = c.send_body(message).await?;
        let delivered = r.code == 250;
        return Ok(Outcome {
            accepted,
            rejected,
            reply: r,
            delivered,
        });
    }
    let r = c.command(&mail).await?;
    if !r.is_positive() {
        return Ok(stop(r, accepted, rejected));
    }
    for (i, rcpt) in to.iter().enumerate() {
        let r = c.command(&rcpt_line(i, rcpt)).await?;
        if r.is_positive() {
            accepted.push(rcpt.clone());
        } else {
            rejected.push((rcpt.clone(), r));
        }
    }
    if accepted.is_empty() {
        let last = rejected.last().map(|(_, r)| r.clone()).unwrap_or(Reply {
            code: 554,
            lines: vec!["no recipients".into()],
        });
        let _ = c.command("RSET").await;
        return Ok(stop(last, accepted, rejected));
    }
    let r = c.data(message).await?;
    let delivered = r.code == 250;
    Ok(Outcome {
        accepted,
        rejected,
        reply: r,
        delivered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A scripted server on loopback: sends `ehlo` after the greeting, then for each
    /// (expected line, reply) pair reads a line, checks it and answers; the client after EHLO.
    async fn scripted(ehlo: &'static str, steps: Vec<(&'static str, &'static str)>) -> Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 peer.test ESMTP\r\n").await.unwrap();
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert!(line.starts_with("EHLO "), "{line:?}");
            w.write_all(ehlo.as_bytes()).await.unwrap();
            for (want, reply) in steps {
                line.clear();
                r.read_line(&mut line).await.unwrap();
                assert_eq!(line, want);
                w.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let (mut c, greeting) = Client::connect(addr, Duration::from_secs(5)).await.unwrap();
        assert_eq!(greeting.code, 220);
        c.transcript = Some(Vec::new());
        assert_eq!(c.hello("me.test").await.unwrap().code, 250);
        c
    }

    #[tokio::test]
    async fn login_when_the_server_offers_only_login() {
        let mut c = scripted(
            "250-peer.test\r\n250 AUTH LOGIN\r\n",
            vec![
                ("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"),
                ("dUBleGFtcGxlLnRlc3Q=\r\n", "334 UGFzc3dvcmQ6\r\n"),
                ("czNjcjN0\r\n", "235 2.7.0 ok\r\n"),
            ],
        )
        .await;
        let r = c.authenticate("u@example.test", "s3cr3t").await.unwrap();
        assert_eq!(r.code, 235);
        let t = c.transcript.unwrap().join("\n");
        assert!(!t.contains("czNjcjN0") && !t.contains("dUBl"), "{t}");
    }

    #[tokio::test]
    async fn plain_when_offered_and_a_refusal_is_the_reply() {
        let mut c = scripted(
            "250-peer.test\r\n250 AUTH LOGIN PLAIN\r\n",
            vec![(
                "AUTH PLAIN AHVAZXhhbXBsZS50ZXN0AHMzY3IzdA==\r\n",
                "535 5.7.8 no\r\n",
            )],
        )
        .await;
        let r = c.authenticate("u@example.test", "s3cr3t").await.unwrap();
        assert_eq!(r.code, 535);
    }

    #[tokio::test]
    async fn login_stops_at_a_refusal_of_the_user_name() {
        let mut c = scripted(
            "250-peer.test\r\n250 AUTH=LOGIN\r\n",
            vec![
                ("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"),
                ("dUBleGFtcGxlLnRlc3Q=\r\n", "535 5.7.8 no\r\n"),
            ],
        )
        .await;
        let r = c.authenticate("u@example.test", "s3cr3t").await.unwrap();
        assert_eq!(r.code, 535);
    }

    #[tokio::test]
    async fn no_mechanism_we_speak_is_an_error_before_sending_secrets() {
        let mut c = scripted("250-peer.test\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n", vec![]).await;
        let e = c
            .authenticate("u@example.test", "s3cr3t")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("CRAM-MD5 XOAUTH2"), "{e}");
    }
}
