//! [`NetNs`]: a private network namespace, for tests that need a non-loopback peer.

use std::process::Command;

/// A private network namespace with one non-loopback address on its own `lo`, so a server and a
/// client inside it see each other as a non-loopback peer (../shared/research/non-loopback-peer.md).
/// Deleted on drop. `None` (with a printed reason) when namespaces cannot be made; under CI=true
/// that is a failure.
pub struct NetNs {
    pub name: String,
    pub addr: std::net::Ipv4Addr,
}

impl NetNs {
    pub fn new(tag: &str, addr: &str) -> Option<NetNs> {
        let name = format!("smtpd-{tag}-{}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        let _ = ok(&["netns", "del", &name]);
        let made = ok(&["netns", "add", &name])
            && ok(&["-n", &name, "link", "set", "lo", "up"])
            && ok(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "lo",
            ]);
        if !made {
            let _ = ok(&["netns", "del", &name]);
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("cannot create a network namespace (CI runs as root and must)");
            }
            eprintln!("SKIPPED: cannot create a network namespace (needs root and iproute2)");
            return None;
        }
        Some(NetNs {
            name,
            addr: addr.parse().unwrap(),
        })
    }

    /// One more address on the namespace's `lo` (another client, say).
    pub fn add_addr(&self, addr: &str) {
        let out = Command::new("ip")
            .args([
                "-n",
                &self.name,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "lo",
            ])
            .output()
            .expect("ip addr add");
        assert!(out.status.success(), "ip addr add {addr}: {out:?}");
    }

    /// `ip netns exec NAME` as a wrapper for [`Server::start_wrapped`].
    pub fn wrapper(&self) -> Vec<&str> {
        vec!["ip", "netns", "exec", &self.name]
    }

    /// Runs a command inside the namespace.
    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
