//! The dependency rules of `src/lib.rs` ("Layers"), checked on the source: a path that breaks one
//! fails here with the file and line.
//!
//! Every `.rs` file under `src/` goes through one code path, [`check_file`]:
//! 1. a small tokenizer drops comments (line, doc, nested block) and string, char, byte and raw
//!    string literals, so neither `"http://x"` nor a `// crate::auth` can hide or fake a path;
//! 2. every `use` tree is expanded (`{...}` groups, nested, `self`, `*`, `as`), and every other
//!    path in the code (`crate::auth::x()`, `::tokio::spawn`, `$crate::net` in a macro) is read;
//! 3. each path is resolved: `crate`/`$crate`, `self` and `super` chains against the file's module
//!    (from its path under `src/`, and the inline `mod x { ... }` it sits in), `smtpd::` (the
//!    library, as the binaries name it), and names bound by the file's own `use ... [as ...]`;
//! 4. the rules of the file's layer are applied to the resolved paths (by path prefix), plus, in
//!    `proto`, the clock by tokens (`::now(`, `.elapsed(`).
//!
//! `the_checker_sees_every_violation` runs [`check_file`] on literal source text: each evasion a
//! review found must be caught, and ordinary code of each layer must not be.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

/// Which of the library's top-level modules a layer may name.
enum Modules {
    /// Only these (the layer itself is always among them).
    Only(&'static [&'static str]),
    /// Any but these.
    Not(&'static [&'static str]),
}

struct Rule {
    /// The layer, as named in messages and by the tree tests.
    layer: &'static str,
    /// Which files (paths under `src/`, with `/`) the rule holds for.
    files: fn(&str) -> bool,
    /// Path prefixes outside the crate that the layer must not name. `tokio` also stands for the
    /// `tokio_*` crates (`tokio_util`, `tokio_rustls`).
    banned: &'static [&'static str],
    modules: Modules,
    /// No clock: no `SystemTime::now`/`Instant::now` path and no `::now(` or `.elapsed(` token.
    no_clock: bool,
}

fn in_layer(file: &str, layer: &str) -> bool {
    file.strip_prefix(layer)
        .is_some_and(|rest| rest == ".rs" || rest.starts_with('/'))
}

const RULES: &[Rule] = &[
    // `proto` is sans-IO: no tokio, no files, no sockets, no environment, threads or processes,
    // no clock, and of the crate only itself and the leaf helpers. (Address types come from
    // `core::net`, which has no sockets.)
    Rule {
        layer: "proto",
        files: |f| in_layer(f, "proto"),
        banned: &[
            "tokio",
            "std::fs",
            "std::net",
            "std::env",
            "std::thread",
            "std::process",
        ],
        modules: Modules::Only(&["proto", "wire", "dsn", "testing"]),
        no_clock: true,
    },
    // `mailbox` (and the queue, once there is one) knows no sockets or protocols.
    Rule {
        layer: "mailbox",
        files: |f| in_layer(f, "mailbox"),
        banned: &["tokio", "std::net"],
        modules: Modules::Not(&[
            "net", "proto", "daemon", "control", "client", "cli", "outbound", "http",
        ]),
        no_clock: false,
    },
    Rule {
        layer: "queue",
        files: |f| in_layer(f, "queue"),
        banned: &["tokio", "std::net"],
        modules: Modules::Not(&[
            "net", "proto", "daemon", "control", "client", "cli", "outbound", "http",
        ]),
        no_clock: false,
    },
    // `config` is data: it knows no daemon, net, control or client.
    Rule {
        layer: "config",
        files: |f| in_layer(f, "config"),
        banned: &["tokio"],
        modules: Modules::Not(&["daemon", "net", "control", "client", "outbound", "http"]),
        no_clock: false,
    },
    // `dkim` is bytes in, bytes out: the key files are read by `config` and written by smtpctl.
    Rule {
        layer: "dkim",
        files: |f| in_layer(f, "dkim"),
        banned: &["tokio", "std::fs", "std::net"],
        modules: Modules::Only(&["dkim"]),
        no_clock: false,
    },
    // The leaf helpers name nothing of the crate but themselves.
    Rule {
        layer: "wire",
        files: |f| in_layer(f, "wire"),
        banned: &["tokio"],
        modules: Modules::Only(&["wire"]),
        no_clock: false,
    },
    Rule {
        layer: "dsn",
        files: |f| in_layer(f, "dsn"),
        banned: &["tokio", "std::fs", "std::net"],
        modules: Modules::Only(&["dsn"]),
        no_clock: true,
    },
    Rule {
        layer: "testing",
        files: |f| in_layer(f, "testing"),
        banned: &["tokio"],
        modules: Modules::Only(&["testing"]),
        no_clock: false,
    },
    // `acme` knows the `[tls]` keys and nothing else of the crate; its renewal plan and its
    // certificate reader are pure (times come in as arguments).
    Rule {
        layer: "acme",
        files: |f| in_layer(f, "acme"),
        banned: &[],
        modules: Modules::Only(&["acme", "config", "testing"]),
        no_clock: false,
    },
    Rule {
        layer: "acme::plan",
        files: |f| f == "acme/plan.rs" || f == "acme/cert.rs",
        banned: &[
            "tokio",
            "std::fs",
            "std::net",
            "std::env",
            "std::thread",
            "std::process",
        ],
        modules: Modules::Only(&["acme"]),
        no_clock: true,
    },
    // `http` serves the Maildirs and the daemon's counters: config, mailbox, net (stats, watch
    // events) and proto (address rules), and the leaf helpers; never the daemon, the control
    // socket or the outbound runner (what it needs of the daemon comes in as a closure).
    Rule {
        layer: "http",
        files: |f| in_layer(f, "http"),
        banned: &[],
        modules: Modules::Only(&[
            "http", "config", "mailbox", "net", "proto", "wire", "testing", "auth", "acme",
        ]),
        no_clock: false,
    },
    // Only the composition root and `bin/smtpd.rs` name `daemon` (every file of `src/bin`, and
    // every other module of the library, is checked).
    Rule {
        layer: "daemon",
        files: |f| !in_layer(f, "daemon") && f != "bin/smtpd.rs",
        banned: &[],
        modules: Modules::Not(&["daemon"]),
        no_clock: false,
    },
];

/// The library's top-level modules (`src/lib.rs`): what a relative path in the crate root names.
const TOP: &[&str] = &[
    "acme", "auth", "cli", "client", "config", "control", "daemon", "dkim", "dsn", "http", "log",
    "mailbox", "net", "outbound", "proto", "queue", "testing", "wire",
];

// ---------------------------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// An identifier or keyword (`r#x` as `x`; `$crate` and other `$x` as one token).
    Ident,
    /// `::` as one token, anything else one character.
    Punct,
    /// A literal (its text dropped) or a lifetime.
    Other,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    text: String,
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The tokens of `src`, without comments and with every literal as an empty `Other`.
fn tokenize(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |j: usize| s.get(j).copied().unwrap_or('\0');
    // Skips a quoted literal whose opening quote is at `j`; returns the index after it.
    let quoted = |mut j: usize, quote: char, line: &mut usize| -> usize {
        j += 1;
        while j < s.len() && s[j] != quote {
            if s[j] == '\\' {
                j += 1;
            }
            if at(j) == '\n' {
                *line += 1;
            }
            j += 1;
        }
        j + 1
    };
    // Skips a raw string whose first `#` or `"` is at `j`.
    let raw = |mut j: usize, line: &mut usize| -> usize {
        let mut hashes = 0;
        while at(j) == '#' {
            hashes += 1;
            j += 1;
        }
        j += 1; // the opening quote
        while j < s.len() {
            if s[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                return j + 1 + hashes;
            }
            if s[j] == '\n' {
                *line += 1;
            }
            j += 1;
        }
        j
    };
    while i < s.len() {
        let c = s[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if s[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' {
            i = quoted(i, '"', &mut line);
            out.push(Token {
                kind: Kind::Other,
                text: String::new(),
                line: start_line,
            });
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime or label ('a, 'static).
            if at(i + 1) == '\\' || (at(i + 1) != '\0' && at(i + 2) == '\'') {
                i = quoted(i, '\'', &mut line);
            } else {
                i += 1;
                while i < s.len() && is_ident_char(s[i]) {
                    i += 1;
                }
            }
            out.push(Token {
                kind: Kind::Other,
                text: String::new(),
                line: start_line,
            });
        } else if is_ident_start(c) || (c == '$' && is_ident_start(at(i + 1))) {
            let begin = i;
            i += 1;
            while i < s.len() && is_ident_char(s[i]) {
                i += 1;
            }
            let word: String = s[begin..i].iter().collect();
            let next = at(i);
            // After `r`, `br` or `cr`: `#`s then a quote make a raw string (else `r#x` is a
            // raw identifier).
            let mut after_hashes = i;
            while at(after_hashes) == '#' {
                after_hashes += 1;
            }
            let literal = match word.as_str() {
                "b" | "c" if next == '"' => Some(quoted(i, '"', &mut line)),
                "b" if next == '\'' => Some(quoted(i, '\'', &mut line)),
                "r" | "br" | "cr" if at(after_hashes) == '"' => Some(raw(i, &mut line)),
                _ => None,
            };
            if let Some(end) = literal {
                i = end;
                out.push(Token {
                    kind: Kind::Other,
                    text: String::new(),
                    line: start_line,
                });
            } else if word == "r" && next == '#' {
                // A raw identifier: r#type is `type`.
                let b = i + 1;
                i = b;
                while i < s.len() && is_ident_char(s[i]) {
                    i += 1;
                }
                out.push(Token {
                    kind: Kind::Ident,
                    text: s[b..i].iter().collect(),
                    line: start_line,
                });
            } else {
                out.push(Token {
                    kind: Kind::Ident,
                    text: word,
                    line: start_line,
                });
            }
        } else if c.is_ascii_digit() {
            // A number: digits, suffixes, `1.5`, `1e-3` (a `.` only before a digit, so that
            // `x.0.elapsed()` keeps its `.`).
            i += 1;
            while i < s.len()
                && (is_ident_char(s[i])
                    || (s[i] == '.' && at(i + 1).is_ascii_digit())
                    || ((s[i] == '-' || s[i] == '+') && matches!(s[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            out.push(Token {
                kind: Kind::Other,
                text: String::new(),
                line: start_line,
            });
        } else if c == ':' && at(i + 1) == ':' {
            i += 2;
            out.push(Token {
                kind: Kind::Punct,
                text: "::".into(),
                line: start_line,
            });
        } else {
            i += 1;
            out.push(Token {
                kind: Kind::Punct,
                text: c.to_string(),
                line: start_line,
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// A path as written: its segments (`""` first for a leading `::`), where and how it was read.
#[derive(Clone, Debug)]
struct RawPath {
    segs: Vec<String>,
    line: usize,
    /// The module (segments under the crate root) the path is written in.
    module: Vec<String>,
    /// The name a `use` binds it to, if it is a `use` leaf.
    binds: Option<String>,
}

/// The module a file is, from its path under `src/`: `proto/smtp/session/auth.rs` is
/// `proto::smtp::session::auth`, `proto/mod.rs` is `proto`, `lib.rs` and `bin/*.rs` are roots.
fn file_module(file: &str) -> Vec<String> {
    if file == "lib.rs" {
        return Vec::new();
    }
    let rest = file.strip_prefix("bin/").unwrap_or(file);
    let mut segs: Vec<String> = rest
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if file.starts_with("bin/") {
        segs.remove(0); // the binary's root file
    } else if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    segs
}

fn is(tokens: &[Token], i: usize, text: &str) -> bool {
    tokens.get(i).is_some_and(|t| t.text == text)
}

fn ident(tokens: &[Token], i: usize) -> bool {
    tokens.get(i).is_some_and(|t| t.kind == Kind::Ident)
}

/// Expands the use tree at `tokens[i]` under `prefix` into `out`; returns the index after it.
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    mut prefix: Vec<String>,
    module: &[String],
    out: &mut Vec<RawPath>,
) -> usize {
    let line = tokens.get(i).map_or(0, |t| t.line);
    if is(tokens, i, "::") && prefix.is_empty() {
        prefix.push(String::new());
        i += 1;
    }
    loop {
        if is(tokens, i, "{") {
            i += 1;
            while i < tokens.len() && !is(tokens, i, "}") {
                i = use_tree(tokens, i, prefix.clone(), module, out);
                if is(tokens, i, ",") {
                    i += 1;
                }
            }
            return i + 1;
        } else if is(tokens, i, "*") {
            prefix.push("*".into());
            i += 1;
            break;
        } else if ident(tokens, i) {
            prefix.push(tokens[i].text.clone());
            i += 1;
            if is(tokens, i, "::") {
                i += 1;
            } else {
                break;
            }
        } else {
            break; // not a use tree we know: stop here rather than loop
        }
    }
    let mut binds = match prefix.last().map(String::as_str) {
        Some("*") | None => None,
        Some("self") => prefix.iter().rev().nth(1).cloned(),
        Some(last) => Some(last.to_string()),
    };
    if is(tokens, i, "as") && ident(tokens, i + 1) {
        binds = Some(tokens[i + 1].text.clone()).filter(|n| n != "_");
        i += 2;
    }
    out.push(RawPath {
        segs: prefix,
        line,
        module: module.to_vec(),
        binds,
    });
    i
}

/// The keywords that cannot begin a path (`crate`, `self`, `super`, `Self` can).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "dyn", "else", "enum", "extern",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "type", "unsafe", "use", "where", "while", "yield",
];

/// Every path of the code: the expanded `use` leaves, `extern crate`s and every other path,
/// and the clock tokens (`::now(`, `.elapsed(`) with their lines.
fn paths(tokens: &[Token], file_mod: &[String]) -> (Vec<RawPath>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut clock = Vec::new();
    // Inline modules: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let module_at = |inline: &[(String, usize)]| -> Vec<String> {
        let mut m = file_mod.to_vec();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    for (i, t) in tokens.iter().enumerate() {
        if is(tokens, i + 2, "(")
            && ((t.text == "::" && is(tokens, i + 1, "now"))
                || (t.text == "." && is(tokens, i + 1, "elapsed")))
        {
            clock.push((t.line, format!("{}{}(", t.text, tokens[i + 1].text)));
        }
    }
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.text == "{" {
            depth += 1;
        } else if t.text == "}" {
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
        }
        if t.kind == Kind::Ident
            && t.text == "mod"
            && ident(tokens, i + 1)
            && is(tokens, i + 2, "{")
        {
            inline.push((tokens[i + 1].text.clone(), depth + 1));
            i += 2; // the `{` is counted on the next turn
            continue;
        }
        if t.kind == Kind::Ident && t.text == "use" {
            i = use_tree(tokens, i + 1, Vec::new(), &module_at(&inline), &mut out);
            continue;
        }
        if t.kind == Kind::Ident && t.text == "extern" && is(tokens, i + 1, "crate") {
            if ident(tokens, i + 2) {
                let name = tokens[i + 2].text.clone();
                let alias = (is(tokens, i + 3, "as") && ident(tokens, i + 4))
                    .then(|| tokens[i + 4].text.clone());
                let binds = Some(alias.unwrap_or_else(|| name.clone())).filter(|n| n != "_");
                out.push(RawPath {
                    segs: vec![String::new(), name],
                    line: t.line,
                    module: module_at(&inline),
                    binds,
                });
            }
            i += 3;
            continue;
        }
        // A path starts at an identifier not after `::` or `.` (a field or method; `..` is a
        // range), or at a leading `::` with an identifier after it (not after a `>` that closes
        // generics: `Vec::<u8>::new`, `<T as X>::Y`; `->` and `=>` are not that). A `::` after
        // an identifier of a path was taken with the path.
        let before = |k: usize| i.checked_sub(k).map(|p| tokens[p].text.as_str());
        let starts = match t.kind {
            Kind::Ident if KEYWORDS.contains(&t.text.as_str()) => false,
            Kind::Ident => match before(1) {
                Some("::") => false,
                Some(".") => before(2) == Some("."),
                _ => true,
            },
            Kind::Punct if t.text == "::" => {
                ident(tokens, i + 1)
                    && (before(1) != Some(">") || matches!(before(2), Some("-" | "=")))
            }
            _ => false,
        };
        if starts {
            let line = t.line;
            let mut segs = Vec::new();
            if t.text == "::" {
                segs.push(String::new());
                i += 1;
            }
            segs.push(tokens[i].text.clone());
            i += 1;
            while is(tokens, i, "::") && ident(tokens, i + 1) {
                segs.push(tokens[i + 1].text.clone());
                i += 2;
            }
            if segs.len() > 1 {
                out.push(RawPath {
                    segs,
                    line,
                    module: module_at(&inline),
                    binds: None,
                });
            }
            continue;
        }
        i += 1;
    }
    (out, clock)
}

/// The root of a resolved path: the library (`crate` in `src/`, `smtpd` in a binary), the
/// binary's own crate, or anything else (an external crate, or a name we cannot resolve, such as
/// a child module of a module below the root: it is in its parent's layer).
const LIB: &str = "crate";
const BIN: &str = "<bin>";

/// `raw` resolved to absolute paths: one, or one per binding of an imported name.
fn resolve(
    raw: &RawPath,
    is_bin: bool,
    names: &HashMap<String, Vec<Vec<String>>>,
) -> Vec<Vec<String>> {
    let segs = &raw.segs;
    let own_root = if is_bin { BIN } else { LIB };
    // `self` (at the end of a group, `use a::{self}`, is its prefix) and `super` (anywhere
    // after `self`/`super`, also in a group: `use super::{super::x}`) are applied to the base.
    let extend = |base: &mut Vec<String>, rest: &[String]| {
        for s in rest {
            match s.as_str() {
                "self" => {}
                "super" if base.len() > 1 => {
                    base.pop();
                }
                _ => base.push(s.clone()),
            }
        }
    };
    let mut base: Vec<String>;
    let from;
    match segs[0].as_str() {
        "" => {
            // `::name`: an external crate; `::smtpd` is the library.
            let name = &segs[1];
            base = vec![if name == "smtpd" {
                LIB.into()
            } else {
                name.clone()
            }];
            from = 2;
        }
        "crate" | "$crate" => {
            base = vec![own_root.into()];
            from = 1;
        }
        "smtpd" => {
            base = vec![LIB.into()];
            from = 1;
        }
        "self" | "super" => {
            base = vec![own_root.into()];
            base.extend(raw.module.iter().cloned());
            from = 0;
        }
        first => {
            if let Some(bound) = names.get(first) {
                // A name the file's `use`s bind (`use std::time::Instant as I;` then `I::now`),
                // already resolved.
                return bound
                    .iter()
                    .map(|b| {
                        let mut segs = b.clone();
                        extend(&mut segs, &raw.segs[1..]);
                        segs
                    })
                    .collect();
            }
            if raw.module.is_empty() && !is_bin && TOP.contains(&first) {
                base = vec![LIB.into()];
                from = 0;
            } else {
                base = vec![first.to_string()];
                from = 1;
            }
        }
    }
    extend(&mut base, &segs[from..]);
    vec![base]
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

/// A broken rule: the layer whose rule it is, and `file:line: what`.
#[derive(Debug)]
struct Violation {
    layer: &'static str,
    message: String,
}

fn starts_with(path: &[String], prefix: &str) -> bool {
    let pre: Vec<&str> = prefix.split("::").collect();
    pre.len() <= path.len()
        && pre
            .iter()
            .zip(path)
            .enumerate()
            .all(|(k, (p, s))| *p == s || (k == 0 && *p == "tokio" && s.starts_with("tokio_")))
}

/// Every rule `file` (its path under `src/`, with `/`) breaks with the source `text`.
fn check_file(file: &str, text: &str) -> Vec<Violation> {
    let rules: Vec<&Rule> = RULES.iter().filter(|r| (r.files)(file)).collect();
    if rules.is_empty() {
        return Vec::new();
    }
    let is_bin = file.starts_with("bin/");
    let tokens = tokenize(text);
    let (raws, clock) = paths(&tokens, &file_module(file));
    // The names the `use`s bind, resolved (a few rounds, for `use a as b; use b::c as d;`).
    let mut names: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for _ in 0..4 {
        let mut next: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for r in raws.iter().filter(|r| r.binds.is_some()) {
            let mut seen = names.clone();
            // A name is not its own binding (`use tokio;` binds `tokio` to `tokio`).
            seen.remove(r.binds.as_ref().unwrap());
            for p in resolve(r, is_bin, &seen) {
                let e = next.entry(r.binds.clone().unwrap()).or_default();
                if !e.contains(&p) {
                    e.push(p);
                }
            }
        }
        names = next;
    }
    let mut bad = Vec::new();
    for raw in &raws {
        let written = raw.segs.join("::");
        let mut names_here = names.clone();
        if let Some(b) = &raw.binds {
            names_here.remove(b);
        }
        for path in resolve(raw, is_bin, &names_here) {
            let shown = path.join("::");
            let at = format!("src/{file}:{}", raw.line);
            let shown = if shown == written {
                format!("`{shown}`")
            } else {
                format!("`{shown}` (written `{written}`)")
            };
            for rule in &rules {
                if path[0] == LIB {
                    let m = path.get(1).map(String::as_str).unwrap_or("");
                    let ok = match rule.modules {
                        // A glob of the root imports every module.
                        _ if m == "*" => false,
                        // The root itself, as a path with nothing after it (`pub(crate)`,
                        // `use crate as c`, whose uses are resolved through the name).
                        _ if m.is_empty() => true,
                        Modules::Only(only) => only.contains(&m),
                        Modules::Not(not) => !not.contains(&m),
                    };
                    if !ok {
                        bad.push(Violation {
                            layer: rule.layer,
                            message: format!("{at}: {shown}: {} may not name it", rule.layer),
                        });
                    }
                }
                for b in rule.banned {
                    if starts_with(&path, b) {
                        bad.push(Violation {
                            layer: rule.layer,
                            message: format!("{at}: {shown}: `{b}` is banned in {}", rule.layer),
                        });
                    }
                }
                if rule.no_clock
                    && path
                        .windows(2)
                        .any(|w| w[1] == "now" && (w[0] == "SystemTime" || w[0] == "Instant"))
                {
                    bad.push(Violation {
                        layer: rule.layer,
                        message: format!("{at}: {shown}: no clock in {}", rule.layer),
                    });
                }
            }
        }
    }
    for rule in rules.iter().filter(|r| r.no_clock) {
        for (line, tok) in &clock {
            bad.push(Violation {
                layer: rule.layer,
                message: format!("src/{file}:{line}: `{tok}`: no clock in {}", rule.layer),
            });
        }
    }
    bad
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every violation of `layer`'s rule in the tree, after checking that the layer has files
/// (unless it is optional, like the queue).
fn tree(layer: &str, optional: bool) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut seen = 0;
    let mut bad = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let rule = RULES.iter().find(|r| r.layer == layer).unwrap();
        if (rule.files)(&rel) {
            seen += 1;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        bad.extend(
            check_file(&rel, &text)
                .into_iter()
                .filter(|v| v.layer == layer)
                .map(|v| v.message),
        );
    }
    assert!(optional || seen > 0, "no file of {layer} found under src/");
    bad
}

fn assert_clean(layer: &str, optional: bool) {
    let bad = tree(layer, optional);
    assert!(
        bad.is_empty(),
        "{layer} breaks its layer:\n{}",
        bad.join("\n")
    );
}

#[test]
fn proto_imports_nothing_but_wire() {
    assert_clean("proto", false);
}

#[test]
fn mailbox_knows_no_sockets_or_protocols() {
    assert_clean("mailbox", false);
    assert_clean("queue", true);
}

#[test]
fn config_knows_no_daemon_or_net() {
    assert_clean("config", false);
}

#[test]
fn leaves_import_nothing() {
    assert_clean("wire", false);
    assert_clean("testing", false);
    assert_clean("dkim", false);
}

#[test]
fn http_uses_no_daemon_control_or_outbound() {
    assert_clean("http", false);
}

#[test]
fn only_smtpd_imports_daemon() {
    assert_clean("daemon", false);
}

// ---------------------------------------------------------------------------------------------
// The checker itself
// ---------------------------------------------------------------------------------------------

/// Each case: a file (its path under `src/`), its source, and the layer whose rule it breaks
/// (`None`: it breaks none). Every case goes through [`check_file`], as the tree does.
const CASES: &[(&str, &str, Option<&str>)] = &[
    // The engine reading the accounts' global state (as it once did).
    (
        "proto/smtp/session.rs",
        "fn f(a: &str) -> bool { !crate::auth::accounts::is_probe_address(&a) }",
        Some("proto"),
    ),
    ("proto/line.rs", "use tokio::net::TcpStream;", Some("proto")),
    (
        "dkim/key.rs",
        "fn f() { std::fs::read(\"k\"); }",
        Some("dkim"),
    ),
    ("dkim/sign.rs", "use crate::config::Config;", Some("dkim")),
    // `super` chains, resolved against the file's module (`proto/smtp/session.rs` is
    // `crate::proto::smtp::session`; `session/auth.rs` one deeper; `mod.rs` its directory).
    (
        "proto/smtp/session.rs",
        "use super::super::super::auth::accounts::Accounts;",
        Some("proto"),
    ),
    (
        "proto/smtp/session/auth.rs",
        "use super::super::super::super::auth::accounts::Accounts;",
        Some("proto"),
    ),
    (
        "proto/pop3/command.rs",
        "use super::{super::{super::auth::Accounts}};",
        Some("proto"),
    ),
    (
        "proto/smtp/mod.rs",
        "use super::super::auth::Accounts;",
        Some("proto"),
    ),
    (
        "proto/smtp/session.rs",
        "use self::super::super::super::net::Listener;",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "mod tests { mod deeper { use super::super::super::super::auth; } }",
        Some("proto"),
    ),
    // Grouped imports, nested too.
    (
        "proto/line.rs",
        "use std::{fs, net::TcpStream};",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "use crate::{auth, proto::line};",
        Some("proto"),
    ),
    (
        "proto/sasl.rs",
        "use std::{io::{self, Read}, sync::{Arc, mpsc::{channel, Sender}}, process::{Command}};",
        Some("proto"),
    ),
    (
        "proto/sasl.rs",
        "use crate::{wire::{self, Size}, proto::{line::{Line}}, daemon::{shared::{Shared}}};",
        Some("proto"),
    ),
    (
        "proto/sasl.rs",
        "use std::{self as s}; fn f() { s::env::args(); }",
        Some("proto"),
    ),
    // The clock, under an alias or through a constant.
    (
        "proto/smtp/data.rs",
        "use std::time::Instant as I;\nfn f() { let t = I::now(); }",
        Some("proto"),
    ),
    (
        "proto/smtp/data.rs",
        "fn f() { let d = std::time::SystemTime::UNIX_EPOCH.elapsed(); }",
        Some("proto"),
    ),
    (
        "proto/smtp/data.rs",
        "fn f(t: T) { t.elapsed ( ) }",
        Some("proto"),
    ),
    (
        "proto/smtp/data.rs",
        "const F: fn() -> Instant = Instant::now;",
        Some("proto"),
    ),
    // A `//` in a string does not cut the line; comments and literals do not hide code.
    (
        "proto/line.rs",
        "fn f() { let s = \"http://x\"; use tokio::net::TcpStream; }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { let s = r#\"a \" // \"#; let c = '\"'; let b = b\"//\"; use std::fs; }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "/* a /* nested */ comment */ use std::thread; /// doc\nfn f<'a>(x: &'a str) {}",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { let c = '\\''; let d = br##\"\"#\"##; let e = b'\\\\'; std::env::var(\"X\"); }",
        Some("proto"),
    ),
    (
        "proto/smtp/session.rs",
        "//! Uses crate::auth in prose only. `tokio`, std::fs.\n\
         use std::net::X as _Y; // (a comment after code keeps the code)",
        Some("proto"),
    ),
    // Paths without `use`, anywhere in the code, and in macros.
    (
        "proto/line.rs",
        "fn f() { crate::auth::x(); }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { ::tokio::spawn(async {}); }",
        Some("proto"),
    ),
    (
        "proto/mod.rs",
        "macro_rules! m { () => { $crate::net::listen() }; }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "#[tokio::test] async fn t() {}",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() -> tokio_util::Thing { todo!() }",
        Some("proto"),
    ),
    ("proto/line.rs", "extern crate tokio as t;", Some("proto")),
    (
        "proto/line.rs",
        "fn f() -> ::std::net::TcpStream { todo!() }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { return ::std::process::exit(1); }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { match 1 { _ => ::std::thread::yield_now() } }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { let _ = ..crate::net::MAX; }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f() { let r#type = std::fs::read(\"x\"); }",
        Some("proto"),
    ),
    (
        "proto/line.rs",
        "fn f(s: <std::net::TcpStream as X>::Y) {}",
        Some("proto"),
    ),
    ("proto/line.rs", "use crate::*;", Some("proto")),
    (
        "proto/line.rs",
        "use super::super as up; fn f() { up::client::go(); }",
        Some("proto"),
    ),
    // The other layers.
    (
        "mailbox/maildir.rs",
        "use std::net::TcpStream;",
        Some("mailbox"),
    ),
    (
        "mailbox/maildir.rs",
        "use crate::{config, net::Listener};",
        Some("mailbox"),
    ),
    (
        "mailbox/mod.rs",
        "fn f() { super::proto::x(); }",
        Some("mailbox"),
    ),
    ("queue/mod.rs", "use crate::outbound::Relay;", Some("queue")),
    ("queue.rs", "use tokio::fs;", Some("queue")),
    (
        "config/load/walk.rs",
        "use super::super::super::daemon::Run;",
        Some("config"),
    ),
    (
        "config/mod.rs",
        "use crate::{mailbox, control::Client};",
        Some("config"),
    ),
    (
        "http/routes.rs",
        "use crate::daemon::metrics;",
        Some("http"),
    ),
    (
        "http/mod.rs",
        "use crate::control::proto::Status;",
        Some("http"),
    ),
    (
        "http/wait.rs",
        "fn f() { crate::outbound::Outbound::counts(); }",
        Some("http"),
    ),
    (
        "http/select.rs",
        "use super::super::dkim::Signer;",
        Some("http"),
    ),
    (
        "mailbox/browse.rs",
        "use crate::http::id::MessageId;",
        Some("mailbox"),
    ),
    (
        "config/mod.rs",
        "use crate::http::HttpContext;",
        Some("config"),
    ),
    ("wire.rs", "use crate::proto::line::Line;", Some("wire")),
    (
        "wire.rs",
        "mod tests { use super::super::proto; }",
        Some("wire"),
    ),
    (
        "testing.rs",
        "fn f() { tokio::task::yield_now(); }",
        Some("testing"),
    ),
    // `daemon`, from every binary but smtpd and every module but its own.
    (
        "bin/smtpctl.rs",
        "use smtpd::{cli, daemon as _d};",
        Some("daemon"),
    ),
    (
        "bin/new-tool.rs",
        "fn main() { ::smtpd::daemon::run(); }",
        Some("daemon"),
    ),
    (
        "bin/smtp-send.rs",
        "use smtpd::{client::{self, daemon_like}, daemon};",
        Some("daemon"),
    ),
    (
        "net/mod.rs",
        "use crate::daemon::shared::Shared;",
        Some("daemon"),
    ),
    ("lib.rs", "fn f() { daemon::run::go(); }", Some("daemon")),
    ("client/mod.rs", "use super::daemon;", Some("daemon")),
    // Ordinary code of each layer breaks nothing.
    (
        "proto/smtp/session.rs",
        "use crate::proto::line::{Line, LineBuffer};\n\
         use crate::{testing, wire::{self, MAX}};\n\
         use super::super::line::Line as L;\n\
         use core::net::{IpAddr, Ipv4Addr};\n\
         use std::time::Duration;\n\
         // crate::auth::accounts::x(); tokio::spawn(); Instant::now()\n\
         /* std::fs::read(\"x\") */\n\
         /// Like `std::net::TcpStream`, but sans-IO; see http://example.org/tokio.\n\
         fn f<'a>(x: &'a str) -> &'static str { let _ = \"crate::daemon //\"; let c = 'a'; \
         let _ = r#\"use tokio;\"#; let _ = b\"std::fs\"; x.len().elapsed; Duration::from_secs(1); \
         Vec::<u8>::new(); crate::wire::size(); \"\" }\n\
         mod tests { use super::*; use super::super::Reply; }\n\
         pub(crate) fn g() {}\n\
         macro_rules! m { ($x:expr) => { $crate::proto::line::Line::new($x) }; }",
        None,
    ),
    // One `super` short of the root: `crate::proto::auth`, a module of proto.
    (
        "proto/smtp/session/auth.rs",
        "use super::super::super::auth::accounts::Accounts;",
        None,
    ),
    (
        "proto/mod.rs",
        "pub mod line;\nmod tests { use super::*; use super::line::Line; }",
        None,
    ),
    (
        "mailbox/maildir.rs",
        "use std::fs; use std::time::SystemTime; use crate::{config::Config, auth, wire};\n\
         fn f() { let now = SystemTime::now(); t.elapsed(); }\n\
         mod tests { use super::*; use super::super::Mailbox; }",
        None,
    ),
    (
        "config/load.rs",
        "use crate::{mailbox::Maildir, auth::Accounts, proto::smtp::policy::Policy};",
        None,
    ),
    (
        "wire.rs",
        "pub const MAX: usize = 1;\nmod tests { use super::*; use crate::wire::MAX as M; }",
        None,
    ),
    (
        "daemon/run.rs",
        "use crate::daemon::shared::Shared; use super::listeners;",
        None,
    ),
    ("bin/smtpd.rs", "use smtpd::{cli, daemon};", None),
    (
        "bin/smtpctl.rs",
        "use smtpd::{cli::smtpctl::Args, control::client}; use std::net::TcpStream;",
        None,
    ),
    ("lib.rs", "pub mod daemon;\npub mod proto;", None),
    (
        "net/smtp_conn.rs",
        "use tokio::net::TcpStream; use crate::proto::smtp;",
        None,
    ),
    (
        "http/routes.rs",
        "use axum::Router; use tokio::fs::File; use crate::{config::Config, mailbox::browse, net::watch::WatchEvent, proto::smtp::address::is_domain};",
        None,
    ),
];

#[test]
fn the_checker_sees_every_violation() {
    let mut wrong = Vec::new();
    for (file, src, breaks) in CASES {
        let found = check_file(file, src);
        let layers: Vec<&str> = found.iter().map(|v| v.layer).collect();
        let ok = match breaks {
            Some(layer) => layers.contains(layer),
            None => found.is_empty(),
        };
        if !ok {
            wrong.push(format!(
                "{file}: `{src}`\n  expected {breaks:?}, found {:?}",
                found.iter().map(|v| &v.message).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "the checker is wrong:\n{}",
        wrong.join("\n")
    );
}

/// Messages name the file, the line, and the path as resolved and as written.
#[test]
fn a_violation_says_where_and_what() {
    let found = check_file(
        "proto/smtp/session.rs",
        "// one\nuse std::io;\nuse super::super::super::auth::accounts::Accounts;",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].message,
        "src/proto/smtp/session.rs:3: `crate::auth::accounts::Accounts` (written \
         `super::super::super::auth::accounts::Accounts`): proto may not name it"
    );
}

/// The tree is really read: the drivers of `net`, checked as if they were engines, break
/// proto's rule (tokio, sockets, the daemon-free crate modules).
#[test]
fn the_tree_is_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root.join("net"), &mut files);
    let found: Vec<Violation> = files
        .iter()
        .flat_map(|f| check_file("proto/as_if.rs", &std::fs::read_to_string(f).unwrap()))
        .collect();
    assert!(
        found.iter().any(|v| v.message.contains("`tokio`")),
        "{found:?}"
    );
}
