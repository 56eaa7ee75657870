//! A raw POP3 client for transcript tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use super::WAIT;

/// A raw POP3 client for transcript tests.
pub struct Pop3 {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Pop3 {
    pub fn connect(addr: SocketAddr) -> Pop3 {
        let stream = TcpStream::connect(addr).expect("connect pop3");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut p = Pop3 {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        };
        let greeting = p.line();
        assert!(greeting.starts_with("+OK"), "{greeting}");
        p
    }

    /// One line without CRLF ("" at EOF).
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).expect("read");
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }

    /// Sends a command, returns the status line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// Reads a multi-line body after a +OK status, raw bytes up to and including ".\r\n".
    pub fn multiline_raw(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = self.reader.read_until(b'\n', &mut buf).expect("read");
            assert!(n > 0, "EOF inside a multi-line response");
            all.extend_from_slice(&buf);
            if buf == b".\r\n" {
                return all;
            }
        }
    }

    /// Lines of a multi-line body, without the final ".".
    pub fn multiline(&mut self) -> Vec<String> {
        let raw = self.multiline_raw();
        let text = String::from_utf8_lossy(&raw[..raw.len() - 3]).into_owned();
        text.split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn login(&mut self, user: &str, password: &str) -> String {
        let r = self.cmd(&format!("USER {user}"));
        assert!(r.starts_with("+OK"), "{r}");
        self.cmd(&format!("PASS {password}"))
    }

    /// RETR n: the message as sent (CRLF, byte-stuffing removed, without the final ".").
    pub fn retr(&mut self, n: usize) -> (String, Vec<u8>) {
        let status = self.cmd(&format!("RETR {n}"));
        assert!(status.starts_with("+OK"), "{status}");
        let raw = self.multiline_raw();
        let body = &raw[..raw.len() - 3];
        let mut out = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        (status, out)
    }
}
