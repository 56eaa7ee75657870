//! Modified UTF-7 (RFC 3501 section 5.1.3), the form folder names have on disk (Maildir++, as
//! Dovecot writes them) and on the wire in IMAP4rev1; IMAP4rev2 sessions send and get UTF-8
//! (RFC 9051 section 5.1), converted here at the edge of the engine.

use base64::Engine;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};

const B64: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

/// UTF-8 → modified UTF-7: printable ASCII stays (`&` as `&-`), other runs are UTF-16 in
/// modified base64 between `&` and `-`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&B64.encode(bytes));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Modified UTF-7 → UTF-8; `None` when `name` is not valid modified UTF-7.
pub fn decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-')?;
        if end == 0 {
            out.push('&');
        } else {
            let bytes = B64.decode(&after[..end]).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rfc_examples() {
        for (utf8, m) in [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("Gesendete Objekte", "Gesendete Objekte"),
            ("😀", "&2D3eAA-"),
            ("", ""),
        ] {
            assert_eq!(encode(utf8), m, "{utf8}");
            assert_eq!(decode(m).as_deref(), Some(utf8), "{m}");
        }
        for bad in ["&", "&Jjo", "&A-", "&2D0-"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
