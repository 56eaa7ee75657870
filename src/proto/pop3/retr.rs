//! Turns a stored message (LF line ends, as in Maildir) into what RETR and TOP send: CRLF line
//! ends, byte-stuffed lines starting with ".", the terminating ".". Fed in chunks, so a large
//! message is never held whole. A CRLF already in the file counts as one line end.
//!
//! [`wire_size`] gives the octets the same conversion produces, before byte-stuffing: the size
//! that STAT and LIST report (RFC 1939 §11).

#[derive(Clone, Debug)]
pub struct Encoder {
    at_line_start: bool,
    /// A CR was the last byte seen (held back: it may start a CRLF).
    pending_cr: bool,
    /// Bytes on the current line other than CR/LF.
    line_len: usize,
    /// For TOP: `None` while in the header; then the body lines still to send.
    top: Option<TopState>,
    done: bool,
}

#[derive(Clone, Copy, Debug)]
struct TopState {
    in_header: bool,
    body_lines_left: u64,
}

impl Encoder {
    /// RETR: the whole message.
    pub fn retr() -> Self {
        Encoder {
            at_line_start: true,
            pending_cr: false,
            line_len: 0,
            top: None,
            done: false,
        }
    }

    /// TOP: the header, the blank line, then `lines` lines of the body.
    pub fn top(lines: u64) -> Self {
        Encoder {
            top: Some(TopState {
                in_header: true,
                body_lines_left: lines,
            }),
            ..Self::retr()
        }
    }

    /// TOP has sent all it should: the caller may stop reading the file.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        let was_empty = self.line_len == 0;
        self.at_line_start = true;
        self.line_len = 0;
        if let Some(t) = self.top.as_mut() {
            if t.in_header {
                if was_empty {
                    t.in_header = false;
                    if t.body_lines_left == 0 {
                        self.done = true;
                    }
                }
            } else {
                t.body_lines_left = t.body_lines_left.saturating_sub(1);
                if t.body_lines_left == 0 {
                    self.done = true;
                }
            }
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.at_line_start && b == b'.' {
            out.push(b'.');
        }
        self.at_line_start = false;
        self.line_len += 1;
        out.push(b);
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.done {
                return;
            }
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.end_line(out);
                    continue;
                }
                self.byte(b'\r', out);
                if self.done {
                    return;
                }
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.end_line(out),
                _ => self.byte(b, out),
            }
        }
    }

    /// Ends the response: completes a last line without line end, then ".CRLF".
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            if self.pending_cr {
                self.pending_cr = false;
                self.byte(b'\r', out);
            }
            if !self.at_line_start {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b".\r\n");
        self.done = true;
    }
}

pub use crate::wire::{WireSize, wire_size};

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut e: Encoder, input: &[u8], step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            e.feed(chunk, &mut out);
        }
        e.finish(&mut out);
        out
    }

    #[test]
    fn retr_converts_and_stuffs() {
        let table: &[(&[u8], &[u8])] = &[
            (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
            (b".x\n..\n.\n", b"..x\r\n...\r\n..\r\n.\r\n"),
            (b"no newline", b"no newline\r\n.\r\n"),
            (b"crlf\r\nkept\r\n", b"crlf\r\nkept\r\n.\r\n"),
            (b"bare\rcr\n", b"bare\rcr\r\n.\r\n"),
            (b"", b".\r\n"),
            (b"\xff\x00\n", b"\xff\x00\r\n.\r\n"),
        ];
        for (input, want) in table {
            for step in [1, 2, 3, 100] {
                let got = run(Encoder::retr(), input, step);
                assert_eq!(
                    got,
                    *want,
                    "{:?} step {step}",
                    String::from_utf8_lossy(input)
                );
                // The announced size is the output less the stuffing and the final ".\r\n".
                let stuffing = input
                    .split(|&b| b == b'\n')
                    .filter(|l| l.starts_with(b"."))
                    .count();
                assert_eq!(
                    wire_size(input) as usize,
                    got.len() - 3 - stuffing,
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn top_sends_header_and_n_lines() {
        let msg = b"Subject: x\nFrom: y\n\nline1\n.line2\nline3\n";
        let cases: &[(u64, &[u8])] = &[
            (0, b"Subject: x\r\nFrom: y\r\n\r\n.\r\n"),
            (1, b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n.\r\n"),
            (2, b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\n.\r\n"),
            (
                10,
                b"Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\nline3\r\n.\r\n",
            ),
        ];
        for (n, want) in cases {
            for step in [1, 4, 100] {
                assert_eq!(
                    run(Encoder::top(*n), msg, step),
                    *want,
                    "TOP {n} step {step}"
                );
            }
        }
        // No blank line at all: the whole message is header.
        assert_eq!(run(Encoder::top(0), b"A: b\n", 1), b"A: b\r\n.\r\n");
        // CRLF files too.
        assert_eq!(
            run(Encoder::top(0), b"A: b\r\n\r\nbody\r\n", 1),
            b"A: b\r\n\r\n.\r\n"
        );
    }
}
