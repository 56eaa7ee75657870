//! Several instances behind HAProxy (issue 19), all in one network namespace so that each client
//! has its own address: Debian's haproxy in front of three smtpd instances sharing one mailbox
//! root and one queue, `send-proxy-v2` to every listener and `/health` as the check. 2,000
//! messages from eight clients while one instance is killed with -9 and restarted: every
//! acknowledged message is in the mailbox exactly once, each names its real client in
//! `Received:`, and all three instances took some. Per-IP limits count the real client; two POP3
//! sessions on two instances racing 1,000 times never both hold the maildrop; two IMAP sessions
//! appending at once never give two messages one UID.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The password hash of every account here: SHA-512 crypt of [`PASSWORD`] with 1,000 rounds,
/// so that 2,000 POP3 logins cost little (argon2 is the default; both are accepted).
const HASH: &str = "$6$rounds=1000$clusterhash$hWUcGkodBtRhcMK0fZr8zrFTX3PBC9/0vxKMojD/af31o7VqQ52WTVbpXEhUcYeQn.7BEQ3JFAnYqvMJ.gEf3/";
const BALANCER: &str = "10.77.0.1";
const CLIENTS: [&str; 4] = ["10.77.0.11", "10.77.0.12", "10.77.0.13", "10.77.0.14"];
const PER_IP: usize = 4;

/// Instance `n`'s ports inside the namespace (fixed, so a restart binds the same ones).
fn port(n: usize, base: u16) -> u16 {
    base + n as u16
}

fn instance(n: usize, shared: &Path) -> Overrides {
    let at = |base: u16| format!("[\"127.0.0.1:{}\"]", port(n, base));
    Overrides::new()
        .set("server", "instance", &format!("\"node-{n}\""))
        .set("server", "proxy_from", "[\"127.0.0.1/32\"]")
        .set("smtp", "listen", &at(20020))
        .set("pop3", "listen", &at(20110))
        .set("pop3", "allow_insecure_auth", "true")
        .set("pop3", "auth_failure_delay_ms", "100")
        .set("imap", "listen", &at(20140))
        .set("imap", "allow_insecure_auth", "true")
        .set("http", "listen", &at(20800))
        .set("limits", "max_connections_per_ip", &PER_IP.to_string())
        .set(
            "mailboxes",
            "root",
            &format!("\"{}\"", shared.join("mailboxes").display()),
        )
        .set(
            "queue",
            "dir",
            &format!("\"{}\"", shared.join("queue").display()),
        )
        .account_hash("alice@example.test", HASH)
        .account_hash("bob@example.test", HASH)
        .account_hash("carol@example.test", HASH)
}

/// HAProxy's configuration: one frontend per protocol on the balancer's address, round robin
/// over the three instances (and `one`: instance 1 alone, for the per-IP limit), PROXY v2 to
/// each, `/health` over HTTP (with its own PROXY header) every 200 ms.
fn haproxy_config(dir: &Path) -> String {
    let mut text = format!(
        "global\n    maxconn 4096\n    stats socket {}/haproxy.sock level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n\
         \x20   retries 3\n    option redispatch\n",
        dir.display()
    );
    let backend = |name: &str, bind: u16, base: u16, nodes: &[usize]| {
        let mut b = format!(
            "frontend {name}\n    bind {BALANCER}:{bind}\n    default_backend {name}\n\
             backend {name}\n    balance roundrobin\n    option httpchk GET /health\n"
        );
        for &n in nodes {
            b.push_str(&format!(
                "    server node-{n} 127.0.0.1:{} check port {} inter 200ms fall 1 rise 1 send-proxy-v2 check-send-proxy\n",
                port(n, base),
                port(n, 20800)
            ));
        }
        b
    };
    text.push_str(&backend("smtp", 25, 20020, &[1, 2, 3]));
    text.push_str(&backend("one", 26, 20020, &[1]));
    text.push_str(&backend("pop3", 110, 20110, &[1, 2, 3]));
    text.push_str(&backend("imap", 143, 20140, &[1, 2, 3]));
    text
}

struct Haproxy {
    child: Child,
    socket: PathBuf,
}

impl Haproxy {
    fn start(ns: &NetNs, dir: &Path) -> Haproxy {
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(dir)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "haproxy", "-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Haproxy {
            child,
            socket: dir.join("haproxy.sock"),
        }
    }

    /// `show stat` over the admin socket: (backend/server, status) of each server.
    fn servers(&self) -> Vec<(String, String)> {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return Vec::new();
        };
        if s.write_all(b"show stat\n").is_err() {
            return Vec::new();
        }
        BufReader::new(s)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() > 17 && f[1].starts_with("node-"))
                    .then(|| (format!("{}/{}", f[0], f[1]), f[17].to_string()))
            })
            .collect()
    }

    fn wait_all_up(&self) {
        until("every server UP in haproxy", || {
            let s = self.servers();
            s.len() == 10 && s.iter().all(|(_, st)| st == "UP")
        });
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs tests/clients/cluster.py MODE ARGS inside the namespace; its output.
fn cluster(ns: &NetNs, args: &[&str]) -> std::process::Output {
    let script = format!("{}/tests/clients/cluster.py", env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![script.as_str()];
    all.extend_from_slice(args);
    ns.run("python3", &all)
}

/// Starts tests/clients/cluster.py's load of `total` messages to `to` from every client address,
/// the acknowledged Subjects written to `out`.
fn spawn_load(ns: &NetNs, out: &Path, total: usize, to: &str) -> Child {
    let script = format!("{}/tests/clients/cluster.py", env!("CARGO_MANIFEST_DIR"));
    Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "python3", &script, "load", BALANCER, "25",
        ])
        .arg(out)
        .arg(total.to_string())
        .args(CLIENTS)
        .env("CLUSTER_TO", to)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the load")
}

/// A count in cluster.py's summary line ("acked 10 retries 0 ...").
fn count_in(text: &str, what: &str) -> usize {
    text.split_whitespace()
        .skip_while(|w| *w != what)
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what} count in {text}"))
}

fn subject(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .map(str::trim)
}

fn mailbox(shared: &Path, local: &str) -> PathBuf {
    shared.join("mailboxes/example.test").join(local)
}

#[test]
fn three_instances_behind_haproxy() {
    if !have("haproxy") || !have("python3") {
        return;
    }
    let Some(ns) = NetNs::new("ha", BALANCER) else {
        return;
    };
    for c in CLIENTS {
        ns.add_addr(c);
    }
    let shared = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Server> = (1..=3)
        .map(|n| Server::start_wrapped(instance(n, shared.path()), &ns.wrapper()))
        .collect();
    let ha = Haproxy::start(&ns, shared.path());
    ha.wait_all_up();
    let t = std::time::Instant::now();

    // Per-IP limits count the real client, not the balancer every session comes from.
    let out = cluster(
        &ns,
        &[
            "limits",
            BALANCER,
            "26",
            &PER_IP.to_string(),
            CLIENTS[0],
            CLIENTS[1],
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("refused: 421"), "{}", stdout(&out));

    // 2,000 messages from eight clients (two per address); instance 2 killed mid-load.
    const TOTAL: usize = 2000;
    let acked_file = shared.path().join("acked.txt");
    let inbox = mailbox(shared.path(), "alice").join("new");
    let load = spawn_load(&ns, &acked_file, TOTAL, "alice@example.test");
    until("a third of the load delivered", || {
        list(&inbox).len() >= TOTAL / 3
    });
    nodes[1].kill_and_restart(&[]);
    let out = load.wait_with_output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    ha.wait_all_up();

    let acked: Vec<String> = std::fs::read_to_string(&acked_file)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(
        acked.len(),
        TOTAL,
        "every message acknowledged once in the end"
    );
    let mut seen = std::collections::HashMap::new();
    let mut by_instance = std::collections::BTreeMap::new();
    for f in list(&inbox) {
        let text = std::fs::read_to_string(&f).unwrap();
        let s = subject(&text).expect("a Subject").to_string();
        // load-<client ip>-<thread>-<message>-a<attempt>
        let ip = s.split('-').nth(1).unwrap().to_string();
        assert!(
            text.contains(&format!("[{ip}]")),
            "Received: does not name the real client {ip}:\n{text}"
        );
        assert!(
            !text.contains("[127.0.0.1]"),
            "the balancer as client:\n{text}"
        );
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let node = name
            .split(',')
            .next()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_string();
        *by_instance.entry(node).or_insert(0) += 1;
        *seen.entry(s).or_insert(0) += 1;
    }
    for s in &acked {
        assert_eq!(
            seen.get(s),
            Some(&1),
            "acknowledged {s}: {:?} copies",
            seen.get(s)
        );
    }
    assert!(seen.values().all(|&n| n == 1), "an attempt stored twice");
    assert_eq!(
        by_instance.keys().collect::<Vec<_>>(),
        ["node-1", "node-2", "node-3"],
        "{by_instance:?}"
    );
    eprintln!(
        "load: {} acknowledged, {} stored (the rest were cut by the kill before their 250), by instance {by_instance:?}",
        acked.len(),
        seen.len()
    );

    eprintln!("{:?}: the load checked", t.elapsed());
    // A rolling restart under load: instance 3 drained (HAProxy sees /health 503 and sends it
    // nothing new; its sessions end), restarted, back in; not one attempt of the load fails.
    let rolling = shared.path().join("rolling.txt");
    let load = spawn_load(&ns, &rolling, 600, "dave@example.test");
    let dave = mailbox(shared.path(), "dave").join("new");
    until("the second load under way", || list(&dave).len() >= 100);
    let out = nodes[2].ctl(&["drain", "--timeout", "60s", "--settle", "1s"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    until("haproxy has taken instance 3 out", || {
        ha.servers()
            .iter()
            .filter(|(name, _)| name.ends_with("/node-3"))
            .all(|(_, st)| st.starts_with("DOWN"))
    });
    nodes[2].kill_and_restart(&[]);
    ha.wait_all_up();
    let out = load.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert_eq!(
        (count_in(&text, "acked"), count_in(&text, "retries")),
        (600, 0),
        "a session refused or cut during the rolling restart: {text}"
    );

    eprintln!("{:?}: the rolling restart checked", t.elapsed());
    // POP3: two sessions on two instances at once, 1,000 times; each that gets the maildrop
    // deletes one message. Never both: the messages gone are exactly the deletions.
    const ROUNDS: usize = 1000;
    let bob = mailbox(shared.path(), "bob");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(bob.join(sub)).unwrap();
    }
    // Two deletions a round at most (when the sessions do not meet).
    let start = 2 * ROUNDS + 100;
    for i in 0..start {
        let name = format!("1800000000.M{i}P1Q1.seed");
        std::fs::write(
            bob.join("new").join(&name),
            format!("Subject: seed {i}\n\nx\n"),
        )
        .unwrap();
    }
    let out = cluster(
        &ns,
        &[
            "pop3race",
            BALANCER,
            "110",
            "bob@example.test",
            PASSWORD,
            &ROUNDS.to_string(),
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let (deleted, locked) = (count_in(&text, "deleted"), count_in(&text, "locked"));
    let left = list(&bob.join("new")).len() + list(&bob.join("cur")).len();
    assert_eq!(
        start - left,
        deleted,
        "{text}: two sessions held the maildrop at once"
    );
    assert_eq!(deleted + locked, 2 * ROUNDS, "{text}");
    assert!(locked > 0, "the sessions never met: {text}");

    eprintln!(
        "{:?}: the POP3 race checked ({deleted} deleted, {locked} locked)",
        t.elapsed()
    );
    // IMAP: two sessions on two instances append 500 messages each at once; one UID each.
    let out = cluster(
        &ns,
        &[
            "imaprace",
            BALANCER,
            "143",
            "carol@example.test",
            PASSWORD,
            "500",
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("exists 1000 uids 1000 unique True"), "{text}");
    let uidlist =
        std::fs::read_to_string(mailbox(shared.path(), "carol").join("dovecot-uidlist")).unwrap();
    assert_eq!(
        uidlist.lines().count(),
        1001,
        "a header and one line per message"
    );
    eprintln!("{:?}: the IMAP race checked", t.elapsed());
    drop(ha);
    drop(nodes);
}
