//! The scripted `smtp-send`: the message flags (or a whole message on stdin, as sendmail reads
//! it) to a message, one send, and the result shown as text or JSON with its exit status.

use std::io::{IsTerminal, Read};

use serde_json::json;

use super::compose::{self, Draft};
use super::exit::{Failure, Status};
use super::prompt::{Screen, Stderr, Stdout};
use super::smtp::{ClientError, LineHook, Outcome};
use super::target::{self, deliver, local_name, resolve};
use crate::cli::smtp_send::MessageArgs;
use crate::outln;

/// Any flag that asks for a scripted send.
pub fn any_message_flag(m: &MessageArgs) -> bool {
    m.from.is_some()
        || !m.to.is_empty()
        || !m.cc.is_empty()
        || m.subject.is_some()
        || m.body.is_some()
        || m.body_file.is_some()
        || m.data.is_some()
        || !m.attach.is_empty()
        || !m.header.is_empty()
}

/// Sends the message the flags describe to `host`:`port` and shows the result.
pub fn run(host: &str, port: u16, m: MessageArgs) -> Result<Status, Failure> {
    let (from, rcpts) = envelope(&m)?;
    let stdin_message =
        m.body.is_none() && m.body_file.is_none() && !std::io::stdin().is_terminal();
    let message = message(&m, &from, stdin_message, &mut std::io::stdin())?;
    let addr = resolve(host, port).map_err(Failure::connection)?;
    let json_out = m.json;
    let hook: Option<LineHook> = m.verbose.then(|| {
        Box::new(move |line: &str| {
            if json_out {
                eprintln!("{line}");
            } else {
                outln!("{line}");
            }
        }) as LineHook
    });
    let ehlo = m.ehlo.clone().unwrap_or_else(local_name);
    let target = target::target(&m, addr, &ehlo, host).map_err(Failure::usage)?;
    let result = target::runtime().block_on(deliver(&target, &from, &rcpts, &message, hook));
    report(result, &message, m.json, &mut Stdout, &mut Stderr)
}

/// The sender and the recipients (--to, then --cc).
fn envelope(m: &MessageArgs) -> Result<(String, Vec<String>), Failure> {
    let Some(from) = m.from.clone() else {
        return Err(Failure::usage(
            "--from is required to send (or run without message flags for the menu)",
        ));
    };
    let mut rcpts: Vec<String> = m.to.clone();
    rcpts.extend(m.cc.iter().cloned());
    if rcpts.is_empty() {
        return Err(Failure::usage("give at least one --to (or --cc)"));
    }
    Ok((from, rcpts))
}

/// The message: --data as is, else `stdin` as is when `stdin_message` (stdin is not a terminal
/// and no --body or --body-file) and nothing asks to compose, else one composed from the flags.
fn message(
    m: &MessageArgs,
    from: &str,
    stdin_message: bool,
    stdin: &mut dyn Read,
) -> Result<Vec<u8>, Failure> {
    let read_all = |stdin: &mut dyn Read| {
        let mut v = Vec::new();
        stdin.read_to_end(&mut v).map(|_| v)
    };
    match (&m.data, stdin_message) {
        (Some(d), _) => {
            let r = if d == "-" {
                read_all(stdin)
            } else {
                std::fs::read(d)
            };
            r.map_err(|e| Failure::usage(format!("cannot read --data {d}: {e}")))
        }
        (None, true) if m.attach.is_empty() && m.subject.is_none() => read_all(stdin)
            .map_err(|e| Failure::usage(format!("cannot read the message from stdin: {e}"))),
        _ => {
            let body = match (&m.body, &m.body_file) {
                (Some(b), _) => b.clone(),
                (None, Some(f)) => std::fs::read_to_string(f).map_err(|e| {
                    Failure::usage(format!("cannot read --body-file {}: {e}", f.display()))
                })?,
                (None, None) => String::new(),
            };
            let mut headers = Vec::new();
            for h in &m.header {
                headers.push(compose::parse_header(h).map_err(Failure::usage)?);
            }
            let draft = Draft {
                from: from.to_string(),
                to: m.to.clone(),
                cc: m.cc.clone(),
                subject: m.subject.clone().unwrap_or_default(),
                body,
                attachments: m.attach.clone(),
                headers,
            };
            compose::build(&draft).map_err(Failure::usage)
        }
    }
}

/// Shows the result (text, or one JSON object on `out`) and says how smtp-send ends: delivered
/// to every recipient, refused (the message or a recipient), or a connection or protocol error.
fn report(
    result: Result<Outcome, ClientError>,
    message: &[u8],
    json_out: bool,
    out: &mut dyn Screen,
    err: &mut dyn Screen,
) -> Result<Status, Failure> {
    match result {
        Err(ClientError::TooBig { size, max }) => {
            if json_out {
                out.line(
                    &json!({"delivered": false, "error": format!("message of {size} octets is above the server's SIZE {max}")})
                    .to_string(),
                );
            }
            Err(Failure::rejected(format!(
                "not sent: the message is {size} octets and the server accepts at most {max} (SIZE)"
            )))
        }
        Err(e) => {
            if json_out {
                out.line(&json!({"delivered": false, "error": e.to_string()}).to_string());
            }
            Err(Failure::connection(e))
        }
        Ok(o) => {
            let all = o.delivered && o.rejected.is_empty();
            if json_out {
                let rejected: Vec<_> = o
                    .rejected
                    .iter()
                    .map(|(a, r)| json!({"address": a, "reply": r.last_line()}))
                    .collect();
                out.line(
                    &json!({
                        "delivered": o.delivered,
                        "accepted": if o.delivered { o.accepted.clone() } else { Vec::new() },
                        "rejected": rejected,
                        "reply": o.reply.last_line(),
                        "bytes": message.len(),
                    })
                    .to_string(),
                );
            } else {
                for (a, r) in &o.rejected {
                    err.line(&format!(
                        "smtp-send: recipient {a} refused: {}",
                        r.last_line()
                    ));
                }
                if o.delivered {
                    out.line(&format!(
                        "delivered to {}: {}",
                        o.accepted.join(", "),
                        o.reply.last_line()
                    ));
                } else {
                    err.line(&format!(
                        "smtp-send: not delivered: {}",
                        o.reply.last_line()
                    ));
                }
            }
            Ok(if all { Status::Done } else { Status::Rejected })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::smtp::Reply;

    fn args(from: Option<&str>, to: &[&str]) -> MessageArgs {
        MessageArgs {
            from: from.map(str::to_string),
            to: to.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            lines: vec![text.to_string()],
        }
    }

    fn outcome(delivered: bool, accepted: &[&str], rejected: &[&str]) -> Outcome {
        Outcome {
            accepted: accepted.iter().map(|a| a.to_string()).collect(),
            rejected: rejected
                .iter()
                .map(|r| (r.to_string(), reply(550, "5.1.1 no such user")))
                .collect(),
            reply: reply(if delivered { 250 } else { 554 }, "done"),
            delivered,
        }
    }

    /// `report` with `json_out`: (status or failure, stdout lines, stderr lines).
    fn shown(
        result: Result<Outcome, ClientError>,
        json_out: bool,
    ) -> (Result<Status, Failure>, Vec<String>, Vec<String>) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = report(result, b"12345", json_out, &mut out, &mut err);
        (status, out, err)
    }

    /// --from and a recipient are needed (usage errors); --cc recipients follow the --to ones.
    #[test]
    fn envelope_needs_a_sender_and_a_recipient() {
        let e = envelope(&args(None, &["bob@example.test"])).unwrap_err();
        assert_eq!(e.status, Status::Usage);
        assert!(e.message.starts_with("--from is required"));
        let e = envelope(&args(Some("a@b.test"), &[])).unwrap_err();
        assert_eq!(e, Failure::usage("give at least one --to (or --cc)"));
        let mut m = args(Some("a@b.test"), &["bob@example.test"]);
        m.cc = vec!["carol@localhost".into()];
        let (from, rcpts) = envelope(&m).unwrap();
        assert_eq!(from, "a@b.test");
        assert_eq!(rcpts, ["bob@example.test", "carol@localhost"]);
    }

    /// stdin is sent as is when it is the message, unless --subject or --attach asks to
    /// compose; --data - reads it whatever stdin is.
    #[test]
    fn message_from_stdin_or_composed() {
        let raw = b"Subject: raw\r\n\r\nas is\r\n";
        let m = args(Some("a@b.test"), &["bob@example.test"]);
        assert_eq!(message(&m, "a@b.test", true, &mut &raw[..]).unwrap(), raw);
        let mut data = args(Some("a@b.test"), &["bob@example.test"]);
        data.data = Some("-".into());
        assert_eq!(
            message(&data, "a@b.test", false, &mut &raw[..]).unwrap(),
            raw
        );
        let mut subject = args(Some("a@b.test"), &["bob@example.test"]);
        subject.subject = Some("composed".into());
        let built = message(&subject, "a@b.test", true, &mut &raw[..]).unwrap();
        let built = String::from_utf8(built).unwrap();
        assert!(built.contains("Subject: composed") && !built.contains("as is"));
        let composed = message(&m, "a@b.test", false, &mut &raw[..]).unwrap();
        assert!(!String::from_utf8(composed).unwrap().contains("as is"));
    }

    /// Unreadable files and a malformed --header are usage errors naming the flag.
    #[test]
    fn message_errors_are_usage_errors() {
        let mut m = args(Some("a@b.test"), &["bob@example.test"]);
        m.data = Some("/nonexistent/message.eml".into());
        let e = message(&m, "a@b.test", false, &mut std::io::empty()).unwrap_err();
        assert_eq!(e.status, Status::Usage);
        assert!(
            e.message
                .starts_with("cannot read --data /nonexistent/message.eml: ")
        );
        let mut m = args(Some("a@b.test"), &["bob@example.test"]);
        m.body_file = Some("/nonexistent/body.txt".into());
        let e = message(&m, "a@b.test", false, &mut std::io::empty()).unwrap_err();
        assert!(
            e.message
                .starts_with("cannot read --body-file /nonexistent/body.txt: ")
        );
        let mut m = args(Some("a@b.test"), &["bob@example.test"]);
        m.header = vec!["no colon".into()];
        let e = message(&m, "a@b.test", false, &mut std::io::empty()).unwrap_err();
        assert_eq!(e.status, Status::Usage);
    }

    /// Delivered to all: status 0 and one stdout line; a refused recipient: status 1 with the
    /// refusal on stderr; not delivered: status 1.
    #[test]
    fn outcomes_to_statuses() {
        let (s, out, err) = shown(Ok(outcome(true, &["bob@example.test"], &[])), false);
        assert_eq!(s, Ok(Status::Done));
        assert_eq!(out, ["delivered to bob@example.test: 250 done"]);
        assert!(err.is_empty());
        let (s, out, err) = shown(Ok(outcome(true, &["a@x.test"], &["b@x.test"])), false);
        assert_eq!(s, Ok(Status::Rejected));
        assert_eq!(out.len(), 1);
        assert_eq!(
            err,
            ["smtp-send: recipient b@x.test refused: 550 5.1.1 no such user"]
        );
        let (s, out, err) = shown(Ok(outcome(false, &[], &[])), false);
        assert_eq!(s, Ok(Status::Rejected));
        assert!(out.is_empty());
        assert_eq!(err, ["smtp-send: not delivered: 554 done"]);
    }

    /// A message above SIZE is refused (1), a broken dialogue a connection error (3); with
    /// --json each still prints one object.
    #[test]
    fn errors_to_statuses() {
        let (s, out, _) = shown(Err(ClientError::TooBig { size: 9, max: 5 }), true);
        let f = s.unwrap_err();
        assert_eq!(f.status, Status::Rejected);
        assert!(
            f.message
                .contains("9 octets and the server accepts at most 5")
        );
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(v["delivered"], false);
        let (s, out, _) = shown(Err(ClientError::Closed), false);
        assert_eq!(
            s,
            Err(Failure::connection("the server closed the connection"))
        );
        assert!(out.is_empty());
    }

    /// --json: the accepted list is empty unless delivered, with the byte count and refusals.
    #[test]
    fn json_report() {
        let (s, out, err) = shown(Ok(outcome(false, &["a@x.test"], &["b@x.test"])), true);
        assert_eq!(s, Ok(Status::Rejected));
        assert!(err.is_empty());
        let v: serde_json::Value = serde_json::from_str(&out[0]).unwrap();
        assert_eq!(v["accepted"], json!([]));
        assert_eq!(v["bytes"], 5);
        assert_eq!(v["rejected"][0]["address"], "b@x.test");
        assert_eq!(v["reply"], "554 done");
    }
}
