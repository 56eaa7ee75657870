//! Builds a message from smtp-send's flags or prompts: headers, text body, attachments (MIME via
//! mail-builder, content type from the file extension). Date and Message-ID are added.

use std::path::Path;

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

/// What to put in the message.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// Files to attach.
    pub attachments: Vec<std::path::PathBuf>,
    /// Extra `Name: value` headers.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("cannot read the attachment {path}: {error}")]
    Attachment { path: String, error: std::io::Error },
    #[error("bad --header {0:?}: expected \"Name: value\"")]
    Header(String),
    #[error("cannot build the message: {0}")]
    Build(std::io::Error),
}

/// Content type by file extension (common types; anything else is application/octet-stream).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "text" | "log" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "ics" => "text/calendar",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

/// Parses `Name: value`.
pub fn parse_header(h: &str) -> Result<(String, String), ComposeError> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| ComposeError::Header(h.to_string()))?;
    let name = name.trim();
    if name.is_empty()
        || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        || value.contains(['\r', '\n'])
    {
        return Err(ComposeError::Header(h.to_string()));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// The whole RFC 5322 message, CRLF line ends.
pub fn build(d: &Draft) -> Result<Vec<u8>, ComposeError> {
    let mut files = Vec::new();
    for p in &d.attachments {
        let bytes = std::fs::read(p).map_err(|error| ComposeError::Attachment {
            path: p.display().to_string(),
            error,
        })?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        files.push((content_type(p), name, bytes));
    }
    let mut m = MessageBuilder::new()
        .from(d.from.as_str())
        .subject(d.subject.as_str())
        .text_body(d.body.as_str());
    if !d.to.is_empty() {
        m = m.to(d.to.iter().map(String::as_str).collect::<Vec<_>>());
    }
    if !d.cc.is_empty() {
        m = m.cc(d.cc.iter().map(String::as_str).collect::<Vec<_>>());
    }
    for (name, value) in &d.headers {
        m = m.header(name.clone(), Raw::new(value.clone()));
    }
    for (ct, name, bytes) in files {
        m = m.attachment(ct, name, bytes);
    }
    m.write_to_vec().map_err(ComposeError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_date_and_message_id() {
        let d = Draft {
            from: "a@b.test".into(),
            to: vec!["c@d.test".into()],
            subject: "Hello".into(),
            body: "Line one\n.dot line\n".into(),
            headers: vec![("X-Test".into(), "yes".into())],
            ..Default::default()
        };
        let text = String::from_utf8(build(&d).unwrap()).unwrap();
        for h in [
            "From: ",
            "To: ",
            "Subject: Hello",
            "Date: ",
            "Message-ID: <",
            "X-Test: yes",
        ] {
            assert!(text.contains(h), "{h} missing:\n{text}");
        }
    }

    #[test]
    fn headers_and_types() {
        assert_eq!(
            parse_header("X-A: b c").unwrap(),
            ("X-A".into(), "b c".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": v").is_err());
        assert!(parse_header("X: a\r\nInjected: 1").is_err());
        assert_eq!(content_type(Path::new("/x/report.PDF")), "application/pdf");
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
