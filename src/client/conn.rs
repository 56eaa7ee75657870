//! The transport under every client of ours: a TCP connection (plain, or TLS after STARTTLS or
//! from the start) with a timeout on each step, read a line at a time, replies parsed by
//! [`crate::proto::smtp::response`]. The SMTP client ([`super::smtp::Client`]) and the selftest
//! (which also speaks POP3 and sends deliberately odd bytes) both sit on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::net::tls::Stream;
use crate::proto::smtp::response::{Response, ResponseParser};

/// Longest reply line accepted (RFC 5321 says 512; be generous).
pub const MAX_REPLY_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("connection to the server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("no reply from the server within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error("malformed reply from the server: {0:?}")]
    Malformed(String),
    #[error("the message is {size} octets, above the server's advertised SIZE limit of {max}")]
    TooBig { size: usize, max: u64 },
}

pub struct Conn {
    io: BufReader<Stream>,
    timeout: Duration,
}

impl Conn {
    /// Connects (no greeting read).
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ClientError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|error| ClientError::Connect { addr, error })?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            io: BufReader::new(Stream::Plain(stream)),
            timeout,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.io.get_ref().is_tls()
    }

    /// Octets received and not read yet.
    pub fn buffered(&self) -> usize {
        self.io.buffer().len()
    }

    /// Writes `bytes` whole.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        tokio::time::timeout(self.timeout, self.io.get_mut().write_all(bytes))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))??;
        Ok(())
    }

    /// One line without its line end (at most [`MAX_REPLY_LINE`] octets).
    pub async fn line(&mut self) -> Result<String, ClientError> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(
            self.timeout,
            (&mut self.io)
                .take(MAX_REPLY_LINE as u64)
                .read_until(b'\n', &mut buf),
        )
        .await
        .map_err(|_| ClientError::Timeout(self.timeout))??;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        Ok(String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string())
    }

    /// One SMTP reply (all its lines); `seen` is shown each line as it arrives.
    pub async fn reply_with(
        &mut self,
        mut seen: impl FnMut(&str),
    ) -> Result<Response, ClientError> {
        let mut parser = ResponseParser::new();
        loop {
            let line = self.line().await?;
            seen(&line);
            match parser.line(&line) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(_) => return Err(ClientError::Malformed(line)),
            }
        }
    }

    pub async fn reply(&mut self) -> Result<Response, ClientError> {
        self.reply_with(|_| {}).await
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Response, ClientError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// The TLS handshake (after a 220 to STARTTLS, or at once for implicit TLS). Anything the
    /// server sent in plaintext and we have not read is dropped with the plain stream.
    pub async fn start_tls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: rustls_pki_types::ServerName<'static>,
    ) -> Result<(), ClientError> {
        let io = std::mem::replace(&mut self.io, BufReader::new(Stream::Gone));
        let plain = io.into_inner();
        let tls = tokio::time::timeout(self.timeout, plain.connect_tls(config, server_name))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))??;
        self.io = BufReader::new(tls);
        Ok(())
    }
}
