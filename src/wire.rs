//! Line-end arithmetic shared by delivery (the `W=` in Maildir names) and POP3 (STAT/LIST sizes):
//! the octets a stored message takes on the wire once each line end is CRLF. A CRLF already in
//! the file is one line end; a file not ending in a line end gets one. Pure code.

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
}
