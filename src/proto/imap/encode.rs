//! The server side of IMAP's wire format for what we send: atoms, quoted strings and literals
//! chosen by content, NIL, and the untagged/tagged status lines. Responses are written by hand
//! here rather than built as `imap-types` values: our FETCH data comes from files and
//! `mail-parser`, and writing it straight into the output buffer costs no copies; the rules of
//! what may be quoted are the ones below, tested in the table at the end.

/// Appends `s` as an IMAP string: quoted when it can be, else a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && b < 0x80);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// `{n}` CRLF and the bytes.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// For BINARY: `~{n}` CRLF and the bytes when they hold a NUL (RFC 3516 literal8), else an
/// ordinary literal.
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    if s.contains(&0) {
        out.push(b'~');
    }
    literal(out, s);
}

/// NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// An atom when `s` is one (mailbox names like `INBOX`, `Sent`), else a string.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    if atom {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// `<tag> OK|NO|BAD <text>` CRLF.
pub fn tagged(tag: &str, status: &str, text: &str) -> Vec<u8> {
    format!("{tag} {status} {text}\r\n").into_bytes()
}

/// `* <text>` CRLF.
pub fn untagged(text: &str) -> Vec<u8> {
    format!("* {text}\r\n").into_bytes()
}

/// INTERNALDATE form: `"02-Dec-2026 09:56:06 +0000"` (UTC).
pub fn internal_date(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000\"",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Days since 1970-01-01 → (year, month 1..12, day 1..31) (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: fn(&mut Vec<u8>, &[u8]), input: &[u8]) -> String {
        let mut out = Vec::new();
        f(&mut out, input);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn strings_are_quoted_or_literal_by_content() {
        assert_eq!(s(string, b"hello world"), "\"hello world\"");
        assert_eq!(s(string, b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(s(string, b"two\r\nlines"), "{10}\r\ntwo\r\nlines");
        assert_eq!(s(string, "caf\u{e9}".as_bytes()), "{5}\r\ncaf\u{e9}");
        assert_eq!(s(string, b""), "\"\"");
        assert_eq!(s(astring, b"INBOX"), "INBOX");
        assert_eq!(s(astring, b"My Folder"), "\"My Folder\"");
        assert_eq!(s(astring, b"a]b"), "\"a]b\"");
        let mut out = Vec::new();
        nstring(&mut out, None);
        assert_eq!(out, b"NIL");
    }

    #[test]
    fn dates() {
        assert_eq!(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(
            internal_date(1_796_205_366),
            "\"02-Dec-2026 09:56:06 +0000\""
        );
        for days in [-1000, 0, 59, 60, 11_016, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
