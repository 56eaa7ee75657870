//! A small async SMTP client: greeting, EHLO (HELO fallback on 500/502), MAIL, RCPT, DATA with
//! dot-stuffing and CRLF line ends, QUIT; every line sent and received can be recorded.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Longest reply line accepted (RFC 5321 says 512; be generous).
const MAX_REPLY_LINE: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// `250 2.0.0 Ok` (the last line, with its code).
    pub fn last_line(&self) -> String {
        format!(
            "{} {}",
            self.code,
            self.lines.last().map(String::as_str).unwrap_or("")
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("connection to the server failed: {0}")]
    Io(std::io::Error),
    #[error("no reply from the server within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed reply from the server: {0:?}")]
    Malformed(String),
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    timeout: Duration,
    /// `C: ...` / `S: ...` lines, when recording.
    pub transcript: Option<Vec<String>>,
    /// Keywords from the EHLO reply (upper-cased first word of each line).
    pub extensions: Vec<String>,
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(Client, Reply), ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|error| ClientError::Connect { addr, error })?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        let mut c = Client {
            reader: BufReader::new(r),
            writer: w,
            timeout,
            transcript: None,
            extensions: Vec::new(),
        };
        let greeting = c.reply().await?;
        Ok((c, greeting))
    }

    pub fn record(&mut self) {
        self.transcript = Some(Vec::new());
    }

    fn note(&mut self, prefix: &str, line: &str) {
        if let Some(t) = self.transcript.as_mut() {
            t.push(format!("{prefix}{line}"));
        }
    }

    /// Reads one reply (all its lines).
    pub async fn reply(&mut self) -> Result<Reply, ClientError> {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = tokio::time::timeout(
                self.timeout,
                (&mut self.reader)
                    .take(MAX_REPLY_LINE as u64)
                    .read_until(b'\n', &mut buf),
            )
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))??;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            self.note("S: ", &line);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| ClientError::Malformed(line.clone()))?;
            let sep = line.as_bytes().get(3).copied();
            lines.push(line.get(4..).unwrap_or("").to_string());
            match sep {
                Some(b'-') => continue,
                None | Some(b' ') => return Ok(Reply { code, lines }),
                _ => return Err(ClientError::Malformed(line)),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        tokio::time::timeout(self.timeout, self.writer.write_all(bytes))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))??;
        Ok(())
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
            self.extensions = r
                .lines
                .iter()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .map(|k| k.to_ascii_uppercase())
                .collect();
        }
        Ok(r)
    }

    /// DATA, the message (line ends made CRLF, dot-stuffed), and the final dot.
    pub async fn data(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let r = self.command("DATA").await?;
        if r.code != 354 {
            return Ok(r);
        }
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
        if self.transcript.is_some() {
            let n = message.split_inclusive(|&b| b == b'\n').count();
            self.note("C: ", &format!("<{} octets in {n} lines>", message.len()));
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

/// One whole transaction on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    ehlo: &str,
    from: &str,
    to: &[String],
    message: &[u8],
    timeout: Duration,
) -> Result<Outcome, ClientError> {
    let (mut c, greeting) = Client::connect(addr, timeout).await?;
    if greeting.code != 220 {
        return Ok(Outcome {
            accepted: Vec::new(),
            rejected: Vec::new(),
            reply: greeting,
            delivered: false,
        });
    }
    let outcome = transaction(&mut c, ehlo, from, to, message).await?;
    let _ = c.command("QUIT").await;
    Ok(outcome)
}

async fn transaction(
    c: &mut Client,
    ehlo: &str,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<Outcome, ClientError> {
    let stop = |reply: Reply, accepted, rejected| Outcome {
        accepted,
        rejected,
        reply,
        delivered: false,
    };
    let r = c.hello(ehlo).await?;
    if !r.is_positive() {
        return Ok(stop(r, Vec::new(), Vec::new()));
    }
    let r = c.command(&format!("MAIL FROM:<{from}>")).await?;
    if !r.is_positive() {
        return Ok(stop(r, Vec::new(), Vec::new()));
    }
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for rcpt in to {
        let r = c.command(&format!("RCPT TO:<{rcpt}>")).await?;
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
