//! Several instances on one queue directory (issue 19): what each queues the others take up by
//! their scan (`[queue] scan_interval_secs`), an attempt claims its message first so two live
//! instances never send one message twice, and the messages of an instance killed with -9 are
//! delivered by the others.
mod common;
use common::*;

/// A receiver for far.test that takes a second over each message to `slow-1s@`, so that the
/// attempts of two instances overlap.
fn receiver() -> Server {
    Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set("testing", "fault_addresses", "true"),
    )
}

const TO: &str = "slow-1s@far.test";

/// An instance named `name` on the queue at `queue`, routing far.test to `route`, retrying
/// after 1-2 s and listing the queue every second.
fn instance(name: &str, queue: &std::path::Path, route: &str) -> Overrides {
    Overrides::new()
        .set("server", "instance", &format!("\"{name}\""))
        .set("queue", "dir", &format!("\"{}\"", queue.display()))
        .set("queue", "scan_interval_secs", "1")
        .set("queue", "minimal_backoff_secs", "1")
        .set("queue", "maximal_backoff_secs", "2")
        .set(
            "relay",
            "routes",
            &format!("{{ \"far.test\" = \"{route}\" }}"),
        )
}

/// A loopback port nobody listens on (bound, then closed).
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn instances_on_one_queue_deliver_each_message_once_and_take_over_a_dead_one() {
    let shared = tempfile::tempdir().unwrap();
    let q = shared.path().join("queue");
    let nowhere = closed_port();
    let names = ["node-a", "node-b", "node-c"];
    let mut nodes: Vec<Server> = names
        .iter()
        .map(|n| Server::start_with(instance(n, &q, &nowhere)))
        .collect();
    const EACH: usize = 25;
    for (i, node) in nodes.iter().enumerate() {
        let mut c = node.connect();
        c.expect(220);
        for k in 0..EACH {
            let text = format!("Subject: m-{i}-{k}\r\n\r\nhello\r\n");
            let r = c.send_mail("alice@example.test", &[TO], text.as_bytes());
            assert_eq!(r.code, 250, "{r:?}");
        }
    }
    let total = EACH * nodes.len();
    // Every instance takes up the others' messages (all deferred: nobody listens).
    for node in &nodes {
        until("every instance lists every message", || {
            node.queue().len() == total
        });
    }
    // A hold made through one instance holds the message for all: node-b holds one node-a
    // queued, and node-a does not send it.
    let first = nodes[0].queue()[0]["id"].as_str().unwrap().to_string();
    let out = nodes[1].ctl(&["queue", "hold", &first]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // One dies with its messages and claims; the other two get a working route.
    let mut dead = nodes.pop().unwrap();
    dead.signal(9);
    let _ = dead.wait_exit();
    let far = receiver();
    for (node, name) in nodes.iter().zip(names) {
        node.rewrite_config(&instance(name, &q, &far.addr("smtp").to_string()));
        assert_eq!(node.ctl_json(&["reload"])["applied"], true);
        node.ctl(&["queue", "flush"]);
    }
    until("every message but the held one at the receiver", || {
        far.new_mail("far.test", "slow-1s").len() >= total - 1
    });
    for node in &nodes {
        until("only the held message queued", || {
            let q = node.queue();
            q.len() == 1 && q[0]["id"] == first.as_str()
        });
    }
    assert_eq!(
        far.new_mail("far.test", "slow-1s").len(),
        total - 1,
        "the held one was sent"
    );
    // Released through node-a: sent (once) by whichever instance claims it.
    let out = nodes[0].ctl(&["queue", "release", &first]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    nodes[1].ctl(&["queue", "flush"]);
    until("every message at the receiver", || {
        far.new_mail("far.test", "slow-1s").len() >= total
    });
    for node in &nodes {
        until("an empty queue", || node.queue().is_empty());
    }
    assert!(
        walk(&q.join("msg")).is_empty(),
        "msg/ left: {:?}",
        walk(&q.join("msg"))
    );
    let mut subjects: Vec<String> = far
        .new_mail("far.test", "slow-1s")
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let s = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
            s.to_string()
        })
        .collect();
    subjects.sort();
    let before = subjects.len();
    subjects.dedup();
    assert_eq!(before, subjects.len(), "a message delivered twice");
    assert_eq!(subjects.len(), total);
    drop(dead);
}
