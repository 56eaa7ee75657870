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
}
