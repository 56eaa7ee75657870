//! A message parsed whole: what `GET /api/v1/messages/{id}` shows (headers, text and HTML parts,
//! the attachments with their part numbers), one part as `/parts/{n}` serves it, the links and
//! codes, and what a summary takes from the body (attachment count, snippet). Parsing is
//! mail-parser's; its part numbers (the message's flat list of parts, 0 the whole) are ours.
//! Nothing here touches files: the caller reads the message, bounded by the message size limit.

use std::borrow::Cow;

use mail_parser::decoders::html::html_to_text;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::extract;
use super::message::Summary;

/// A snippet is at most this many characters.
pub const SNIPPET_CHARS: usize = 200;
/// A filename in `Content-Disposition` is cut to this many characters.
const MAX_FILENAME: usize = 120;

pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// A header as stored: its name and raw value (unfolded, undecoded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderLine {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// The number for `/parts/{n}`.
    pub part: usize,
    /// The file name as given (decoded); `/parts/{n}` sends a safe form of it.
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub content_type: String,
    /// Decoded octets.
    pub size: u64,
    /// `attachment` or `inline` (as the part says; `attachment` when it says nothing).
    pub disposition: &'static str,
    /// `Content-ID` without its angle brackets (what `cid:` URLs in the HTML name).
    pub content_id: Option<String>,
}

/// The text bodies (HTML-only messages: the HTML as text) and the HTML bodies, decoded.
fn bodies<'a>(m: &'a Message) -> (Vec<Cow<'a, str>>, Vec<&'a str>) {
    let texts = m
        .text_body
        .iter()
        .filter_map(|&i| match &m.part(i)?.body {
            PartType::Text(t) => Some(Cow::Borrowed(t.as_ref())),
            PartType::Html(h) => Some(Cow::Owned(html_to_text(h))),
            _ => None,
        })
        .collect();
    let htmls = m
        .html_body
        .iter()
        .filter_map(|&i| match &m.part(i)?.body {
            PartType::Html(h) => Some(h.as_ref()),
            _ => None,
        })
        .collect();
    (texts, htmls)
}

/// The first `max` characters of `text` with every run of white space made one space.
pub fn snippet(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, w) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(w);
        if out.chars().count() >= max {
            break;
        }
    }
    out.chars().take(max).collect()
}

/// What a summary takes from the body: the attachment count and the snippet.
pub fn complete(summary: &mut Summary, m: &Message) {
    summary.attachments = m.attachments.len();
    let (texts, _) = bodies(m);
    summary.snippet = texts
        .first()
        .map(|t| snippet(t, SNIPPET_CHARS))
        .unwrap_or_default();
}

/// `type/subtype`, lower-cased; `application/octet-stream` when missing or not plain tokens
/// (what a client sees never carries parameters or line breaks from the message).
fn mime_type(p: &MessagePart) -> String {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match p.content_type() {
        Some(c) => match c.subtype() {
            Some(sub) if token(c.ctype()) && token(sub) => {
                format!("{}/{sub}", c.ctype()).to_ascii_lowercase()
            }
            _ => "application/octet-stream".into(),
        },
        None if p.is_message() => "message/rfc822".into(),
        None if p.is_text_html() => "text/html".into(),
        None if p.is_text() => "text/plain".into(),
        None => "application/octet-stream".into(),
    }
}

fn disposition(p: &MessagePart) -> &'static str {
    match p.content_disposition() {
        Some(d) if d.ctype().eq_ignore_ascii_case("inline") => "inline",
        _ => "attachment",
    }
}

fn attachments(m: &Message) -> Vec<Attachment> {
    m.attachments
        .iter()
        .filter_map(|&i| {
            let p = m.part(i)?;
            Some(Attachment {
                part: i as usize,
                name: p.attachment_name().map(str::to_string),
                content_type: mime_type(p),
                size: p.len() as u64,
                disposition: disposition(p),
                content_id: p
                    .content_id()
                    .map(|c| c.trim_matches(['<', '>', ' ']).to_string()),
            })
        })
        .collect()
}

/// The JSON of `GET /api/v1/messages/{id}`: the summary's fields (with `attachments` the list,
/// not the count), `headers`, `text`, `html` and their part numbers.
pub fn detail(summary: &Summary, raw: &[u8], m: Option<&Message>) -> Value {
    let mut out = match serde_json::to_value(summary) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    let Some(m) = m else {
        out.extend([
            ("headers".into(), json!([])),
            ("text".into(), Value::Null),
            ("html".into(), Value::Null),
            ("attachments".into(), json!([])),
        ]);
        return Value::Object(out);
    };
    let headers: Vec<HeaderLine> = m
        .headers()
        .iter()
        .map(|h| {
            let raw_value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            let value = String::from_utf8_lossy(raw_value);
            HeaderLine {
                name: h.name.as_str().to_string(),
                value: value.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect();
    let first = |ids: &[u32], html: bool| {
        ids.iter().find_map(|&i| match &m.part(i)?.body {
            PartType::Html(t) if html => Some((i, t.to_string())),
            PartType::Text(t) if !html => Some((i, t.to_string())),
            _ => None,
        })
    };
    let (text_part, text) = first(&m.text_body, false).unzip();
    let (html_part, html) = first(&m.html_body, true).unzip();
    out.extend([
        ("headers".into(), json!(headers)),
        ("text".into(), json!(text)),
        ("text_part".into(), json!(text_part)),
        ("html".into(), json!(html)),
        ("html_part".into(), json!(html_part)),
        ("attachments".into(), json!(attachments(m))),
    ]);
    Value::Object(out)
}

/// The links of the text and HTML parts.
pub fn links(m: &Message) -> Vec<String> {
    let (texts, htmls) = bodies(m);
    let texts: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
    extract::links(&texts, &htmls)
}

/// The likely one-time codes of the subject and the text (or the HTML as text).
pub fn codes(m: &Message) -> Vec<String> {
    let (texts, _) = bodies(m);
    let mut all: Vec<&str> = m.subject().into_iter().collect();
    all.extend(texts.iter().map(|t| t.as_ref()));
    extract::codes(&all)
}

/// One part, as `/parts/{n}` serves it.
#[derive(Debug, PartialEq, Eq)]
pub enum Part {
    Body {
        /// With `; charset=utf-8` for text (decoded to UTF-8).
        content_type: String,
        /// `Content-Disposition` for attachments: `attachment` with a safe file name.
        disposition: Option<String>,
        html: bool,
        bytes: Vec<u8>,
    },
    /// A multipart: its own body is only its parts (listed by number).
    Container(Vec<usize>),
    Missing,
}

pub fn part(m: &Message, n: usize) -> Part {
    let Some(p) = u32::try_from(n).ok().and_then(|i| m.part(i)) else {
        return Part::Missing;
    };
    if let PartType::Multipart(subs) = &p.body {
        return Part::Container(subs.iter().map(|&i| i as usize).collect());
    }
    let kind = mime_type(p);
    let content_type = match &p.body {
        PartType::Html(_) => "text/html; charset=utf-8".to_string(),
        PartType::Text(_) if kind.starts_with("text/") => format!("{kind}; charset=utf-8"),
        PartType::Text(_) => "text/plain; charset=utf-8".to_string(),
        PartType::Message(_) => "message/rfc822".to_string(),
        _ => kind,
    };
    let is_attachment = m.attachments.contains(&(n as u32)) && disposition(p) == "attachment";
    let disposition = is_attachment.then(|| {
        let name = p
            .attachment_name()
            .map(safe_filename)
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| format!("part-{n}"));
        content_disposition(&name)
    });
    Part::Body {
        content_type,
        disposition,
        html: p.is_text_html(),
        bytes: p.contents().to_vec(),
    }
}

/// A file name a client may save under: no directories, no control characters, no characters
/// that are special in a header or a file system, no leading dots; cut to a sane length.
pub fn safe_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_control() || "\"*:<>?|;%".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(MAX_FILENAME)
        .collect();
    cleaned
        .trim_start_matches(['.', ' '])
        .trim_end()
        .to_string()
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() && c != '\\' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::message::summarize;
    use crate::http::message::tests::{MSG, stored};

    #[test]
    fn parsed_detail() {
        let m = parse(MSG).unwrap();
        let mut s = summarize(&stored(""), MSG).unwrap();
        complete(&mut s, &m);
        assert_eq!(
            (s.attachments, s.snippet.as_str()),
            (1, "Your code is 123456")
        );
        let d = detail(&s, MSG, Some(&m));
        // The line end before a boundary belongs to the boundary (RFC 2046 5.1.1).
        assert_eq!(d["text"], "Your code is 123456");
        assert_eq!(d["html"], "<p>Your code is <b>123456</b></p>");
        assert_eq!(
            (d["text_part"].as_u64(), d["html_part"].as_u64()),
            (Some(2), Some(3))
        );
        assert_eq!(
            d["attachments"],
            json!([{"part": 4, "name": "r.pdf", "type": "application/pdf", "size": 5,
                    "disposition": "attachment", "content_id": null}])
        );
        let to = d["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == "To")
            .unwrap();
        assert_eq!(to["value"], "Bob <bob@example.test>, carol@example.test");
        assert_eq!(d["headers"].as_array().unwrap().len(), 8);
        assert_eq!(d["subject"], "Café code");
        // A plain message has no HTML part (none made up from the text).
        let raw = b"Subject: x\n\nhello\n";
        let m = parse(raw).unwrap();
        let d = detail(&summarize(&stored(""), raw).unwrap(), raw, Some(&m));
        assert_eq!((&d["text"], &d["html"]), (&json!("hello\n"), &Value::Null));
        assert_eq!(d["text_part"], 0);
    }

    #[test]
    fn parts_by_number() {
        let m = parse(MSG).unwrap();
        assert_eq!(part(&m, 0), Part::Container(vec![1, 4]));
        assert_eq!(part(&m, 1), Part::Container(vec![2, 3]));
        let Part::Body {
            content_type,
            disposition,
            html,
            bytes,
        } = part(&m, 3)
        else {
            panic!("part 3")
        };
        assert_eq!(
            (content_type.as_str(), disposition, html, bytes.as_slice()),
            (
                "text/html; charset=utf-8",
                None,
                true,
                b"<p>Your code is <b>123456</b></p>".as_slice()
            )
        );
        let Part::Body {
            content_type,
            disposition,
            bytes,
            ..
        } = part(&m, 4)
        else {
            panic!("part 4")
        };
        assert_eq!(content_type, "application/pdf");
        assert_eq!(bytes, b"%PDF-");
        assert_eq!(
            disposition.as_deref(),
            Some("attachment; filename=\"r.pdf\"; filename*=UTF-8''r.pdf")
        );
        assert_eq!(part(&m, 5), Part::Missing);
        assert_eq!(part(&m, usize::MAX), Part::Missing);
        assert_eq!(links(&m), Vec::<String>::new());
        assert_eq!(codes(&m), ["123456"]);
    }

    #[test]
    fn safe_filenames() {
        for (name, want) in [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\x\\evil.exe", "evil.exe"),
            (".bashrc", "bashrc"),
            ("a\"b\r\nc.txt", "a_b__c.txt"),
            ("résumé;x=1.pdf", "résumé_x=1.pdf"),
            ("..", ""),
            ("dir/", ""),
        ] {
            assert_eq!(safe_filename(name), want, "{name:?}");
        }
        assert_eq!(safe_filename(&"a".repeat(1000)).len(), MAX_FILENAME);
        assert_eq!(
            content_disposition("résumé.pdf"),
            "attachment; filename=\"r_sum_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
        );
    }

    /// Hostile MIME: deep nesting, thousands of parts, broken encodings, a lying Content-Type;
    /// nothing panics and everything answers.
    #[test]
    fn hostile_mime_does_not_panic() {
        let mut deep =
            String::from("Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n");
        for i in 0..5000 {
            deep.push_str(&format!(
                "--b{i}\nContent-Type: multipart/mixed; boundary=b{}\n\n",
                i + 1
            ));
        }
        deep.push_str("--b5000\nContent-Type: text/plain\n\ncode 4242\n");
        let mut many = String::from("Content-Type: multipart/mixed; boundary=x\n\n");
        for i in 0..20_000 {
            many.push_str(&format!(
                "--x\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"../f{i}\"\nContent-Transfer-Encoding: base64\n\n!!!notbase64\n"
            ));
        }
        many.push_str("--x--\n");
        let cases: Vec<Vec<u8>> = vec![
            deep.into_bytes(),
            many.into_bytes(),
            b"Content-Type: multipart/mixed\n\nno boundary at all".to_vec(),
            b"Content-Type: text/html; charset=bogus\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=\n<a href=".to_vec(),
            b"Content-Type: \x00\xff/\r\n\r\n\xff\xfe".to_vec(),
            b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: in\n\nx".to_vec(),
            vec![0xff; 100_000],
            Vec::new(),
        ];
        for raw in &cases {
            let Some(m) = parse(raw) else { continue };
            let s = summarize(&stored(""), raw).unwrap();
            let mut s2 = s.clone();
            complete(&mut s2, &m);
            let _ = detail(&s2, raw, Some(&m));
            let _ = (links(&m), codes(&m));
            for n in 0..m.parts.len().min(50) {
                let _ = part(&m, n);
            }
        }
    }
}
