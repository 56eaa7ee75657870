//! The trace headers prepended at delivery: `Return-Path:` (RFC 5321 §4.4) and `Received:`.
//! The peer is named by its address: no DNS lookups.

use core::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the `Received:` header records.
pub struct Trace<'a> {
    pub helo: Option<&'a str>,
    pub peer: IpAddr,
    pub hostname: &'a str,
    /// `SMTP`, `ESMTP`, `UTF8SMTP`…
    pub protocol: &'a str,
    pub id: &'a str,
    /// Named in `for <...>` only when there is exactly one (as Postfix does: one copy is shared).
    pub recipients: &'a [String],
    pub from: &'a str,
    pub time: SystemTime,
}

/// Printable ASCII only, so client text cannot fold or inject header lines.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Keeps UTF-8 (SMTPUTF8 addresses) but drops controls and angle brackets.
fn clean_addr(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '<' && *c != '>')
        .collect()
}

/// `Delivered-To: address` (LF), added to a copy forwarded for an alias.
pub fn delivered_to(address: &str) -> String {
    format!("Delivered-To: {}\n", clean_addr(address))
}

/// How many `Delivered-To:` fields of a header section name `address` (case-insensitive).
pub fn delivered_to_count(head: &[u8], address: &str) -> usize {
    head.split(|&b| b == b'\n')
        .filter_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"Delivered-To")
                .then_some(&value[1..])
        })
        .filter(|v| {
            let v = String::from_utf8_lossy(v);
            let v = v.trim().trim_start_matches('<').trim_end_matches('>');
            v.eq_ignore_ascii_case(address)
        })
        .count()
}

/// `Return-Path: <sender>` (LF), added at final delivery.
pub fn return_path(sender: &str) -> String {
    format!("Return-Path: <{}>\n", clean_addr(sender))
}

impl Trace<'_> {
    /// `Return-Path:` and `Received:`, LF line ends, ready to be written before the body.
    pub fn render(&self) -> String {
        format!("{}{}", return_path(self.from), self.received())
    }

    /// `Received:` alone: a message that is relayed gets its `Return-Path:` only at its final
    /// delivery (RFC 5321 4.4).
    pub fn received(&self) -> String {
        let peer = match self.peer {
            IpAddr::V4(a) => format!("[{a}]"),
            IpAddr::V6(a) => format!("[IPv6:{a}]"),
        };
        let helo = self.helo.map(clean).unwrap_or_else(|| peer.clone());
        let mut out = String::new();
        out.push_str(&format!(
            "Received: from {helo} ({peer})\n\tby {} (smtpd) with {} id {}",
            clean(self.hostname),
            self.protocol,
            clean(self.id)
        ));
        if let [only] = self.recipients {
            out.push_str(&format!("\n\tfor <{}>", clean_addr(only)));
        }
        out.push_str(&format!("; {}\n", rfc5322_date(self.time)));
        out
    }
}

/// Where the header section of a stored message (LF line ends) ends: the index just past the
/// blank line, or `None` when it has not been seen yet.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    if buf.starts_with(b"\n") {
        return Some(1);
    }
    buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// Whether a header section has a field `name` (case-insensitive, at a line start).
pub fn has_field(head: &[u8], name: &str) -> bool {
    head.split(|&b| b == b'\n').any(|line| {
        line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    })
}

/// `Thu, 26 Nov 2026 09:00:00 +0000`.
pub fn rfc5322_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WD[days.rem_euclid(7) as usize],
        d,
        MON[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `2026-11-26 09:00:00 UTC`, for people.
pub fn iso_utc(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_to_fields_naming_an_address() {
        let head =
            b"Delivered-To: Loop@Example.test\nReceived: x\ndelivered-to:<loop@example.test>\n\
                     Delivered-To: other@example.test\nX-Delivered-To: loop@example.test\n\
                     Delivered-To loop@example.test\n";
        assert_eq!(delivered_to_count(head, "loop@example.test"), 2);
        assert_eq!(delivered_to_count(head, "other@example.test"), 1);
        assert_eq!(delivered_to_count(b"", "loop@example.test"), 0);
        assert_eq!(
            delivered_to("a@b.test\r\nX: y"),
            "Delivered-To: a@b.testX: y\n"
        );
    }
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 1 Jan 1970 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_683_600);
        assert_eq!(rfc5322_date(t), "Thu, 26 Nov 2026 09:00:00 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(iso_utc(1_795_683_600), "2026-11-26 09:00:00 UTC");
    }

    #[test]
    fn header_scanning() {
        assert_eq!(header_end(b"A: b\n\nbody"), Some(6));
        assert_eq!(header_end(b"\nbody"), Some(1));
        assert_eq!(header_end(b"A: b\nC: d\n"), None);
        assert!(has_field(b"Subject: x\ndate: now\n", "Date"));
        assert!(!has_field(b"Subject: Date: x\n", "Date"));
        assert!(has_field(b"Message-ID: <a@b>\n", "Message-ID"));
    }

    #[test]
    fn received_header() {
        let rcpts = vec!["bob@example.test".to_string()];
        let t = Trace {
            helo: Some("client.test\r\nX-Evil: 1"),
            peer: "127.0.0.1".parse().unwrap(),
            hostname: "mx.example.test",
            protocol: "ESMTP",
            id: "ABC",
            recipients: &rcpts,
            from: "a@b.test",
            time: UNIX_EPOCH,
        };
        assert_eq!(
            t.render(),
            "Return-Path: <a@b.test>\nReceived: from client.test??X-Evil:?1 ([127.0.0.1])\n\tby mx.example.test (smtpd) with ESMTP id ABC\n\tfor <bob@example.test>; Thu, 1 Jan 1970 00:00:00 +0000\n"
        );
        let two = vec!["a@x".to_string(), "b@x".to_string()];
        let t = Trace {
            helo: None,
            peer: "::1".parse().unwrap(),
            recipients: &two,
            from: "",
            ..t
        };
        let r = t.render();
        assert!(
            r.starts_with("Return-Path: <>\nReceived: from [IPv6:::1] ([IPv6:::1])"),
            "{r}"
        );
        assert!(!r.contains("for <"));
    }
}
