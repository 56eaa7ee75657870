//! Line-end arithmetic shared by delivery (the `W=` in Maildir names) and POP3 (STAT/LIST sizes):
//! the octets a stored message takes on the wire once each line end is CRLF. A CRLF already in
//! the file is one line end; a file not ending in a line end gets one. Also that wire form
//! itself (what DKIM signs). Pure code.

/// Counts, fed in chunks.
#[derive(Clone, Debug, Default)]
pub struct WireSize {
    size: u64,
    last: Option<u8>,
}

impl WireSize {
    /// One octet each, one more for each LF not after a CR (found with `memchr`: this runs over
    /// every message delivered and every one streamed).
    pub fn feed(&mut self, input: &[u8]) {
        let Some(&last) = input.last() else {
            return;
        };
        let mut extra = 0u64;
        for p in memchr::memchr_iter(b'\n', input) {
            let before = if p == 0 {
                self.last
            } else {
                Some(input[p - 1])
            };
            if before != Some(b'\r') {
                extra += 1;
            }
        }
        self.size += input.len() as u64 + extra;
        self.last = Some(last);
    }

    pub fn total(&self) -> u64 {
        match self.last {
            None | Some(b'\n') => self.size,
            Some(_) => self.size + 2,
        }
    }
}

/// [`WireSize`] of a whole buffer.
pub fn wire_size(bytes: &[u8]) -> u64 {
    let mut w = WireSize::default();
    w.feed(bytes);
    w.total()
}

/// `bytes` with every line end made CRLF by the rule above (LF or CRLF → CRLF, a last line
/// without one gets one): what our SMTP client sends, before dot-stuffing.
pub fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32 + 2);
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// [`to_crlf`] fed in chunks (for a message streamed from its file): the same output whatever
/// the chunk boundaries, with memory bounded by the chunk.
#[derive(Clone, Debug)]
pub struct CrlfStream {
    /// A CR was read last and not written yet (it may be the start of a CRLF).
    pending_cr: bool,
    /// Nothing written since the last line end.
    at_line_start: bool,
}

impl Default for CrlfStream {
    fn default() -> Self {
        CrlfStream {
            pending_cr: false,
            at_line_start: true,
        }
    }
}

impl CrlfStream {
    /// Appends the wire form of `input` to `out`: the runs between line ends copied whole
    /// (found with `memchr`), not octet by octet.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 32 + 2);
        while let Some(&first) = input.first() {
            if self.pending_cr {
                self.pending_cr = false;
                if first == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    input = &input[1..];
                    continue;
                }
                out.push(b'\r');
                self.at_line_start = false;
            }
            let Some(i) = memchr::memchr2(b'\r', b'\n', input) else {
                out.extend_from_slice(input);
                self.at_line_start = false;
                return;
            };
            out.extend_from_slice(&input[..i]);
            if i > 0 {
                self.at_line_start = false;
            }
            if input[i] == b'\r' {
                self.pending_cr = true;
            } else {
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
            }
            input = &input[i + 1..];
        }
    }

    /// The end of the input: a last line without a line end gets one.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            out.push(b'\r');
            self.pending_cr = false;
            self.at_line_start = false;
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Streamed in any chunks, the wire form is [`to_crlf`]'s.
        #[test]
        fn streamed_crlf_is_the_whole_crlf(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b'\r', b'\n', 0u8]), 0..200),
            split in 1usize..9,
        ) {
            let mut c = CrlfStream::default();
            let mut out = Vec::new();
            for chunk in bytes.chunks(split) {
                c.feed(chunk, &mut out);
            }
            c.finish(&mut out);
            proptest::prop_assert_eq!(&out, &to_crlf(&bytes));
        }

        /// Counted in any chunks, the size is that of [`to_crlf`]'s output.
        #[test]
        fn streamed_size_is_the_crlf_size(
            bytes in proptest::collection::vec(proptest::sample::select(vec![b'a', b'\r', b'\n', 0u8]), 0..200),
            split in 1usize..9,
        ) {
            let mut w = WireSize::default();
            for chunk in bytes.chunks(split) {
                w.feed(chunk);
            }
            proptest::prop_assert_eq!(w.total(), to_crlf(&bytes).len() as u64);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(wire_size(b""), 0);
        assert_eq!(wire_size(b"a\n"), 3);
        assert_eq!(wire_size(b"a\r\n"), 3);
        assert_eq!(wire_size(b"a"), 3);
        assert_eq!(wire_size(b"a\rb\n"), 5);
        let mut w = WireSize::default();
        w.feed(b"a\r");
        w.feed(b"\nb\n");
        assert_eq!(w.total(), 6);
    }

    /// The wire form has the size counted above, and is its own wire form.
    #[test]
    fn crlf_form() {
        for m in [&b""[..], b"a\n", b"a\r\nb", b"a\rb\n\n", b"x\r\r\n.y\n"] {
            let w = to_crlf(m);
            assert_eq!(w.len() as u64, wire_size(m), "{m:?}");
            assert_eq!(to_crlf(&w), w, "{m:?}");
        }
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n");
    }
}
