//! Reading one value: each helper takes the key's default (from a `Default` impl), reports a
//! wrong type or a bad value where it stands, and then falls back to the default.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::DeValue;

use super::{Loader, Section, qualified};

impl Loader<'_> {
    pub(super) fn type_error(&mut self, s: &Section, key: &str, v: &Spanned<DeValue>, want: &str) {
        let name = qualified(s, key);
        self.problem(
            v.span(),
            format!("`{name}` must be {want}, not {}", v.get_ref().type_str()),
        );
    }

    /// A string; when not set, `default` with the empty span `0..0`.
    pub(super) fn string(
        &mut self,
        s: &Section,
        key: &'static str,
        default: &str,
    ) -> Spanned<String> {
        match self.value(s, key) {
            None => Spanned::new(0..0, default.to_string()),
            Some(v) => match v.get_ref() {
                DeValue::String(x) => Spanned::new(v.span(), x.to_string()),
                _ => {
                    self.type_error(s, key, v, "a string");
                    Spanned::new(v.span(), default.to_string())
                }
            },
        }
    }

    pub(super) fn path(&mut self, s: &Section, key: &'static str, default: &Path) -> PathBuf {
        PathBuf::from(self.string(s, key, &default.to_string_lossy()).into_inner())
    }

    pub(super) fn boolean(&mut self, s: &Section, key: &'static str, default: bool) -> bool {
        match self.value(s, key) {
            None => default,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    self.type_error(s, key, v, "true or false");
                    default
                }
            },
        }
    }

    /// A non-negative integer of at least `min`.
    pub(super) fn uint(&mut self, s: &Section, key: &'static str, default: u64, min: u64) -> u64 {
        let Some(v) = self.value(s, key) else {
            return default;
        };
        let DeValue::Integer(i) = v.get_ref() else {
            self.type_error(s, key, v, "an integer");
            return default;
        };
        let digits = i.as_str().replace('_', "");
        let parsed = match digits.strip_prefix('+').unwrap_or(&digits) {
            d if i.radix() == 10 => d.parse::<u64>().ok(),
            d => u64::from_str_radix(d, i.radix()).ok(),
        };
        match parsed {
            Some(n) if n >= min => n,
            _ => {
                let name = qualified(s, key);
                self.problem(
                    v.span(),
                    format!(
                        "`{name}` must be a whole number of at least {min}, not {}",
                        i.as_str()
                    ),
                );
                default
            }
        }
    }

    pub(super) fn usize(
        &mut self,
        s: &Section,
        key: &'static str,
        default: usize,
        min: usize,
    ) -> usize {
        let n = self.uint(s, key, default as u64, min as u64);
        usize::try_from(n).unwrap_or(usize::MAX)
    }

    /// An array of strings, each with its span (`0..0` for the default's).
    pub(super) fn strings(
        &mut self,
        s: &Section,
        key: &'static str,
        default: &[String],
    ) -> Vec<Spanned<String>> {
        let fallback = || {
            default
                .iter()
                .map(|d| Spanned::new(0..0, d.clone()))
                .collect()
        };
        let Some(v) = self.value(s, key) else {
            return fallback();
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.type_error(s, key, v, "an array of strings");
            return fallback();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(x) => out.push(Spanned::new(item.span(), x.to_string())),
                other => {
                    let name = qualified(s, key);
                    self.problem(
                        item.span(),
                        format!("`{name}` must hold strings, not {}", other.type_str()),
                    );
                }
            }
        }
        out
    }

    /// An array of `IP:PORT` listening addresses; each one (the default's too) must be new to
    /// `seen` unless its port is 0.
    pub(super) fn addresses(
        &mut self,
        s: &Section,
        key: &'static str,
        default: &[SocketAddr],
        seen: &mut BTreeSet<SocketAddr>,
    ) -> Vec<SocketAddr> {
        let default: Vec<String> = default.iter().map(ToString::to_string).collect();
        let mut out = Vec::new();
        for item in self.strings(s, key, &default) {
            match item.get_ref().parse::<SocketAddr>() {
                Ok(a) => {
                    if a.port() != 0 && !seen.insert(a) {
                        self.problem(
                            item.span(),
                            format!("`{a}` is listed twice among the listeners"),
                        );
                    }
                    out.push(a);
                }
                Err(_) => {
                    let name = qualified(s, key);
                    self.problem(
                        item.span(),
                        format!(
                            "`{name}`: `{}` is not an IP:PORT address (e.g. \"127.0.0.1:2525\" or \"[::1]:2525\"; names are not resolved)",
                            item.get_ref()
                        ),
                    );
                }
            }
        }
        out
    }

    /// One of `options`, written as its name.
    pub(super) fn choice<T: Copy>(
        &mut self,
        s: &Section,
        key: &'static str,
        default: T,
        options: &[(&str, T)],
    ) -> T {
        let v = self.string(s, key, "");
        if v.span() == (0..0) {
            return default;
        }
        match options.iter().find(|(name, _)| *name == v.get_ref()) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                let name = qualified(s, key);
                self.problem(
                    v.span(),
                    format!(
                        "`{name}` must be one of {}, not \"{}\"",
                        names.join(", "),
                        v.get_ref()
                    ),
                );
                default
            }
        }
    }
}
