//! BINARY (RFC 3516): the content of a body part with its Content-Transfer-Encoding undone, for
//! `FETCH BINARY[section]<partial>`, `BINARY.PEEK` and `BINARY.SIZE`. base64 and
//! quoted-printable are decoded; 7bit, 8bit, binary and no encoding are sent as they are; any
//! other encoding is `NO [UNKNOWN-CTE]`. `BINARY[]` (no part number) is the whole message as
//! stored. Only the transfer encoding is undone, never the charset.

use mail_parser::{MimeHeaders, PartType};

use super::mime::{locate, parse};

/// The part's Content-Transfer-Encoding is one we cannot undo.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownCte;

/// The decoded content of part `path` of the message `crlf` (CRLF line ends); `Ok(None)` when
/// there is no such part.
pub fn decoded(crlf: &[u8], path: &[u32]) -> Result<Option<Vec<u8>>, UnknownCte> {
    if path.is_empty() {
        return Ok(Some(crlf.to_vec()));
    }
    let Some(m) = parse(crlf) else {
        return Ok(None);
    };
    let Some((bytes, part)) = locate(&m, path, 0) else {
        return Ok(None);
    };
    let Some(body) = bytes.get(part.offset_body as usize..part.offset_end as usize) else {
        return Ok(None);
    };
    // A multipart or message/rfc822 part is sent as it is (its encoding can only be 7bit, 8bit
    // or binary, RFC 2045 section 6.4).
    if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
        return Ok(Some(body.to_vec()));
    }
    let cte = part
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    match cte.as_str() {
        "7bit" | "8bit" | "binary" | "" => Ok(Some(body.to_vec())),
        "base64" => Ok(Some(base64(body))),
        "quoted-printable" => Ok(Some(quoted_printable(body))),
        _ => Err(UnknownCte),
    }
}

/// base64 as RFC 2045 reads it: characters outside the alphabet (line breaks) are skipped,
/// decoding ends at the first `=`, and a dangling last character is dropped.
pub fn base64(body: &[u8]) -> Vec<u8> {
    fn value(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let (mut acc, mut n) = (0u32, 0);
    for &b in body {
        if b == b'=' {
            break;
        }
        let Some(v) = value(b) else { continue };
        acc = acc << 6 | v;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            (acc, n) = (0, 0);
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

/// quoted-printable (RFC 2045 section 6.7): `=XX` octets, `=` at a line end joins lines,
/// trailing blanks of a line are dropped; a malformed `=` is kept as it is.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(body.len());
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.trim_ascii_end();
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            match (line[i], line.get(i + 1).copied(), line.get(i + 2).copied()) {
                (b'=', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                    out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if !soft && lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &[u8] = b"Subject: m\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 au lait =\r\nsoft   \r\nnext=3D\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n/w==\r\n--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--XX\r\nContent-Type: text/plain\r\n\r\nplain\r\n--XX--\r\n";

    #[test]
    fn parts_are_decoded_by_their_transfer_encoding() {
        assert_eq!(
            decoded(MULTI, &[1]),
            Ok(Some(b"caf\xe9 au lait soft\r\nnext=".to_vec()))
        );
        assert_eq!(decoded(MULTI, &[2]), Ok(Some(vec![0, 1, 2, 0xff])));
        assert_eq!(decoded(MULTI, &[3]), Err(UnknownCte));
        assert_eq!(decoded(MULTI, &[4]), Ok(Some(b"plain".to_vec())));
        assert_eq!(decoded(MULTI, &[5]), Ok(None));
        assert_eq!(decoded(MULTI, &[2, 1]), Ok(None));
        assert_eq!(decoded(MULTI, &[]), Ok(Some(MULTI.to_vec())));
        let single = b"Subject: s\r\nContent-Transfer-Encoding: BASE64\r\n\r\naGVsbG8=\r\n";
        assert_eq!(decoded(single, &[1]), Ok(Some(b"hello".to_vec())));
    }

    #[test]
    fn decoders() {
        for (input, want) in [
            (&b"aGVsbG8gd29ybGQ="[..], &b"hello world"[..]),
            (b"aGVs\r\nbG8", b"hello"),
            (b"aGVsbG8*!", b"hello"),
            (b"a", b""),
            (b"", b""),
        ] {
            assert_eq!(base64(input), want, "{input:?}");
        }
        for (input, want) in [
            (&b"a=3Db"[..], &b"a=b"[..]),
            (b"a=\r\nb", b"ab"),
            (b"a =\nb  \r\nc", b"a b\r\nc"),
            (b"bad=ZZ=4", b"bad=ZZ=4"),
            (b"=e9=E9", b"\xe9\xe9"),
            (b"=", b""),
        ] {
            assert_eq!(quoted_printable(input), want, "{input:?}");
        }
    }
}
