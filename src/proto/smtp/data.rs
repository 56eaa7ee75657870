//! The DATA reader: ends only on `CRLF . CRLF` (RFC 5321 §4.1.1.4), removes dot-stuffing
//! (§4.5.2), converts each CRLF to LF (the Unix Maildir convention), and notes what the session
//! must judge at the end: bare CR/LF, over-long lines, size.
//!
//! Bare line ends are normalised, as Postfix's `smtpd_forbid_bare_newline = normalize` does for
//! a bare LF and Exim (since 4.21) does for both: a bare LF and a bare CR each end a line,
//! stored as LF, so a stored message holds no CR at all and POP3 (and IMAP) serve it with CRLF
//! only. Neither can ever end DATA, and a line that follows a bare line end is never a
//! terminator, so the SMTP-smuggling sequences (`\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r`,
//! `\r.\r`) stay inside the body.

/// Where the reader is within the current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line; `crlf`: the previous line ended with a real CRLF (or this is the
    /// first line), so a lone "." here may end DATA.
    Start { crlf: bool },
    /// Inside a line.
    Mid,
    /// Saw a CR inside a line (or at its start); the next byte decides.
    Cr,
    /// Saw "." at the start of a line.
    Dot { crlf: bool },
    /// Saw "." CR at the start of a line.
    DotCr { crlf: bool },
}

/// Result of one [`DataReader::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataStatus {
    /// All input consumed; the message goes on.
    More,
    /// The terminating `CRLF . CRLF` was found; `consumed` bytes of the input belonged to DATA
    /// (terminator included). The rest is for the command reader.
    End { consumed: usize },
}

#[derive(Clone, Debug)]
pub struct DataReader {
    state: State,
    /// Octets of the current line so far, line end included.
    line_len: usize,
    max_line: usize,
    /// Message size in octets as sent on the wire after un-stuffing (CRLF counted as 2).
    pub size: u64,
    /// A bare CR or bare LF was seen.
    pub bare_line_end: bool,
    /// A line longer than `max_line` octets (line end included) was seen.
    pub long_line: bool,
    /// Test switch (a deliberately broken reader): stuffing dots are kept.
    keep_stuffing: bool,
}

impl DataReader {
    /// `max_line`: longest text line accepted, in octets including CRLF (RFC 5321: 1000).
    pub fn new(max_line: usize) -> Self {
        DataReader {
            state: State::Start { crlf: true },
            line_len: 0,
            max_line,
            size: 0,
            bare_line_end: false,
            long_line: false,
            keep_stuffing: false,
        }
    }

    /// A broken reader that keeps stuffing dots: only for proving that `smtpctl selftest` catches
    /// a server that gets dot transparency wrong.
    pub fn keep_dot_stuffing(mut self, keep: bool) -> Self {
        self.keep_stuffing = keep;
        self
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.size += bytes.len() as u64;
    }

    fn count(&mut self, n: usize) {
        self.line_len += n;
        if self.line_len > self.max_line {
            self.long_line = true;
        }
    }

    fn end_line(&mut self, out: &mut Vec<u8>, crlf: bool) {
        out.push(b'\n');
        self.size += if crlf { 2 } else { 1 };
        if !crlf {
            self.bare_line_end = true;
        }
        self.line_len = 0;
        self.state = State::Start { crlf };
    }

    /// Feeds bytes; appends the message content to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataStatus {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Mid => {
                    // Fast path: copy up to the next CR or LF.
                    let run = memchr::memchr2(b'\r', b'\n', &input[i..]).unwrap_or(input.len() - i);
                    if run > 0 {
                        self.count(run);
                        self.emit(out, &input[i..i + run]);
                        i += run;
                        continue;
                    }
                    self.count(1);
                    if b == b'\r' {
                        self.state = State::Cr;
                    } else {
                        self.end_line(out, false);
                    }
                }
                State::Start { crlf } => {
                    if !matches!(b, b'.' | b'\r' | b'\n') {
                        // An ordinary line: the fast path takes it from this octet on.
                        self.state = State::Mid;
                        continue;
                    }
                    self.count(1);
                    match b {
                        b'.' => self.state = State::Dot { crlf },
                        b'\r' => self.state = State::Cr,
                        _ => self.end_line(out, false),
                    }
                }
                State::Cr => {
                    if b == b'\n' {
                        self.count(1);
                        self.end_line(out, true);
                    } else {
                        // The CR was bare: it ended its line, and this octet starts the next.
                        self.end_line(out, false);
                        continue;
                    }
                }
                State::Dot { crlf } => {
                    self.count(1);
                    match b {
                        b'\r' => self.state = State::DotCr { crlf },
                        b'\n' => {
                            // "." then a bare LF: a line holding a dot, never the end.
                            self.emit(out, b".");
                            self.end_line(out, false);
                        }
                        _ => {
                            // Dot-stuffing: the leading dot goes.
                            if self.keep_stuffing {
                                self.emit(out, b".");
                            }
                            self.emit(out, &[b]);
                            self.state = State::Mid;
                        }
                    }
                }
                State::DotCr { crlf } => {
                    if b != b'\n' {
                        // "." then a bare CR: a line holding a dot, never the end; this octet
                        // starts the next line.
                        self.emit(out, b".");
                        self.end_line(out, false);
                        continue;
                    }
                    self.count(1);
                    if crlf {
                        self.state = State::Start { crlf: true };
                        self.line_len = 0;
                        return DataStatus::End { consumed: i + 1 };
                    }
                    // After a bare line end, ".\r\n" is a line holding a dot.
                    self.emit(out, b".");
                    self.end_line(out, true);
                }
            }
            i += 1;
        }
        DataStatus::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the reader over `input` fed in pieces of `step` bytes; returns (body, end offset).
    fn run(input: &[u8], step: usize) -> (Vec<u8>, Option<usize>, DataReader) {
        let mut r = DataReader::new(1000);
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let end = (pos + step).min(input.len());
            match r.feed(&input[pos..end], &mut out) {
                DataStatus::More => pos = end,
                DataStatus::End { consumed } => return (out, Some(pos + consumed), r),
            }
        }
        (out, None, r)
    }

    fn check(input: &[u8], body: &[u8], end: Option<usize>) {
        for step in [1, 2, 3, 7, input.len().max(1)] {
            let (got, got_end, _) = run(input, step);
            assert_eq!(
                (String::from_utf8_lossy(&got), got_end),
                (String::from_utf8_lossy(body), end),
                "input {:?} step {step}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn terminator_and_unstuffing() {
        let table: &[(&[u8], &[u8], Option<usize>)] = &[
            (b".\r\n", b"", Some(3)),
            (b"a\r\n.\r\n", b"a\n", Some(6)),
            (b"a\r\n.\r\nMAIL", b"a\n", Some(6)),
            (b"..x\r\n.\r\n", b".x\n", Some(8)),
            (b"a\r\n..\r\n.\r\n", b"a\n.\n", Some(10)),
            (b"a\r\n...\r\n.\r\n", b"a\n..\n", Some(11)),
            (b".hidden\r\n.\r\n", b"hidden\n", Some(12)),
            (b"\r\n.\r\n", b"\n", Some(5)),
            (b"a\r\n. \r\n.\r\n", b"a\n \n", Some(10)),
            (
                b"8bit \xe9\xff\x00\r\n.\r\n",
                b"8bit \xe9\xff\x00\n",
                Some(13),
            ),
            (b"a\r\n.", b"a\n", None),
            (b"a\r\n.\r", b"a\n", None),
        ];
        for (input, body, end) in table {
            check(input, body, *end);
        }
    }

    /// The SMTP-smuggling variants (CVE-2023-51764 class) never end DATA.
    #[test]
    fn smuggling_stays_in_body() {
        let smuggle = b"MAIL FROM:<evil@x.test>\r\n";
        for variant in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r\n",
            b"\r\n.\r",
            b"\r.\r",
            b"\r.\n",
            b"\n.\r",
            b"\r\n.\n",
        ] {
            let mut input = b"hello".to_vec();
            input.extend_from_slice(variant);
            input.extend_from_slice(smuggle);
            input.extend_from_slice(b"\r\n.\r\n");
            for step in [1, 2, 5, input.len()] {
                let (body, end, r) = run(&input, step);
                assert_eq!(end, Some(input.len()), "{variant:?} step {step}");
                let body = String::from_utf8_lossy(&body);
                assert!(
                    body.contains("MAIL FROM:<evil@x.test>"),
                    "{variant:?}: {body:?}"
                );
                assert!(r.bare_line_end, "{variant:?}");
            }
        }
    }

    /// A bare LF and a bare CR each end a line, stored as LF (so nothing stored holds a CR);
    /// a line after either is dot-unstuffed but never ends DATA.
    #[test]
    fn bare_line_ends_normalised() {
        let table: &[(&[u8], &[u8], usize)] = &[
            (b"a\nb\r\n.\r\n", b"a\nb\n", 8),
            (b"alpha\rbeta\r\n.\r\n", b"alpha\nbeta\n", 15),
            (b"a\r\r\n.\r\n", b"a\n\n", 7),
            (b"a\r\rb\r\n.\r\n", b"a\n\nb\n", 9),
            (b"\rb\r\n.\r\n", b"\nb\n", 7),
            (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\n", 10),
            (b"a\r.\rb\r\n.\r\n", b"a\n.\nb\n", 10),
            (b"a\n.\r\nb\r\n.\r\n", b"a\n.\nb\n", 11),
            (b"a\r.\r\nb\r\n.\r\n", b"a\n.\nb\n", 11),
            (b"a\r\n.\rb\r\n.\r\n", b"a\n.\nb\n", 11),
            (b"a\r\n.\r\r\n.\r\n", b"a\n.\n\n", 10),
            (b"a\n..b\r\n.\r\n", b"a\n.b\n", 10),
            (b"a\r..b\r\n.\r\n", b"a\n.b\n", 10),
        ];
        for (input, body, end) in table {
            check(input, body, (*end > 0).then_some(*end));
            let (_, _, r) = run(input, 1);
            assert!(r.bare_line_end, "{input:?}");
        }
        let (_, _, r) = run(b"a\r\nb\r\n.\r\n", 1);
        assert!(!r.bare_line_end);
    }

    /// The size counts each bare line end as the one octet it took on the wire.
    #[test]
    fn size_counts_a_bare_cr_as_one_octet() {
        let (_, _, r) = run(b"a\rb\r\n.\r\n", 1);
        assert_eq!(r.size, 2 + 3);
    }

    #[test]
    fn size_counts_wire_octets_after_unstuffing() {
        let (_, _, r) = run(b"ab\r\n..c\r\n.\r\n", 1);
        assert_eq!(r.size, 4 + 4);
    }

    #[test]
    fn long_lines_flagged() {
        let mut input = vec![b'x'; 998];
        input.extend_from_slice(b"\r\n.\r\n");
        let (_, _, r) = run(&input, 64);
        assert!(!r.long_line, "998 + CRLF = 1000 is allowed");
        let mut input = vec![b'x'; 999];
        input.extend_from_slice(b"\r\n.\r\n");
        let (_, end, r) = run(&input, 64);
        assert!(r.long_line);
        assert_eq!(end, Some(input.len()));
    }

    /// The limit counts every octet of each line on the wire (stuffing dot and CRLF included),
    /// whatever the line's first octet, after any kind of previous line, in pieces of any size.
    #[test]
    fn line_length_boundaries_in_any_pieces() {
        let line = |first: &[u8], total: usize| {
            let mut l = first.to_vec();
            l.resize(total - 2, b'y');
            l.extend_from_slice(b"\r\n");
            l
        };
        for step in [1, 7, 64, 4096] {
            for prefix in [&b""[..], b"short\r\n", b"\n", b"\r\n", b".\n", b"..x\r\n"] {
                for first in [&b"x"[..], b"..", b"\t"] {
                    for (total, long) in [(1000, false), (1001, true)] {
                        let mut input = prefix.to_vec();
                        input.extend_from_slice(&line(first, total));
                        input.extend_from_slice(b"tail\r\n.\r\n");
                        let (_, end, r) = run(&input, step);
                        assert_eq!(end, Some(input.len()));
                        assert_eq!(
                            r.long_line, long,
                            "step {step}, prefix {prefix:?}, first {first:?}, {total} octets"
                        );
                    }
                }
            }
        }
    }
}
