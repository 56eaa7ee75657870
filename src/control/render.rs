//! Text for people of the replies that are more than a line (smtpctl's default output).

use super::proto::QueuedMessage;

/// `smtpctl queue`: one line per message (id, age, size, sender), then one per recipient
/// (state, attempts, last error).
pub fn queue(list: &[QueuedMessage]) -> String {
    if list.is_empty() {
        return "the queue is empty\n".into();
    }
    let mut out = String::new();
    for m in list {
        let sender = if m.sender.is_empty() { "<>" } else { &m.sender };
        out.push_str(&format!(
            "{}  {}s old  {} octets  from {sender}{}\n",
            m.id,
            m.age_secs,
            m.size,
            if m.held { "  (held)" } else { "" }
        ));
        for r in &m.recipients {
            out.push_str(&format!(
                "    {:<9} {}  ({} {}){}\n",
                r.state,
                r.address,
                r.attempts,
                if r.attempts == 1 { "try" } else { "tries" },
                r.last_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// `smtpctl wait`: the message found (the JSON of the HTTP API's summary), one field a line.
pub fn found(m: &serde_json::Value) -> String {
    let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
    let to: Vec<&str> = m["to"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut out = format!("{}\n", text("id"));
    for (name, value) in [
        ("mailbox", text("mailbox")),
        ("from", text("from")),
        ("to", to.join(", ")),
        ("subject", text("subject")),
        ("date", text("date")),
        ("delivered", text("delivered")),
        (
            "size",
            format!(
                "{} octets, {} attachments",
                m["size"].as_u64().unwrap_or(0),
                m["attachments"].as_u64().unwrap_or(0)
            ),
        ),
        ("snippet", text("snippet")),
    ] {
        out.push_str(&format!("  {:<10} {value}\n", format!("{name}:")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::QueuedRecipient;

    #[test]
    fn one_line_per_message_and_recipient() {
        let m = QueuedMessage {
            id: "ABC".into(),
            sender: String::new(),
            age_secs: 12,
            size: 345,
            held: true,
            recipients: vec![QueuedRecipient {
                address: "x@far.test".into(),
                state: "held".into(),
                attempts: 1,
                last_error: Some("451 4.0.0 later".into()),
                next_try: Some(99),
            }],
        };
        assert_eq!(
            queue(&[m]),
            "ABC  12s old  345 octets  from <>  (held)\n    held      x@far.test  (1 try): 451 4.0.0 later\n"
        );
        assert_eq!(queue(&[]), "the queue is empty\n");
    }

    #[test]
    fn found_message() {
        let m = serde_json::json!({"id": "bob@example.test~1.M2P3Q4.h", "mailbox": "bob@example.test",
            "from": "alice@b.test", "to": ["bob@example.test", "c@d.test"], "subject": "Hi",
            "date": null, "delivered": "2026-12-02T06:56:21.769065Z", "size": 455,
            "attachments": 1, "snippet": "Your code is 123456"});
        assert_eq!(
            found(&m),
            "bob@example.test~1.M2P3Q4.h\n  mailbox:   bob@example.test\n  from:      alice@b.test\n  to:        bob@example.test, c@d.test\n  subject:   Hi\n  date:      \n  delivered: 2026-12-02T06:56:21.769065Z\n  size:      455 octets, 1 attachments\n  snippet:   Your code is 123456\n"
        );
    }
}
