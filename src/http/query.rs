//! The query parameters of the routes, read from the decoded `(name, value)` pairs into typed
//! requests, with an error that says what was wrong (answered as 400). Pure: the clock's reading
//! comes in as an argument.

use std::time::Duration;

use super::id::Cursor;
use crate::proto::smtp::address::{is_domain, is_safe_local};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// A wait without `timeout=`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Which messages a list, a wait or a delete is about; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One Maildir: (domain, local part), lower-cased.
    pub mailbox: Option<(String, String)>,
    /// Lower-cased; found in the Maildir's address or a To/Cc address.
    pub to: Option<String>,
    /// Lower-cased; found in a From address or name.
    pub from: Option<String>,
    /// Lower-cased; found in the subject.
    pub subject: Option<String>,
    /// Lower-cased; found in the subject or a text or HTML part (reads the whole message).
    pub contains: Option<String>,
    /// Delivered at or after this many microseconds since the epoch.
    pub since_us: u64,
}

impl Filter {
    /// Whether anything but the Maildir and `since` is asked (the headers must be read).
    pub fn reads_headers(&self) -> bool {
        self.to.is_some()
            || self.from.is_some()
            || self.subject.is_some()
            || self.contains.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: Filter,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitQuery {
    pub filter: Filter,
    pub timeout: Duration,
}

type Pairs<'a> = &'a [(String, String)];

/// Refuses parameters outside `known` and any given twice.
fn check_names(pairs: Pairs, known: &[&str]) -> Result<(), String> {
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            return Err(format!(
                "unknown parameter `{name}` (known: {})",
                known.join(", ")
            ));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("parameter `{name}` is given twice"));
        }
    }
    Ok(())
}

fn get<'a>(pairs: Pairs<'a>, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `local@domain` as a Maildir: (domain, local), lower-cased, or why not.
pub fn parse_mailbox(text: &str) -> Result<(String, String), String> {
    let lower = text.to_ascii_lowercase();
    match lower.rsplit_once('@') {
        Some((l, d)) if is_safe_local(l) && is_domain(d) => Ok((d.to_string(), l.to_string())),
        _ => Err(format!(
            "`mailbox`: \"{text}\" is not an address like alice@example.test"
        )),
    }
}

/// `30s`, `2m`, `1h`, `500ms` or plain seconds.
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

/// RFC 3339 (`2026-11-26T12:31:33Z`, `...33.250+01:00`) or unix seconds (`1795696292`,
/// `1795696292.25`): microseconds since the epoch.
pub fn parse_since(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(us) = unix_us(t) {
        return Some(us);
    }
    rfc3339_us(t)
}

/// Whole seconds, with up to six fractional digits.
fn unix_us(t: &str) -> Option<u64> {
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(secs.parse::<u64>().ok()? * 1_000_000 + fraction_us(frac)?)
}

/// Fractional-second digits as microseconds (beyond six digits ignored); "" is 0.
fn fraction_us(frac: &str) -> Option<u64> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let six: String = frac.chars().chain("000000".chars()).take(6).collect();
    six.parse().ok()
}

fn rfc3339_us(t: &str) -> Option<u64> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    let b = t.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &t[19..];
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let offset = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
            let h: i64 = z[1..3].parse().ok()?;
            let m: i64 = z[4..6].parse().ok()?;
            let o = h * 3600 + m * 60;
            if z.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| s * 1_000_000 + fraction_us(frac).unwrap_or(0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn text(pairs: Pairs, name: &str) -> Result<Option<String>, String> {
    match get(pairs, name) {
        None => Ok(None),
        Some("") => Err(format!("`{name}` is empty")),
        Some(v) => Ok(Some(v.to_lowercase())),
    }
}

/// The filter parameters (`default_since`: when `since` is not given).
fn filter(pairs: Pairs, default_since: u64) -> Result<Filter, String> {
    let mailbox = get(pairs, "mailbox").map(parse_mailbox).transpose()?;
    let since_us = match get(pairs, "since") {
        None => default_since,
        Some(v) => parse_since(v).ok_or_else(|| {
            format!("`since`: \"{v}\" is neither RFC 3339 (2026-11-26T12:31:33Z) nor unix seconds")
        })?,
    };
    Ok(Filter {
        mailbox,
        to: text(pairs, "to")?,
        from: text(pairs, "from")?,
        subject: text(pairs, "subject")?,
        contains: text(pairs, "contains")?,
        since_us,
    })
}

const FILTERS: [&str; 6] = ["mailbox", "to", "from", "subject", "contains", "since"];

/// `GET /api/v1/messages`.
pub fn parse_list(pairs: Pairs) -> Result<ListQuery, String> {
    let mut known = FILTERS.to_vec();
    known.extend(["limit", "cursor"]);
    check_names(pairs, &known)?;
    let limit = match get(pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(format!("`limit` must be 1 to {MAX_LIMIT}, not \"{v}\"")),
        },
    };
    let cursor = match get(pairs, "cursor") {
        None => None,
        Some(v) => Some(
            Cursor::parse(v)
                .ok_or_else(|| format!("`cursor`: \"{v}\" is not a cursor from `next_cursor`"))?,
        ),
    };
    Ok(ListQuery {
        filter: filter(pairs, 0)?,
        limit,
        cursor,
    })
}

/// `GET /api/v1/wait`: `since` defaults to `now_us` (the moment of the call); the timeout is
/// capped at `max`.
pub fn parse_wait(pairs: Pairs, now_us: u64, max: Duration) -> Result<WaitQuery, String> {
    let mut known = FILTERS.to_vec();
    known.push("timeout");
    check_names(pairs, &known)?;
    let timeout = match get(pairs, "timeout") {
        None => DEFAULT_WAIT,
        Some(v) => parse_timeout(v).ok_or_else(|| {
            format!("`timeout`: \"{v}\" is not a duration like 30s, 2m or 10 (seconds)")
        })?,
    };
    Ok(WaitQuery {
        filter: filter(pairs, now_us)?,
        timeout: timeout.min(max),
    })
}

/// `mailbox=` alone (`DELETE /api/v1/messages`, `latest`).
pub fn parse_mailbox_only(pairs: Pairs) -> Result<Option<(String, String)>, String> {
    check_names(pairs, &["mailbox"])?;
    get(pairs, "mailbox").map(parse_mailbox).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn timeouts() {
        for (text, want) in [
            ("30s", Some(30_000)),
            ("2m", Some(120_000)),
            ("1h", Some(3_600_000)),
            ("10", Some(10_000)),
            ("0", Some(0)),
            ("250ms", Some(250)),
            (" 5s ", Some(5_000)),
            ("", None),
            ("s", None),
            ("-1", None),
            ("1.5s", None),
            ("3d", None),
            ("10 s", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(
                parse_timeout(text).map(|d| d.as_millis() as u64),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn since() {
        for (text, want) in [
            ("1795696292", Some(1_795_696_292_000_000)),
            ("1795696292.25", Some(1_795_696_292_250_000)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-26T12:31:33Z", Some(1_795_696_293_000_000)),
            ("2026-11-26T12:31:33.5Z", Some(1_795_696_293_500_000)),
            ("2026-11-26T13:31:33+01:00", Some(1_795_696_293_000_000)),
            (
                "2026-11-26T07:31:33.000001-05:00",
                Some(1_795_696_293_000_001),
            ),
            ("2026-11-26", None),
            ("2026-13-26T12:31:33Z", None),
            ("2026-11-26T12:31:33", None),
            ("yesterday", None),
            ("1e9", None),
            ("", None),
        ] {
            assert_eq!(parse_since(text), want, "{text:?}");
        }
    }

    #[test]
    fn list_queries() {
        let q = parse_list(&pairs(&[])).unwrap();
        assert_eq!(
            (q.limit, q.cursor, q.filter),
            (DEFAULT_LIMIT, None, Filter::default())
        );
        let q = parse_list(&pairs(&[
            ("mailbox", "Bob@Example.TEST"),
            ("to", "BOB"),
            ("subject", "Hello"),
            ("limit", "1000"),
            ("since", "10"),
            ("cursor", "5.bob@example.test~1.x"),
        ]))
        .unwrap();
        assert_eq!(
            q.filter.mailbox,
            Some(("example.test".into(), "bob".into()))
        );
        assert_eq!(
            (q.filter.to.as_deref(), q.filter.subject.as_deref()),
            (Some("bob"), Some("hello"))
        );
        assert_eq!((q.limit, q.filter.since_us), (1000, 10_000_000));
        assert_eq!(q.cursor.unwrap().delivered_us, 5);
        for (bad, says) in [
            (&[("limit", "0")][..], "`limit` must be 1 to 1000"),
            (&[("limit", "1001")], "`limit` must be 1 to 1000"),
            (&[("limit", "x")], "`limit` must be 1 to 1000"),
            (
                &[("mailbox", "nobody")],
                "`mailbox`: \"nobody\" is not an address",
            ),
            (&[("mailbox", "../x@example.test")], "is not an address"),
            (&[("cursor", "zz")], "`cursor`"),
            (&[("since", "soon")], "`since`"),
            (&[("subject", "")], "`subject` is empty"),
            (&[("timeout", "1s")], "unknown parameter `timeout`"),
            (&[("to", "a"), ("to", "b")], "`to` is given twice"),
        ] {
            let err = parse_list(&pairs(bad)).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn wait_queries() {
        let max = Duration::from_secs(300);
        let q = parse_wait(&pairs(&[("to", "bob@example.test")]), 77, max).unwrap();
        assert_eq!((q.timeout, q.filter.since_us), (DEFAULT_WAIT, 77));
        let q = parse_wait(&pairs(&[("timeout", "1h"), ("since", "0")]), 77, max).unwrap();
        assert_eq!((q.timeout, q.filter.since_us), (max, 0));
        assert!(
            parse_wait(&pairs(&[("timeout", "soon")]), 0, max)
                .unwrap_err()
                .contains("`timeout`")
        );
        assert!(
            parse_wait(&pairs(&[("limit", "1")]), 0, max)
                .unwrap_err()
                .contains("unknown parameter `limit`")
        );
        assert_eq!(parse_mailbox_only(&pairs(&[])), Ok(None));
        assert!(parse_mailbox_only(&pairs(&[("to", "x")])).is_err());
    }
}
