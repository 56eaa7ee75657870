//! The interactive `smtp-send`: the original student client's menu ("1) Send a message 2) Send a
//! test message 3) Quit"), asking for each field and showing the server's replies as they come.
//! [`run`] wires it to the terminal and the server; [`session`] is the menu itself, over
//! [`Answers`], a [`Screen`] and a send function.

use std::io::Write;

use super::compose::{self, Draft};
use super::exit::{Failure, Status};
use super::prompt::{Answers, Prompter, Screen, Stdout};
use super::smtp::{ClientError, LineHook, Outcome};
use super::target::{self, deliver, local_name, resolve};
use crate::cli::smtp_send::MessageArgs;
use crate::outln;

/// What the person picked.
#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    Send,
    Test,
    Quit,
    Unknown(String),
}

impl Choice {
    /// "1", "2", "3" (or "q", "quit"), surrounding spaces ignored.
    pub fn parse(answer: &str) -> Choice {
        match answer.trim() {
            "1" => Choice::Send,
            "2" => Choice::Test,
            "3" | "q" | "quit" => Choice::Quit,
            other => Choice::Unknown(other.to_string()),
        }
    }
}

/// Why a send from the menu did not reach the server's verdict.
#[derive(Debug)]
pub enum SendError {
    /// The connection settings could not be made (TLS setup, the AUTH password).
    Setup(String),
    /// The dialogue failed.
    Client(ClientError),
}

/// Sends one built message: `(from, to, message)`.
pub type SendMessage<'a> = dyn FnMut(&str, &[String], &[u8]) -> Result<Outcome, SendError> + 'a;

/// The comma-separated recipients, trimmed, empty ones dropped.
pub fn recipients(list: &str) -> Vec<String> {
    list.split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Body lines up to one holding only "." or "FIN" (not kept), or the end of input.
pub fn body(p: &mut dyn Answers) -> String {
    let mut body = String::new();
    while let Some(line) = p.body_line() {
        if line == "." || line == "FIN" {
            break;
        }
        body.push_str(&line);
        body.push('\n');
    }
    body
}

/// The original client's menu: send a message, send a test message, quit.
pub fn run(host: &str, port: u16, m: &MessageArgs) -> Result<Status, Failure> {
    let addr = resolve(host, port).map_err(Failure::connection)?;
    let rt = target::runtime();
    let ehlo = m.ehlo.clone().unwrap_or_else(local_name);
    let mut send = |from: &str, to: &[String], message: &[u8]| {
        // Server replies as they arrive.
        let hook: LineHook = Box::new(|line: &str| {
            if let Some(s) = line.strip_prefix("S: ") {
                outln!("  {s}");
                let _ = std::io::stdout().flush();
            }
        });
        let target = target::target(m, addr, &ehlo, host).map_err(SendError::Setup)?;
        rt.block_on(deliver(&target, from, to, message, Some(hook)))
            .map_err(SendError::Client)
    };
    let mut p = Prompter::new();
    outln!("smtp-send: server {host}:{port}");
    session(&mut p, &mut Stdout, &local_name(), &mut send);
    Ok(Status::Done)
}

/// The menu until "3" or the end of input; `hostname` names the test message's sender.
pub fn session(
    p: &mut dyn Answers,
    screen: &mut dyn Screen,
    hostname: &str,
    send: &mut SendMessage,
) {
    loop {
        screen.line("");
        screen.line("1) Send a message");
        screen.line("2) Send a test message");
        screen.line("3) Quit");
        let Some(choice) = p.field("Choice: ") else {
            return;
        };
        let (from, to, subject, body) = match Choice::parse(&choice) {
            Choice::Send => {
                let Some(from) = p.field("From: ") else {
                    return;
                };
                let Some(to) = p.field("To (comma-separated): ") else {
                    return;
                };
                let Some(subject) = p.field("Subject: ") else {
                    return;
                };
                screen.line("Body (end with a line holding only \".\" or \"FIN\"):");
                (from, to, subject, body(p))
            }
            Choice::Test => {
                let Some(to) = p.field("To [postmaster@localhost]: ") else {
                    return;
                };
                let to = if to.trim().is_empty() {
                    "postmaster@localhost".to_string()
                } else {
                    to
                };
                (
                    format!("smtp-send@{hostname}"),
                    to,
                    "smtp-send test message".to_string(),
                    "This is a test message sent by smtp-send.\n".to_string(),
                )
            }
            Choice::Quit => return,
            Choice::Unknown(other) => {
                screen.line(&format!("Unknown choice {other:?}: type 1, 2 or 3."));
                continue;
            }
        };
        let to = recipients(&to);
        if from.trim().is_empty() || to.is_empty() {
            screen.line("A sender and at least one recipient are needed.");
            continue;
        }
        let draft = Draft {
            from: from.trim().to_string(),
            to: to.clone(),
            subject,
            body,
            ..Default::default()
        };
        let message = match compose::build(&draft) {
            Ok(v) => v,
            Err(e) => {
                screen.line(&format!("Cannot build the message: {e}"));
                continue;
            }
        };
        match send(&draft.from, &to, &message) {
            Ok(o) => {
                for (a, r) in &o.rejected {
                    screen.line(&format!("Recipient {a} refused: {}", r.last_line()));
                }
                if o.delivered {
                    screen.line(&format!("Message delivered to {}.", o.accepted.join(", ")));
                } else {
                    screen.line(&format!("Message not delivered: {}", o.reply.last_line()));
                }
            }
            Err(SendError::Setup(e)) => screen.line(&e),
            Err(SendError::Client(e)) => screen.line(&format!("Sending failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::smtp::Reply;
    use std::collections::VecDeque;

    /// Answers typed in advance; the prompts asked are kept.
    #[derive(Default)]
    struct Typed {
        answers: VecDeque<&'static str>,
        prompts: Vec<String>,
    }

    impl Answers for Typed {
        fn field(&mut self, prompt: &str) -> Option<String> {
            self.prompts.push(prompt.to_string());
            self.answers.pop_front().map(str::to_string)
        }
        fn body_line(&mut self) -> Option<String> {
            self.answers.pop_front().map(str::to_string)
        }
    }

    fn typed(answers: &[&'static str]) -> Typed {
        Typed {
            answers: answers.iter().copied().collect(),
            ..Default::default()
        }
    }

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            lines: vec![text.to_string()],
        }
    }

    /// A sent message, as the send function saw it.
    struct Sent {
        from: String,
        to: Vec<String>,
        message: String,
    }

    /// Runs the menu on `answers` with a server that accepts every recipient but
    /// "nobody@elsewhere.test"; returns the screen and what was sent.
    fn menu(answers: &[&'static str]) -> (Vec<String>, Vec<Sent>) {
        let mut screen = Vec::new();
        let mut sent = Vec::new();
        let mut send = |from: &str, to: &[String], message: &[u8]| {
            sent.push(Sent {
                from: from.to_string(),
                to: to.to_vec(),
                message: String::from_utf8_lossy(message).into_owned(),
            });
            let (accepted, rejected): (Vec<_>, Vec<_>) = to
                .iter()
                .cloned()
                .partition(|t| t != "nobody@elsewhere.test");
            Ok(Outcome {
                delivered: !accepted.is_empty(),
                accepted,
                rejected: rejected
                    .into_iter()
                    .map(|t| (t, reply(550, "5.7.1 relaying denied")))
                    .collect(),
                reply: reply(250, "2.0.0 queued"),
            })
        };
        session(&mut typed(answers), &mut screen, "me.test", &mut send);
        (screen, sent)
    }

    #[test]
    fn choices() {
        assert_eq!(Choice::parse(" 1 "), Choice::Send);
        assert_eq!(Choice::parse("2"), Choice::Test);
        for quit in ["3", "q", "quit"] {
            assert_eq!(Choice::parse(quit), Choice::Quit);
        }
        assert_eq!(Choice::parse("Q"), Choice::Unknown("Q".into()));
        assert_eq!(Choice::parse(""), Choice::Unknown(String::new()));
    }

    #[test]
    fn recipient_lists() {
        assert_eq!(
            recipients(" bob@example.test, ,carol@localhost ,"),
            ["bob@example.test", "carol@localhost"]
        );
        assert!(recipients(" , ").is_empty());
    }

    /// "." and "FIN" end the body only alone on their line; a dotted line is kept; the end of
    /// input ends it too.
    #[test]
    fn body_ends_at_a_lone_dot_or_fin() {
        let mut p = typed(&[".leading dot", "FIN.", " .", ".", "after"]);
        assert_eq!(body(&mut p), ".leading dot\nFIN.\n .\n");
        assert_eq!(body(&mut typed(&["x", "FIN", "after"])), "x\n");
        assert_eq!(body(&mut typed(&["no end"])), "no end\n");
    }

    /// Choice 1 asks From, To, Subject and the body, sends to the listed recipients, and shows
    /// a refused one before the delivery; then 3 quits.
    #[test]
    fn send_a_message_then_quit() {
        let (screen, sent) = menu(&[
            "1",
            " alice@b.test ",
            "bob@example.test, nobody@elsewhere.test",
            "Typed by hand",
            "Hello Bob,",
            "FIN",
            "3",
        ]);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].from, "alice@b.test");
        assert_eq!(sent[0].to, ["bob@example.test", "nobody@elsewhere.test"]);
        assert!(sent[0].message.contains("Subject: Typed by hand"));
        assert!(sent[0].message.contains("Hello Bob,"));
        let shown = screen.join("\n");
        assert!(shown.contains(
            "Recipient nobody@elsewhere.test refused: 550 5.7.1 relaying denied\n\
             Message delivered to bob@example.test.\n"
        ));
        assert_eq!(
            screen.iter().filter(|l| *l == "1) Send a message").count(),
            2
        );
    }

    /// Choice 2 with an empty answer sends the test message to postmaster@localhost from
    /// smtp-send@<this host>; the end of input leaves the menu.
    #[test]
    fn test_message_defaults() {
        let (screen, sent) = menu(&["2", "  "]);
        assert_eq!(sent[0].from, "smtp-send@me.test");
        assert_eq!(sent[0].to, ["postmaster@localhost"]);
        assert!(
            sent[0]
                .message
                .contains("This is a test message sent by smtp-send.")
        );
        let tail = &screen[screen.len() - 5..];
        assert_eq!(
            tail,
            [
                "Message delivered to postmaster@localhost.",
                "",
                "1) Send a message",
                "2) Send a test message",
                "3) Quit"
            ]
        );
    }

    /// An unknown choice, a missing sender or no recipients send nothing and show the menu
    /// again; a refused message and a failed dialogue are shown, and the menu goes on.
    #[test]
    fn mistakes_and_failures_keep_the_menu() {
        let (screen, sent) = menu(&[
            "9",
            "1",
            " ",
            "bob@example.test",
            "s",
            ".",
            "1",
            "a@b.test",
            ",",
            "s",
            ".",
        ]);
        assert!(sent.is_empty());
        assert!(screen.contains(&"Unknown choice \"9\": type 1, 2 or 3.".to_string()));
        let needed = "A sender and at least one recipient are needed.";
        assert_eq!(screen.iter().filter(|l| *l == needed).count(), 2);

        let mut screen = Vec::new();
        let mut failures = [
            Err(SendError::Setup("cannot read the password: no tty".into())),
            Err(SendError::Client(ClientError::Closed)),
            Ok(Outcome {
                accepted: Vec::new(),
                rejected: Vec::new(),
                reply: reply(554, "5.3.4 too big"),
                delivered: false,
            }),
        ]
        .into_iter();
        let mut send = |_: &str, _: &[String], _: &[u8]| failures.next().unwrap();
        let mut p = typed(&["2", "", "2", "", "2", "", "3"]);
        session(&mut p, &mut screen, "me.test", &mut send);
        let shown = screen.join("\n");
        assert!(
            shown.contains("\ncannot read the password: no tty\n"),
            "{shown}"
        );
        assert!(shown.contains("Sending failed: the server closed the connection"));
        assert!(shown.contains("Message not delivered: 554 5.3.4 too big"));
        assert_eq!(p.prompts.last().unwrap(), "Choice: ");
    }
}
