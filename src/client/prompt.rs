//! The terminal side of `smtp-send`: [`Answers`] read from the person (the [`Prompter`]: rustyline
//! line editing on a terminal, plain stdin lines otherwise) and the [`Screen`] lines are shown on.
//! The menu and the scripted sender take these traits, so their tests need no terminal.

use std::io::{BufRead, IsTerminal, Write};

use crate::{out, outln};

/// Where answers come from.
pub trait Answers {
    /// One answer; `None` at end of input (or Ctrl-C/Ctrl-D).
    fn field(&mut self, prompt: &str) -> Option<String>;

    /// A body line, without its line end; `None` at end of input.
    fn body_line(&mut self) -> Option<String>;
}

/// Where lines are shown.
pub trait Screen {
    /// Shows one line (its line end is added).
    fn line(&mut self, text: &str);
}

/// Standard output, through [`crate::cli::out`] (a reader that went away ends the program
/// quietly).
pub struct Stdout;

impl Screen for Stdout {
    fn line(&mut self, text: &str) {
        outln!("{text}");
    }
}

/// Standard error.
pub struct Stderr;

impl Screen for Stderr {
    fn line(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// Lines kept in order (the tests' screen).
impl Screen for Vec<String> {
    fn line(&mut self, text: &str) {
        self.push(text.to_string());
    }
}

/// Reads answers: with line editing and history on a terminal, plain lines otherwise.
pub enum Prompter {
    Tty(Box<rustyline::DefaultEditor>),
    Plain,
}

impl Prompter {
    pub fn new() -> Prompter {
        if std::io::stdin().is_terminal()
            && let Ok(rl) = rustyline::DefaultEditor::new()
        {
            return Prompter::Tty(Box::new(rl));
        }
        Prompter::Plain
    }

    fn plain_line() -> Option<String> {
        let _ = std::io::stdout().flush();
        read_line(&mut std::io::stdin().lock())
    }
}

impl Default for Prompter {
    fn default() -> Self {
        Self::new()
    }
}

impl Answers for Prompter {
    /// One answer; `None` at end of input (or Ctrl-C/Ctrl-D).
    fn field(&mut self, prompt: &str) -> Option<String> {
        match self {
            Prompter::Tty(rl) => match rl.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = rl.add_history_entry(line.as_str());
                    }
                    Some(line)
                }
                Err(_) => None,
            },
            Prompter::Plain => {
                out!("{prompt}");
                Self::plain_line()
            }
        }
    }

    /// A body line: plain reads even on a terminal, so pasted text is never lost.
    fn body_line(&mut self) -> Option<String> {
        Self::plain_line()
    }
}

/// One line without its CR LF or LF; `None` at end of input or on a read error.
fn read_line(input: &mut dyn BufRead) -> Option<String> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Piped answers may end in CR LF or LF, or not at all on the last line; end of input is
    /// `None`, and an empty line is an answer, not the end.
    #[test]
    fn plain_lines_lose_their_line_ends() {
        let mut input: &[u8] = b"alice@b.test\r\n\nlast";
        let lines: Vec<_> = std::iter::from_fn(|| read_line(&mut input)).collect();
        assert_eq!(lines, ["alice@b.test", "", "last"]);
    }
}
