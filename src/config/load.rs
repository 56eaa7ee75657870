//! TOML → [`Config`], collecting every problem with its line instead of stopping at the first.
//!
//! The document is parsed with spans (`toml::de::DeTable`), then walked key by key against the
//! schema (`walk`, one function per section, reading values with the helpers in `values`):
//! unknown keys, wrong types and bad values are each reported where they stand. Which keys a
//! section may hold comes from [`super::schema`], and every default from the `Default` impls.

mod acme;
mod dkim;
mod relay;
mod values;
mod walk;

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::schema::known_keys;
use super::{Config, ConfigError, Problem};

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read the configuration file: {e}"),
        }],
    })?;
    parse(&text, path)
}

/// Validates `text` as if read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut l = Loader {
        src: text,
        problems: Vec::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    for e in syntax {
        let line = e.span().map(|s| l.line_of(s.start)).unwrap_or(0);
        l.problems.push(Problem {
            line,
            message: e.message().trim().to_string(),
        });
    }
    if !l.problems.is_empty() {
        // After a syntax error the tree is a best guess; do not pile up follow-on errors.
        return Err(l.finish_err(path));
    }
    let config = l.config(doc.get_ref(), path);
    if l.problems.is_empty() {
        Ok(config)
    } else {
        Err(l.finish_err(path))
    }
}

struct Loader<'s> {
    src: &'s str,
    problems: Vec<Problem>,
}

/// One table being read; `name` is its section in [`super::schema`] (`""`: the top level).
struct Section<'t, 'i> {
    table: Option<&'t DeTable<'i>>,
    name: &'static str,
}

impl<'s> Loader<'s> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line where `key = ...` is first set (for problems found after parsing).
    fn key_line(&self, key: &str) -> usize {
        self.src
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.starts_with(key) && l[key.len()..].trim_start().starts_with('=')
            })
            .map(|i| i + 1)
            .unwrap_or(1)
    }

    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = self.line_of(span.start);
        self.problems.push(Problem {
            line,
            message: message.into(),
        });
    }

    fn finish_err(mut self, path: &Path) -> ConfigError {
        self.problems.sort_by_key(|p| p.line);
        ConfigError {
            path: path.to_path_buf(),
            problems: self.problems,
        }
    }

    fn section<'t, 'i>(&mut self, root: &Section<'t, 'i>, name: &'static str) -> Section<'t, 'i> {
        let table = match self.value(root, name) {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Some(t),
                other => {
                    self.problem(
                        v.span(),
                        format!("[{name}] must be a table, not {}", other.type_str()),
                    );
                    None
                }
            },
        };
        Section { table, name }
    }

    /// Reports keys the schema does not know.
    fn finish(&mut self, s: Section) {
        let Some(t) = s.table else { return };
        let known = known_keys(s.name);
        for (k, _) in t.iter() {
            let key: &str = k.get_ref();
            if !known.contains(&key) {
                let known = known.join(", ");
                let place = if s.name.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in [{}]", s.name)
                };
                self.problem(
                    k.span(),
                    format!("unknown key `{key}` {place} (known keys: {known})"),
                );
            }
        }
    }

    /// The value of `key` in `s`, if set; `key` must be one the schema knows.
    fn value<'t, 'i>(
        &mut self,
        s: &Section<'t, 'i>,
        key: &str,
    ) -> Option<&'t Spanned<DeValue<'i>>> {
        debug_assert!(
            known_keys(s.name).contains(&key),
            "[{}] {key} is read but not in config::schema",
            s.name
        );
        s.table.and_then(|t| find(t, key))
    }
}

fn find<'t, 'i>(t: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    t.iter()
        .find(|(k, _)| {
            let k: &str = k.get_ref();
            k == key
        })
        .map(|(_, v)| v)
}

fn qualified(s: &Section, key: &str) -> String {
    if s.name.is_empty() {
        key.to_string()
    } else {
        format!("{}.{key}", s.name)
    }
}

#[cfg(test)]
mod tests;
