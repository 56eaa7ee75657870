//! Line framing shared by the SMTP and POP3 engines: collects one command line across feeds,
//! bounded by a maximum length (CR LF included). A longer line is dropped up to its end and
//! reported as [`Line::TooLong`], so the session can answer and go on.

/// What [`LineBuffer::take`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its CR LF (or bare LF).
    Complete(Vec<u8>),
    /// A line longer than the limit ended here.
    TooLong,
}

#[derive(Clone, Debug)]
pub struct LineBuffer {
    line: Vec<u8>,
    discarding: bool,
    max: usize,
}

impl LineBuffer {
    /// `max`: the longest line accepted, line end included.
    pub fn new(max: usize) -> Self {
        LineBuffer {
            line: Vec::new(),
            discarding: false,
            max,
        }
    }

    /// Forgets a partial line (after STARTTLS/STLS).
    pub fn clear(&mut self) {
        self.line.clear();
        self.discarding = false;
    }

    /// Takes bytes up to and including the next LF. Returns how many were consumed and the line
    /// if one ended; with `None`, all of `input` was consumed.
    pub fn take(&mut self, input: &[u8]) -> (usize, Option<Line>) {
        match input.iter().position(|&b| b == b'\n') {
            None => {
                self.append(input);
                (input.len(), None)
            }
            Some(nl) => {
                self.append(&input[..nl]);
                let too_long = self.discarding || self.line.len() + 1 > self.max;
                let mut line = std::mem::take(&mut self.line);
                self.discarding = false;
                if too_long {
                    return (nl + 1, Some(Line::TooLong));
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                (nl + 1, Some(Line::Complete(line)))
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.discarding {
            return;
        }
        if self.line.len() + bytes.len() > self.max {
            self.discarding = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_feeds_and_limits() {
        let mut b = LineBuffer::new(8);
        assert_eq!(b.take(b"NO"), (2, None));
        assert_eq!(
            b.take(b"OP\r\nX"),
            (4, Some(Line::Complete(b"NOOP".to_vec())))
        );
        assert_eq!(
            b.take(b"bare\n"),
            (5, Some(Line::Complete(b"bare".to_vec())))
        );
        // 6 + CRLF = 8 is the limit; 7 + CRLF is too long.
        assert_eq!(
            b.take(b"123456\r\n").1,
            Some(Line::Complete(b"123456".to_vec()))
        );
        assert_eq!(b.take(b"1234567\r\n").1, Some(Line::TooLong));
        assert_eq!(b.take(&[b'x'; 100]), (100, None));
        assert_eq!(b.take(b"\r\nok\r\n"), (2, Some(Line::TooLong)));
        assert_eq!(b.take(b"ok\r\n").1, Some(Line::Complete(b"ok".to_vec())));
    }
}
