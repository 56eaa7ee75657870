//! A tiny line-oriented SMTP client for transcript-style tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::WAIT;

/// One reply: code and lines (text after the code and separator), parsed by the library's
/// reply parser, the one every client of ours uses.
pub use smtpd::proto::smtp::response::Response as Reply;
use smtpd::proto::smtp::response::ResponseParser;

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    /// Reads one (possibly multi-line) reply; panics on EOF.
    pub fn reply(&mut self) -> Reply {
        self.try_reply()
            .expect("connection closed while waiting for a reply")
    }

    /// The next reply; `None` at EOF. A line that is not a reply line fails the test.
    pub fn try_reply(&mut self) -> Option<Reply> {
        let mut parser = ResponseParser::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).ok()?;
            if n == 0 {
                return None;
            }
            match parser.line(&String::from_utf8_lossy(&line)) {
                Ok(Some(reply)) => return Some(reply),
                Ok(None) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command line (CRLF added) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Asserts the next reply's code, returning it.
    pub fn expect(&mut self, code: u16) -> Reply {
        let r = self.reply();
        assert_eq!(r.code, code, "unexpected reply {r:?}");
        r
    }

    /// True when the server has closed the connection (EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    /// A whole transaction; returns the reply to the final dot.
    pub fn send_mail(&mut self, from: &str, to: &[&str], data: &[u8]) -> Reply {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")).code, 250);
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            assert_eq!(r.code, 250, "RCPT {t}: {r:?}");
        }
        assert_eq!(self.cmd("DATA").code, 354);
        self.send(data);
        self.send(b".\r\n");
        self.reply()
    }
}
