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
    pub fn feed(&mut self, input: &[u8]) {
        for &b in input {
            self.size += match (self.last, b) {
                (Some(b'\r'), b'\n') => 1,
                (_, b'\n') => 2,
                _ => 1,
            };
            self.last = Some(b);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
