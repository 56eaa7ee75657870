//! External clients: whether one is installed ([`have`]), and fetchmail runs.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

/// Whether an external client is on PATH; under CI=true a missing one is a failure.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI=true (.ci/run installs it)");
        }
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// Runs fetchmail once against `addr` (delivering through `--mda "cat >> mbox"`), with
/// `options` on the user line (e.g. "sslproto ''" or "ssl no sslcertck"); returns the mailbox text.
pub fn fetchmail(addr: SocketAddr, user: &str, password: &str, options: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let rc = home.path().join("fetchmailrc");
    let mbox = home.path().join("mbox");
    std::fs::write(
        &rc,
        format!(
            "poll {} service {} protocol POP3 auth password timeout 20\n  user \"{user}\" password \"{password}\" {options}\n",
            addr.ip(),
            addr.port()
        ),
    )
    .unwrap();
    // fetchmail refuses a run-control file others can read.
    Command::new("chmod").arg("600").arg(&rc).status().unwrap();
    let mda = format!("cat >> {}", mbox.display());
    let run = Command::new("fetchmail")
        .env("HOME", home.path())
        .env("FETCHMAILHOME", home.path())
        .arg("--fetchmailrc")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "--mda", &mda, "--all"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "fetchmail: {}{}",
        String::from_utf8_lossy(&run.stderr),
        String::from_utf8_lossy(&run.stdout)
    );
    std::fs::read_to_string(&mbox).unwrap_or_default()
}

/// Runs `tests/clients/<script>` with `step`, the listener's address and port, and an account's
/// credentials; the script prints "ok" when every check of the step held.
pub fn client_script(script: &str, step: &str, addr: SocketAddr, user: &str, password: &str) {
    let out = Command::new("python3")
        .arg(format!(
            "{}/tests/clients/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([
            step,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            user,
            password,
        ])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "{script} {step}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
