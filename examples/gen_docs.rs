//! Writes the man pages (smtpd.8, smtpctl.8, smtp-send.1) and the bash/zsh/fish completions from
//! the clap definitions, so they cannot drift from the flags. Used by packaging/build-deb.sh:
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
