//! `smtpctl dkim-keygen DOMAIN`: makes a key pair (smtpd::dkim), writes the private key with
//! mode 0600 to a new file (never over an existing one), and prints the DNS record to publish and
//! the `[dkim]` line to add. Needs no daemon.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use smtpd::cli::smtpctl::{Args, KeyAlgorithm};
use smtpd::dkim::{Algorithm, DEFAULT_RSA_BITS, RSA_BITS};
use smtpd::outln;
use smtpd::proto::smtp::address::is_domain;

/// What was asked for on the command line.
pub struct Wanted<'a> {
    pub domain: &'a str,
    pub selector: &'a str,
    pub algorithm: KeyAlgorithm,
    pub bits: Option<usize>,
    pub out: Option<&'a Path>,
}

pub fn run(args: &Args, w: Wanted) -> anyhow::Result<bool> {
    let domain = w.domain.trim_end_matches('.').to_ascii_lowercase();
    for (what, name) in [("domain", domain.as_str()), ("selector", w.selector)] {
        if !name.is_ascii() || !is_domain(name) {
            bail!(
                "\"{name}\" is not a {what} name (letters, digits, '-' and '.'; IDNs in their xn-- form)"
            );
        }
    }
    let (algorithm, bits) = match (w.algorithm, w.bits) {
        (KeyAlgorithm::Rsa, bits) => (Algorithm::Rsa, bits.unwrap_or(DEFAULT_RSA_BITS)),
        (KeyAlgorithm::Ed25519, None) => (Algorithm::Ed25519, 0),
        (KeyAlgorithm::Ed25519, Some(_)) => {
            bail!("--bits is for RSA keys; an Ed25519 key has one size")
        }
    };
    if algorithm == Algorithm::Rsa && !RSA_BITS.contains(&bits) {
        bail!(
            "--bits {bits}: an RSA key here has {} to {} bits (2048 is the usual size)",
            RSA_BITS.start(),
            RSA_BITS.end()
        );
    }
    let path = match w.out {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from(format!("config/dkim/{domain}.{}.key", w.selector)),
    };
    if path.exists() {
        bail!(refusal(&path));
    }
    let pair = smtpd::dkim::generate(algorithm, bits).context("cannot make the key")?;
    write_new(&path, pair.pem.as_bytes())?;
    let key = &pair.key;
    let zone = key.zone_line(w.selector, &domain);
    let shown = path.display().to_string();
    let line = format!(
        "\"{domain}\" = {{ selector = {}, key = {} }}",
        toml::Value::String(w.selector.to_string()),
        toml::Value::String(shown.clone())
    );
    if args.json {
        let v = serde_json::json!({
            "domain": domain,
            "selector": w.selector,
            "algorithm": key.algorithm().signature_name(),
            "bits": key.bits(),
            "key": shown,
            "name": format!("{}._domainkey.{domain}.", w.selector),
            "record": key.record(),
            "zone_line": zone,
            "config": format!("[dkim]\n{line}"),
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let size = match key.algorithm() {
            Algorithm::Rsa => format!(", {} bits", key.bits()),
            Algorithm::Ed25519 => String::new(),
        };
        outln!(
            "wrote {shown}: a new {} key{size}, mode 0600",
            key.algorithm().signature_name()
        );
        outln!();
        outln!("Publish this TXT record in the DNS zone of {domain}:");
        outln!("{zone}");
        outln!();
        outln!("Then add to smtpd.toml and reload smtpd:");
        outln!("[dkim]");
        outln!("{line}");
    }
    if nix::unistd::geteuid().is_root() {
        eprintln!(
            "smtpctl: note: {shown} belongs to root; if smtpd runs as another user ([server] user, or the packaged service), give it the key (`chown smtpd: {shown}`, or its group with mode 0640): it reads the key again on every reload"
        );
    }
    Ok(true)
}

fn refusal(path: &Path) -> String {
    format!(
        "{} exists: not overwritten (a key in use would be lost); remove it first, or choose another --out or --selector",
        path.display()
    )
}

/// Creates `path` (and its missing directories) with mode 0600, writes `bytes` and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .with_context(|| format!("cannot make the directory {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(refusal(path)),
            _ => anyhow::Error::new(e).context(format!("cannot create {}", path.display())),
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
