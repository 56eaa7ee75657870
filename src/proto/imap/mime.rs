//! What FETCH says about a message's content, from `mail-parser` over the message with CRLF line
//! ends (so every offset is an IMAP octet offset): ENVELOPE, BODYSTRUCTURE (without extension
//! data, which RFC 3501 makes optional), and the bytes of `BODY[section]`.

use mail_parser::{Address, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::encode::{nstring, string};

pub fn parse(crlf: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(crlf)
}

/// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
pub fn envelope(out: &mut Vec<u8>, m: &Message<'_>) {
    let raw = |name: &str| m.header_raw(name).map(|v| unfold(v.trim()));
    out.push(b'(');
    nstring(out, raw("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Subject").as_deref().map(str::as_bytes));
    let from = m.from();
    for a in [
        from,
        m.sender().or(from),
        m.reply_to().or(from),
        m.to(),
        m.cc(),
        m.bcc(),
    ] {
        out.push(b' ');
        addresses(out, a);
    }
    out.push(b' ');
    nstring(out, raw("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, raw("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}

fn unfold(v: &str) -> String {
    v.replace("\r\n", "").replace('\n', "")
}

fn addresses(out: &mut Vec<u8>, a: Option<&Address<'_>>) {
    let Some(a) = a else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let mut items = Vec::new();
    match a {
        Address::List(list) => {
            for x in list {
                address(&mut items, x.name.as_deref(), x.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                if let Some(name) = &g.name {
                    // Group start: (NIL NIL "name" NIL), end: (NIL NIL NIL NIL).
                    items.extend_from_slice(b"(NIL NIL ");
                    string(&mut items, name.as_bytes());
                    items.extend_from_slice(b" NIL)");
                }
                for x in &g.addresses {
                    address(&mut items, x.name.as_deref(), x.address.as_deref());
                }
                if g.name.is_some() {
                    items.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
    }
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        out.extend_from_slice(&items);
        out.push(b')');
    }
}

fn address(out: &mut Vec<u8>, name: Option<&str>, addr: Option<&str>) {
    let Some(addr) = addr else { return };
    let (local, host) = addr.rsplit_once('@').unwrap_or((addr, ""));
    out.push(b'(');
    nstring(out, name.map(encoded_word).as_deref().map(str::as_bytes));
    out.extend_from_slice(b" NIL ");
    string(out, local.as_bytes());
    out.push(b' ');
    nstring(out, (!host.is_empty()).then_some(host.as_bytes()));
    out.push(b')');
}

/// mail-parser decodes names; IMAP4rev1 strings are ASCII, so a non-ASCII name goes back into
/// an RFC 2047 encoded word.
fn encoded_word(name: &str) -> String {
    if name.is_ascii() {
        return name.to_string();
    }
    use base64::Engine;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
    )
}

/// BODYSTRUCTURE (and BODY, the same without extension data here).
pub fn bodystructure(out: &mut Vec<u8>, m: &Message<'_>) {
    part_structure(out, m, 0, 0);
}

fn part_structure(out: &mut Vec<u8>, m: &Message<'_>, id: usize, depth: usize) {
    let Some(p) = m.parts.get(id) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let (ctype, sub) = content_type(p);
    if let PartType::Multipart(children) = &p.body {
        out.push(b'(');
        if children.is_empty() || depth > 20 {
            out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        }
        for &c in children
            .iter()
            .take(if depth > 20 { 0 } else { usize::MAX })
        {
            part_structure(out, m, c as usize, depth + 1);
        }
        out.push(b' ');
        string(out, sub.as_bytes());
        out.push(b')');
        return;
    }
    out.push(b'(');
    string(out, ctype.as_bytes());
    out.push(b' ');
    string(out, sub.as_bytes());
    out.push(b' ');
    match p.content_type().and_then(|c| c.attributes()) {
        Some(attrs) if !attrs.is_empty() => {
            out.push(b'(');
            for (i, a) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, a.name.as_bytes());
                out.push(b' ');
                string(out, encoded_word(&a.value).as_bytes());
            }
            out.push(b')');
        }
        _ if ctype.eq_ignore_ascii_case("text") => {
            out.extend_from_slice(b"(\"charset\" \"us-ascii\")")
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    nstring(
        out,
        p.content_id()
            .map(|s| format!("<{s}>"))
            .as_deref()
            .map(str::as_bytes),
    );
    out.push(b' ');
    nstring(out, p.content_description().map(str::as_bytes));
    out.push(b' ');
    string(
        out,
        p.content_transfer_encoding().unwrap_or("7bit").as_bytes(),
    );
    let body = m
        .raw_message()
        .get(p.offset_body as usize..p.offset_end as usize)
        .unwrap_or(b"");
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|&&b| b == b'\n').count();
    match &p.body {
        PartType::Message(inner) if depth < 20 => {
            out.push(b' ');
            envelope(out, inner);
            out.push(b' ');
            part_structure(out, inner, 0, depth + 1);
            out.extend_from_slice(format!(" {lines}").as_bytes());
        }
        _ if ctype.eq_ignore_ascii_case("text") => {
            out.extend_from_slice(format!(" {lines}").as_bytes())
        }
        _ => {}
    }
    out.push(b')');
}

fn content_type(p: &MessagePart<'_>) -> (String, String) {
    match p.content_type() {
        Some(c) => (
            c.c_type.to_ascii_lowercase(),
            c.c_subtype
                .as_deref()
                .unwrap_or(if c.c_type.eq_ignore_ascii_case("text") {
                    "plain"
                } else {
                    "octet-stream"
                })
                .to_ascii_lowercase(),
        ),
        None => ("text".into(), "plain".into()),
    }
}

/// What a section names inside a message or part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `BODY[]` or `BODY[1.2]`.
    Whole,
    Header,
    /// HEADER.FIELDS (`not` = HEADER.FIELDS.NOT), lower-case names.
    Fields {
        names: Vec<String>,
        not: bool,
    },
    Text,
    Mime,
}

/// The octets of section `path` + `spec` of the message `crlf` (None when there is no such part:
/// the reply is then an empty string, as Dovecot sends).
pub fn section(crlf: &[u8], path: &[u32], spec: &Spec) -> Option<Vec<u8>> {
    if path.is_empty() {
        return Some(apply(crlf, spec));
    }
    let m = parse(crlf)?;
    let (msg_bytes, part) = locate(&m, path, 0)?;
    let p = part;
    let header = msg_bytes.get(p.offset_header as usize..p.offset_body as usize)?;
    let body = msg_bytes.get(p.offset_body as usize..p.offset_end as usize)?;
    Some(match spec {
        Spec::Whole => body.to_vec(),
        Spec::Mime => header.to_vec(),
        // HEADER / TEXT / FIELDS of a part apply to the message/rfc822 it holds.
        _ => apply(body, spec),
    })
}

/// The part at `path` (1-based numbers) and the bytes its offsets refer to.
pub(super) fn locate<'m>(
    m: &'m Message<'m>,
    path: &[u32],
    depth: usize,
) -> Option<(&'m [u8], &'m MessagePart<'m>)> {
    let (&n, rest) = path.split_first()?;
    let root = m.parts.first()?;
    let part = match &root.body {
        PartType::Multipart(children) => m
            .parts
            .get(*children.get(n.checked_sub(1)? as usize)? as usize)?,
        _ if n == 1 => root,
        _ => return None,
    };
    if rest.is_empty() {
        return Some((m.raw_message(), part));
    }
    match &part.body {
        PartType::Message(inner) if depth < 20 => locate(inner, rest, depth + 1),
        PartType::Multipart(children) => {
            // A nested multipart: walk its children in the same message.
            let mut p = part;
            for &k in rest {
                match &p.body {
                    PartType::Multipart(ch) => {
                        p = m.parts.get(*ch.get(k.checked_sub(1)? as usize)? as usize)?
                    }
                    _ => return None,
                }
            }
            let _ = children;
            Some((m.raw_message(), p))
        }
        _ => None,
    }
}

fn apply(msg: &[u8], spec: &Spec) -> Vec<u8> {
    let split = header_len(msg);
    match spec {
        Spec::Whole => msg.to_vec(),
        Spec::Header | Spec::Mime => msg[..split].to_vec(),
        Spec::Text => msg[split..].to_vec(),
        Spec::Fields { names, not } => {
            let mut out = Vec::new();
            for field in fields(&msg[..split]) {
                let name = field.split(|&b| b == b':').next().unwrap_or(b"");
                let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
                if names.contains(&name) != *not {
                    out.extend_from_slice(field);
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    }
}

/// Length of the header section, including the empty line that ends it.
pub fn header_len(msg: &[u8]) -> usize {
    if msg.starts_with(b"\r\n") {
        return 2;
    }
    memchr::memmem::find(msg, b"\r\n\r\n").map_or(msg.len(), |i| i + 4)
}

/// Each header field with its continuation lines and CRLF.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < head.len() {
        let end = memchr::memchr(b'\n', &head[i..]).map_or(head.len(), |k| i + k + 1);
        let next_is_continuation = head.get(end).is_some_and(|&b| b == b' ' || b == b'\t');
        if !next_is_continuation {
            let f = &head[start..end];
            if f != b"\r\n" && !f.is_empty() {
                out.push(f);
            }
            start = end;
        }
        i = end;
    }
    out
}

#[cfg(test)]
#[path = "mime_tests.rs"]
mod tests;
