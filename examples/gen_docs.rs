//! Writes the man pages (smtpd.8, smtpctl.8, smtp-send.1) and the bash/zsh/fish completions from
//! the clap definitions, so they cannot drift from the flags, and smtpd.toml(5) from the config
//! reference (`smtpd::config::schema`: every key, its doc and its default as the loader has it).
//! Used by packaging/build-deb.sh:
//!
//!     cargo run --example gen_docs -- OUTDIR

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn man(cmd: clap::Command, section: &str, dir: &Path) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd).section(section);
    let mut out = Vec::new();
    man.render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.{section}")), out)
}

/// Roff for a doc of `smtpd::config::schema`: `` `literal` `` in bold, `*placeholder*` in italic.
fn roff(doc: &str) -> String {
    let (mut bold, mut italic) = (false, false);
    let mut out = String::new();
    for part in doc.split_inclusive(['`', '*']) {
        let (text, mark) = match part.strip_suffix(['`', '*']) {
            Some(text) => (text, part.chars().last()),
            None => (part, None),
        };
        out += &escape(text);
        match mark {
            Some('`') => bold = !bold,
            Some(_) => italic = !italic,
            None => continue,
        }
        out += match (bold, italic) {
            (true, _) => "\\fB",
            (false, true) => "\\fI",
            (false, false) => "\\fR",
        };
    }
    // A line starting with `.` or `'` would be a request.
    if out.starts_with(['.', '\'']) {
        out.insert_str(0, "\\&");
    }
    out
}

/// Text as roff prints it: backslashes, minus signs and en dashes escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('–', "\\(en")
}

/// smtpd.toml(5): one section of the man page per config section, one entry per key.
fn config_man(dir: &Path) -> std::io::Result<()> {
    use smtpd::config::schema::{DESCRIPTION, reference, sections};
    let version = env!("CARGO_PKG_VERSION");
    let mut out = format!(
        ".TH SMTPD.TOML 5 \"\" \"smtpd {version}\" \"File Formats\"\n\
         .nh\n\
         .SH NAME\nsmtpd.toml \\- configuration of the smtpd mail server\n\
         .SH SYNOPSIS\n.B /etc/smtpd/smtpd.toml\n\
         .SH DESCRIPTION\n{}\n",
        roff(DESCRIPTION)
    );
    let keys = reference();
    for section in sections() {
        out += &format!(".SH {}\n", section.heading);
        if !section.doc.is_empty() {
            out += &format!("{}\n", roff(section.doc));
        }
        for k in keys.iter().filter(|k| k.section == section.name) {
            let default = match (&k.default, k.required) {
                (Some(v), _) => format!("Default: {}.", escape(v)),
                (None, true) => "Required.".to_string(),
                (None, false) => "Default: none.".to_string(),
            };
            out += &format!(".TP\n.B {}\n{} {default}\n", k.key, roff(k.doc));
        }
    }
    out += ".SH SEE ALSO\n.BR smtpd (8),\n.BR smtpctl (8),\n.BR smtp\\-send (1)\n";
    std::fs::write(dir.join("smtpd.toml.5"), out)
}

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/docs".into()),
    );
    let man_dir = out.join("man");
    let comp_dir = out.join("completions");
    std::fs::create_dir_all(&man_dir)?;
    std::fs::create_dir_all(&comp_dir)?;
    man(smtpd::cli::smtpd::Args::command(), "8", &man_dir)?;
    man(smtpd::cli::smtpctl::Args::command(), "8", &man_dir)?;
    man(smtpd::cli::smtp_send::Args::command(), "1", &man_dir)?;
    man(smtpd::cli::sendmail::Args::command(), "8", &man_dir)?;
    config_man(&man_dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        for mut cmd in [
            smtpd::cli::smtpd::Args::command(),
            smtpd::cli::smtpctl::Args::command(),
            smtpd::cli::smtp_send::Args::command(),
        ] {
            let name = cmd.get_name().to_string();
            clap_complete::generate_to(shell, &mut cmd, name, &comp_dir)?;
        }
    }
    println!("{}", out.display());
    Ok(())
}
