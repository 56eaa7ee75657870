//! What tests pull out of a message: the links (`/links`) and the likely one-time codes
//! (`/codes`). Pure text work on the decoded parts: no parsing of MIME here, no I/O.
//!
//! - Links: `http://` and `https://` URLs in text parts and in HTML (`href` values and URLs in
//!   the visible text; not `src`, which names images), entities decoded, trailing punctuation
//!   trimmed, each once, in the order found.
//! - Codes: 4 to 8 digits, or 4 to 8 upper-case letters and digits with at least one of each,
//!   within a few words of a word such as "code", "OTP", "verification" or "PIN" (also in German,
//!   French, Spanish, Portuguese, Italian, Dutch, Nordic, Polish, Russian, Chinese, Japanese and
//!   Korean, as cheap stems). Dates, times and amounts (`2026-12-02`, `12:30`, `1.500`) are not
//!   codes.

use std::collections::HashSet;

/// Words after a keyword where a code may stand ("Your code is: 123456").
const AFTER: usize = 8;
/// Words before a keyword ("123456 is your verification code").
const BEFORE: usize = 6;

/// Keywords that must be the whole word (lower-cased): short ones that other words contain.
const WHOLE: &[&str] = &[
    "otp", "pin", "tan", "2fa", "mfa", "totp", "kod", "kode", "koodi", "код", "kodu", "passcode",
];

/// Keyword stems found anywhere in a word (lower-cased), so compounds count
/// ("Bestätigungscode", "verificación", "подтверждения").
const STEMS: &[&str] = &[
    "code",
    "verif",
    "bestätig",
    "confirm",
    "authent",
    "einmal",
    "código",
    "codigo",
    "codice",
    "kodem",
    "кода",
    "подтвержд",
    "验证码",
    "驗證碼",
    "校验码",
    "认证码",
    "コード",
    "認証",
    "確認",
    "인증",
];

/// The URLs in the text parts and the HTML parts, each once, in order (text first).
pub fn links(texts: &[&str], htmls: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |u: String| {
        if !u.is_empty() && seen.insert(u.clone()) {
            out.push(u);
        }
    };
    for t in texts {
        let mut i = 0;
        while let Some((start, end)) = next_url(t, i, false) {
            add(trim_url(t.get(start..end).unwrap_or_default()).to_string());
            i = end;
        }
    }
    for h in htmls {
        html_links(h, &mut add);
    }
    out
}

fn starts_with_ci(hay: &[u8], at: usize, needle: &[u8]) -> bool {
    hay.get(at..at + needle.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(needle))
}

fn url_ends(b: u8, html: bool) -> bool {
    b.is_ascii_whitespace()
        || b.is_ascii_control()
        || matches!(b, b'<' | b'>' | b'"' | b'`')
        || (html && b == b'\'')
}

/// The next `http(s)://` URL in `t` at or after `from`: its byte range.
fn next_url(t: &str, from: usize, html: bool) -> Option<(usize, usize)> {
    let b = t.as_bytes();
    let mut i = from;
    while i < b.len() {
        if (b[i] == b'h' || b[i] == b'H')
            && (starts_with_ci(b, i, b"http://") || starts_with_ci(b, i, b"https://"))
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
        {
            let mut end = i;
            while end < b.len() && !url_ends(b[end], html) {
                end += 1;
            }
            let scheme = if starts_with_ci(b, i, b"https://") {
                8
            } else {
                7
            };
            if end > i + scheme {
                return Some((i, end));
            }
            i = end;
            continue;
        }
        i += 1;
    }
    None
}

/// Without the punctuation that ends a sentence, or a bracket the URL did not open.
fn trim_url(u: &str) -> &str {
    let count = |c: char| u.chars().filter(|&x| x == c).count();
    // Unmatched closing brackets, counted once.
    let mut paren = count(')').saturating_sub(count('('));
    let mut square = count(']').saturating_sub(count('['));
    let mut u = u;
    loop {
        u = u.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '*']);
        if paren > 0 && u.ends_with(')') {
            paren -= 1;
        } else if square > 0 && u.ends_with(']') {
            square -= 1;
        } else {
            return u;
        }
        u = &u[..u.len() - 1];
    }
}

/// `href` values of any tag, and URLs in the text between tags.
fn html_links(h: &str, add: &mut impl FnMut(String)) {
    let b = h.as_bytes();
    let mut i = 0;
    let mut in_tag = false;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        if in_tag {
            if let Some(q) = quote {
                if b[i] == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            match b[i] {
                b'>' => in_tag = false,
                b'"' | b'\'' => quote = Some(b[i]),
                _ if b[i - 1].is_ascii_whitespace() && starts_with_ci(b, i, b"href") => {
                    if let Some((value, end)) = attribute_value(h, i + 4) {
                        let v = decode_entities(value);
                        let v = v.trim();
                        let lower = v.to_ascii_lowercase();
                        if lower.starts_with("http://") || lower.starts_with("https://") {
                            add(v.to_string());
                        }
                        i = end;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        } else if b[i] == b'<' {
            in_tag = true;
            i += 1;
        } else if let Some((start, end)) = next_url(h, i, true).filter(|&(s, _)| {
            // Only a URL before the next tag is text.
            !b[i..s].contains(&b'<')
        }) {
            let raw = h.get(start..end).unwrap_or_default();
            add(trim_url(&decode_entities(raw)).to_string());
            i = end;
        } else {
            match b[i..].iter().position(|&c| c == b'<') {
                Some(p) => i += p,
                None => break,
            }
        }
    }
}

/// After an attribute name at `at`: `= "value"`, `='value'` or `=value`; the value and where it
/// ends. `None` when no `=` follows (another attribute, or `hreflang`).
fn attribute_value(h: &str, at: usize) -> Option<(&str, usize)> {
    let b = h.as_bytes();
    let mut i = at;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    if b.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    match b.get(i) {
        Some(&q) if q == b'"' || q == b'\'' => {
            let end = b[i + 1..].iter().position(|&c| c == q)? + i + 1;
            Some((h.get(i + 1..end)?, end + 1))
        }
        Some(_) => {
            let end = b[i..]
                .iter()
                .position(|&c| c.is_ascii_whitespace() || c == b'>')
                .map_or(b.len(), |p| p + i);
            Some((h.get(i..end)?, end))
        }
        None => None,
    }
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and numeric references; others are left as they
/// are.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let semi = rest.get(..12).unwrap_or(rest).find(';');
        let decoded = semi.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let n = if let Some(hex) = name
                        .strip_prefix(['#'])
                        .and_then(|n| n.strip_prefix(['x', 'X']))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        name.strip_prefix('#').and_then(|d| d.parse::<u32>().ok())
                    };
                    n.and_then(char::from_u32)
                }
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One word of a text: its byte range; ASCII runs and other runs are words of their own, so
/// "验证码是123456" is two words.
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
}

fn words(t: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, bool)> = None;
    for (i, c) in t.char_indices() {
        let kind = c.is_ascii();
        match cur {
            Some((_, k)) if c.is_alphanumeric() && k == kind => {}
            Some((s, _)) => {
                out.push(Word { start: s, end: i });
                cur = c.is_alphanumeric().then_some((i, kind));
            }
            None => cur = c.is_alphanumeric().then_some((i, kind)),
        }
    }
    if let Some((s, _)) = cur {
        out.push(Word {
            start: s,
            end: t.len(),
        });
    }
    out
}

fn is_keyword(word: &str) -> bool {
    let w = word.to_lowercase();
    WHOLE.contains(&w.as_str()) || STEMS.iter().any(|s| w.contains(s))
}

/// Whether a word looks like a code: 4-8 digits, or 4-8 upper-case letters and digits with both.
fn looks_like_code(word: &str) -> bool {
    let b = word.as_bytes();
    if !(4..=8).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    digits == b.len()
        || (digits > 0
            && b.iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()))
}

/// Whether the digits at `w` belong to a date, time, amount or version (`2026-12-02`, `12:30`,
/// `1.500`, `v1/2`): a separator joins them to more digits.
fn joined_to_digits(t: &str, w: Word) -> bool {
    let b = t.as_bytes();
    let sep = |c: u8| matches!(c, b'-' | b'/' | b'.' | b':' | b',');
    let before = w.start >= 2 && sep(b[w.start - 1]) && b[w.start - 2].is_ascii_digit();
    let after = w.end + 1 < b.len() && sep(b[w.end]) && b[w.end + 1].is_ascii_digit();
    let money = w.start >= 1 && matches!(b[w.start - 1], b'$' | b'#' | b'+');
    before || after || money
}

/// The likely one-time codes in `texts` (the subject, then the body as text), each once, in
/// order.
pub fn codes(texts: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for t in texts {
        let ws = words(t);
        let keys: Vec<usize> = ws
            .iter()
            .enumerate()
            .filter(|(_, w)| is_keyword(&t[w.start..w.end]))
            .map(|(i, _)| i)
            .collect();
        for (i, w) in ws.iter().enumerate() {
            let word = &t[w.start..w.end];
            if !looks_like_code(word) || joined_to_digits(t, *w) {
                continue;
            }
            // The nearest keyword before and after this word (`keys` is in order).
            let p = keys.partition_point(|&k| k < i);
            let before = p > 0 && i - keys[p - 1] <= AFTER;
            let after = keys.get(p).is_some_and(|&k| k > i && k - i <= BEFORE)
                || keys.get(p + 1).is_some_and(|&k| k - i <= BEFORE);
            if (before || after) && seen.insert(word) {
                out.push(word.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("", "", &[]),
            (
                "Confirm at https://example.test/c?t=1&u=2. Thanks",
                "",
                &["https://example.test/c?t=1&u=2"],
            ),
            (
                "See <http://a.test/x>, (https://b.test/y) and https://en.wikipedia.org/wiki/Foo_(bar)!",
                "",
                &[
                    "http://a.test/x",
                    "https://b.test/y",
                    "https://en.wikipedia.org/wiki/Foo_(bar)",
                ],
            ),
            (
                "twice: https://a.test/ https://a.test/ HTTPS://C.TEST/Z",
                "",
                &["https://a.test/", "HTTPS://C.TEST/Z"],
            ),
            (
                "not a link: http:// nor xhttps://a.test nor ftp://f.test",
                "",
                &[],
            ),
            (
                "",
                "<a href=\"https://a.test/v?x=1&amp;y=2\">Verify</a> or visit https://b.test/p.",
                &["https://a.test/v?x=1&y=2", "https://b.test/p"],
            ),
            (
                "",
                "<A HREF='https://a.test/1'>1</A><a class=x href = https://a.test/2>2</a><a href=\"mailto:x@y.test\">m</a><a hreflang=en href=\"https://a.test/3\">",
                &["https://a.test/1", "https://a.test/2", "https://a.test/3"],
            ),
            (
                "",
                "<img src=\"https://tracker.test/p.gif\"><p title=\"https://t.test/not\">text</p>",
                &[],
            ),
            (
                "https://a.test/same",
                "<a href=\"https://a.test/same\">x</a><a href=\"https://a.test/html\">y</a>",
                &["https://a.test/same", "https://a.test/html"],
            ),
            // Broken HTML does not panic or loop.
            ("", "<a href=", &[]),
            ("", "<a href=\"https://a.test/unterminated", &[]),
            (
                "",
                "<<<>>> &#xZZ; &; https://a.test/é?q=ü",
                &["https://a.test/é?q=ü"],
            ),
        ];
        for (text, html, want) in cases {
            let texts: Vec<&str> = [*text].into_iter().filter(|t| !t.is_empty()).collect();
            let htmls: Vec<&str> = [*html].into_iter().filter(|t| !t.is_empty()).collect();
            assert_eq!(links(&texts, &htmls), *want, "{text:?} {html:?}");
        }
    }

    #[test]
    fn entities() {
        for (input, want) in [
            ("a&amp;b", "a&b"),
            ("&lt;&gt;&quot;&apos;", "<>\"'"),
            ("&#38;&#x26;&#X26;", "&&&"),
            ("&nbsp; &bogus; & &", "&nbsp; &bogus; & &"),
            ("&#1114112;", "&#1114112;"),
        ] {
            assert_eq!(decode_entities(input), want, "{input}");
        }
    }

    #[test]
    fn codes_table() {
        let cases: &[(&str, &[&str])] = &[
            ("Your code is 123456", &["123456"]),
            (
                "Your verification code: 4821. It expires in 10 minutes.",
                &["4821"],
            ),
            ("123456 is your Google verification code", &["123456"]),
            ("G-482193 is your verification code.", &["482193"]),
            ("Use OTP 99887766 to log in", &["99887766"]),
            ("Your PIN: 0042", &["0042"]),
            ("Your one-time code is K7P2QX", &["K7P2QX"]),
            ("Ihr Bestätigungscode lautet 583920.", &["583920"]),
            ("Votre code de vérification est 771203", &["771203"]),
            ("Tu código de verificación es 447120", &["447120"]),
            ("Il tuo codice è 3391", &["3391"]),
            ("Twój kod: 558812", &["558812"]),
            ("Ваш код подтверждения: 902114", &["902114"]),
            ("您的验证码是 638201，请勿泄露", &["638201"]),
            ("您的验证码是638201", &["638201"]),
            ("認証コード: 118833", &["118833"]),
            ("인증 번호 552211", &["552211"]),
            // Not codes: no keyword near, too short or long, words, dates, times, amounts.
            ("Order 123456 has shipped", &[]),
            ("Your code is 123", &[]),
            ("Your code is 123456789", &[]),
            ("Your code is ready, see the attached file", &[]),
            ("Your code expires on 2026-12-02 at 12:30", &[]),
            ("Code review: the invoice is $1500 or 1.500,00 EUR", &[]),
            ("Shipping code words: HELLO world", &[]),
            ("code mp3s abc1", &[]),
            (
                "Your code: 111111. Far away, many many words later, with nothing around them at all, 222222",
                &["111111"],
            ),
            ("code 1234 code 1234 and 5678", &["1234", "5678"]),
        ];
        for (text, want) in cases {
            assert_eq!(codes(&[text]), *want, "{text}");
        }
        assert_eq!(
            codes(&["Your code 111111", "Your code is 111111 or 222222"]),
            ["111111", "222222"]
        );
    }

    /// Hostile input: long runs without delimiters, lone bytes, deep nesting of brackets.
    #[test]
    fn hostile_text_is_bounded() {
        let big = "x".repeat(1 << 20);
        assert!(links(&[&big], &[&big]).is_empty());
        assert!(codes(&[&big]).is_empty());
        let tags = "<a href=".repeat(50_000);
        assert!(links(&[], &[&tags]).is_empty());
        let urls = "https://a.test/))))]]]]".repeat(1000);
        assert_eq!(links(&[&urls], &[]).len(), 1);
        let many = "code 1234 ".repeat(20_000);
        assert_eq!(codes(&[&many]), ["1234"]);
    }
}
