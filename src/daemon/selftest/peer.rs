//! The selftest's side of a connection: our client transport ([`crate::client::conn`]) with a
//! 10 s step limit, errors as the text a check reports, and replies as the lines the server sent.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::conn::Conn;

/// How long one step (connect, write, reply) may take.
const STEP: Duration = Duration::from_secs(10);

pub struct Peer(Conn);

impl Peer {
    pub async fn connect(addr: SocketAddr) -> Result<Peer, String> {
        Conn::connect(addr, STEP)
            .await
            .map(Peer)
            .map_err(|e| e.to_string())
    }

    /// Sends `bytes` as they are (the checks send deliberately odd ones).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0.write(bytes).await.map_err(|e| e.to_string())
    }

    /// One line without its CRLF.
    pub async fn line(&mut self) -> Result<String, String> {
        self.0.line().await.map_err(|e| e.to_string())
    }

    /// An SMTP reply: its code, and every line as sent (`250-...`, `250 ...`).
    pub async fn reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let r = self.0.reply().await.map_err(|e| e.to_string())?;
        Ok((r.code, r.to_string().lines().map(str::to_string).collect()))
    }

    pub async fn cmd(&mut self, line: &str) -> Result<(u16, Vec<String>), String> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// POP3 multi-line body (byte-stuffing removed, CRLF kept), after a +OK line.
    pub async fn multiline(&mut self) -> Result<Vec<u8>, String> {
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

    /// STARTTLS after its 220: nothing may have arrived in plaintext after the 220.
    pub async fn starttls(mut self, hostname: &str) -> Result<Peer, String> {
        let cfg = crate::net::tls::client_config(None, true)?;
        let name = rustls::pki_types::ServerName::try_from(hostname.to_string())
            .map_err(|e| e.to_string())?;
        let leftover = self.0.buffered();
        self.0
            .start_tls(cfg, name)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        if leftover > 0 {
            return Err(format!("{leftover} octets arrived in plaintext after 220"));
        }
        Ok(self)
    }
}
