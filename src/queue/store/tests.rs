//! The queue on a temporary directory.

use super::*;

fn rcpt(address: &str, remote: bool) -> Recipient {
    let (local, domain) = address.split_once('@').unwrap();
    Recipient::new(address, domain, local, remote)
}

fn queue_one(store: &Arc<QueueStore>, text: &[u8]) -> String {
    let mut d = Arc::clone(store).begin(
        &Origin::sender("a@b.test"),
        &[rcpt("x@far.test", true), rcpt("me@example.test", false)],
    );
    d.write(text).unwrap();
    d.commit().unwrap().id
}

#[test]
fn commit_makes_message_and_envelope_durable_and_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    store.on_queued(Arc::new(move |e: &Envelope| {
        s2.lock().unwrap().push(e.id.clone())
    }));
    let id = queue_one(&store, b"Subject: q\n\nbody\n");
    assert_eq!(seen.lock().unwrap().as_slice(), std::slice::from_ref(&id));
    let (envs, problems) = store.load().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(envs.len(), 1);
    let e = &envs[0];
    assert_eq!(
        (e.id.as_str(), e.sender.as_str(), e.size),
        (id.as_str(), "a@b.test", 17)
    );
    assert_eq!(e.recipients.len(), 2);
    assert!(!e.recipients[0].local_delivery && e.recipients[1].local_delivery);
    assert!(e.recipients.iter().all(|r| r.state == State::Queued));
    assert_eq!(&*store.read_message(e).unwrap(), b"Subject: q\n\nbody\n");
    // One file per queued message: no envelope file until an attempt leaves something to do.
    assert_eq!(
        fs::read_dir(dir.path().join("tmp/test")).unwrap().count(),
        0
    );
    assert_eq!(fs::read_dir(dir.path().join("env")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(dir.path().join("msg")).unwrap().count(), 1);
}

#[test]
fn aborted_and_dropped_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let mut d = Arc::clone(&store).begin(&Origin::default(), &[rcpt("x@far.test", true)]);
    d.write(b"x\n").unwrap();
    d.abort();
    let mut d = Arc::clone(&store).begin(&Origin::default(), &[rcpt("x@far.test", true)]);
    d.write(b"y\n").unwrap();
    drop(d);
    for sub in ["tmp/test", "msg", "env"] {
        assert_eq!(
            fs::read_dir(dir.path().join(sub)).unwrap().count(),
            0,
            "{sub}"
        );
    }
}

/// What a crash leaves: a file in tmp/ (never acknowledged), a message file of an older version
/// with no envelope, and an `env/` file whose message was removed are cleaned up; a message whose
/// envelope cannot be read (a corrupt `env/` file, a cut first line) is set aside with its bytes
/// and reported; the good ones load, from their first line or from their `env/` file.
#[test]
fn load_cleans_what_a_crash_left() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let good = queue_one(&store, b"ok\n");
    let saved = queue_one(&store, b"saved\n");
    let mut env = store
        .load()
        .unwrap()
        .0
        .into_iter()
        .find(|e| e.id == saved)
        .unwrap();
    env.recipients[0].attempts = 2;
    store.save(&env).unwrap();
    fs::write(dir.path().join("tmp/test/half"), b"x").unwrap();
    // An older version's, straight in tmp/ and spare/.
    fs::write(dir.path().join("tmp/old"), b"x").unwrap();
    fs::write(dir.path().join("spare/old"), b"x").unwrap();
    fs::write(dir.path().join("msg/orphan"), b"x").unwrap();
    fs::write(dir.path().join("env/gone.json"), b"{}").unwrap();
    fs::write(dir.path().join("env/bad.json"), b"{not json").unwrap();
    fs::write(dir.path().join("msg/bad"), b"acknowledged text").unwrap();
    fs::write(
        dir.path().join("msg/cut"),
        b"smtpd-queue-envelope {\"id\":\"cut\",\"sen",
    )
    .unwrap();
    let (envs, mut problems) = store.load().unwrap();
    let mut ids: Vec<String> = envs.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    let mut want = vec![good, saved.clone()];
    want.sort();
    assert_eq!(ids, want);
    let loaded = envs.iter().find(|e| e.id == saved).unwrap();
    assert_eq!(loaded.recipients[0].attempts, 2, "the env/ file wins");
    assert_eq!(&*store.read_message(loaded).unwrap(), b"saved\n");
    problems.sort();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("bad.json"), "{problems:?}");
    assert!(problems[1].contains("msg/cut"), "{problems:?}");
    assert!(dir.path().join("corrupt/bad.json").is_file());
    assert_eq!(
        fs::read(dir.path().join("corrupt/bad")).unwrap(),
        b"acknowledged text",
        "the message of a corrupt envelope is kept"
    );
    assert!(dir.path().join("corrupt/cut").is_file());
    for gone in [
        "msg/orphan",
        "tmp/test/half",
        "tmp/old",
        "spare/old",
        "env/gone.json",
    ] {
        assert!(!dir.path().join(gone).exists(), "{gone}");
    }
}

/// A removal cut short after its first step (the message unlinked, its `env/` file still
/// there) loses nothing and sends nothing again: the leftover is removed at start.
#[test]
fn an_interrupted_removal_leaves_nothing_to_send() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let id = queue_one(&store, b"m\n");
    let (envs, _) = store.load().unwrap();
    store.save(&envs[0]).unwrap();
    fs::remove_file(store.message_path(&id)).unwrap();
    let (envs, problems) = store.load().unwrap();
    assert!(
        envs.is_empty() && problems.is_empty(),
        "{envs:?} {problems:?}"
    );
    assert_eq!(fs::read_dir(dir.path().join("env")).unwrap().count(), 0);
}

#[test]
fn save_replaces_and_remove_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let id = queue_one(&store, b"m\n");
    let (mut envs, _) = store.load().unwrap();
    envs[0].recipients[0].state = State::Delivered;
    envs[0].recipients[1].attempts = 3;
    store.save(&envs[0]).unwrap();
    let (again, _) = store.load().unwrap();
    assert_eq!(again, envs);
    store.remove(&id).unwrap();
    assert!(store.load().unwrap().0.is_empty());
    assert!(!store.message_path(&id).exists());
}

/// A queue written by the previous layout (the message alone in `msg/`, its envelope in
/// `env/` with no `body_offset`) loads after an upgrade, its message read whole.
#[test]
fn the_previous_layout_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    fs::write(dir.path().join("msg/old1"), b"Subject: old\n\nbody\n").unwrap();
    fs::write(
        dir.path().join("env/old1.json"),
        br#"{"id":"old1","sender":"a@b.test","created":5,"size":19,"recipients":[
            {"address":"x@far.test","domain":"far.test","local":"x","state":"deferred"}]}"#,
    )
    .unwrap();
    let (envs, problems) = store.load().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(envs.len(), 1);
    assert_eq!((envs[0].body_offset, envs[0].size), (0, 19));
    assert_eq!(
        &*store.read_message(&envs[0]).unwrap(),
        b"Subject: old\n\nbody\n"
    );
}

/// A removal takes the message and, when it has one, its `env/` file (saved since, or found
/// at load by another store on the same directory), fsyncs `msg/`; an unknown id is no error.
#[test]
fn remove_takes_the_env_file_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let a = queue_one(&store, b"a\n");
    let b = queue_one(&store, b"b\n");
    let (envs, _) = store.load().unwrap();
    for e in &envs {
        store.save(e).unwrap();
    }
    let count = |sub: &str| std::fs::read_dir(dir.path().join(sub)).unwrap().count();
    assert_eq!((count("msg"), count("env")), (2, 2));
    let before = store.dir_syncs("msg");
    store.remove(&a).unwrap();
    assert_eq!(store.dir_syncs("msg"), before + 1);
    // Another store (a restart) learns of b's env/ file at load.
    let again = QueueStore::open(dir.path(), "test").unwrap();
    assert_eq!(again.load().unwrap().0.len(), 1);
    again.remove(&b).unwrap();
    again.remove("never-queued").unwrap();
    assert_eq!((count("msg"), count("env")), (0, 0));
}

/// The message is read by its envelope's offset and size; a file cut short (a damaged disk, a
/// hand edit) is an error that says so, not a shorter message sent on.
#[test]
fn a_message_file_shorter_than_its_envelope_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let id = queue_one(&store, b"Subject: x\n\nbody\n");
    let env = store.load().unwrap().0.remove(0);
    assert_eq!(&*store.read_message(&env).unwrap(), b"Subject: x\n\nbody\n");
    let path = store.message_path(&id);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let e = store.read_message(&env).unwrap_err();
    assert!(e.to_string().contains("shorter than its envelope"), "{e}");
}

/// A removed small message's file is recycled: the next message is written into it, cut to its
/// own length (nothing of the longer previous one left at its end), and loads like any other; a
/// large one is unlinked, and a message given up leaves no recycled file behind either.
#[test]
fn removed_files_are_recycled_cut_to_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let count = |sub: &str| fs::read_dir(dir.path().join(sub)).unwrap().count();
    let long = queue_one(&store, &b"a long first message\n".repeat(20));
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let first = ino(&store.message_path(&long));
    store.remove(&long).unwrap();
    assert_eq!(
        (count("msg"), count("spare/test"), store.spare_count()),
        (0, 1, 1)
    );
    let short = queue_one(&store, b"short\n");
    assert_eq!(ino(&store.message_path(&short)), first, "the same file");
    assert_eq!(
        (count("spare/test"), count("tmp/test"), store.spare_count()),
        (0, 0, 0)
    );
    let env = store.load().unwrap().0.remove(0);
    assert_eq!(&*store.read_message(&env).unwrap(), b"short\n");
    let on_disk = fs::read(store.message_path(&short)).unwrap();
    assert!(
        on_disk.ends_with(b"}\nshort\n"),
        "{:?}",
        String::from_utf8_lossy(&on_disk)
    );

    let big = queue_one(&store, &vec![b'x'; SPARE_MAX_BYTES as usize + 1]);
    store.remove(&big).unwrap();
    assert_eq!(count("spare/test"), 0, "too large to keep");

    store.remove(&short).unwrap();
    let mut d = Arc::clone(&store).begin(&Origin::default(), &[rcpt("x@far.test", true)]);
    d.write(b"given up\n").unwrap();
    drop(d);
    for sub in ["tmp/test", "msg", "spare/test"] {
        assert_eq!(count(sub), 0, "{sub}");
    }
}

/// At start `spare/` is taken back, but never a file that is also a queued message (a rename a
/// crash cut in half on a file system without a journal leaves both names), and one file under
/// two names only once.
#[test]
fn load_takes_spares_back_but_never_a_queued_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), "test").unwrap();
    let queued = queue_one(&store, b"still queued\n");
    let spare = dir.path().join("spare/test");
    fs::hard_link(store.message_path(&queued), spare.join("half-renamed")).unwrap();
    fs::write(spare.join("one"), b"old").unwrap();
    fs::hard_link(spare.join("one"), spare.join("one-again")).unwrap();
    fs::write(spare.join("free"), b"old message").unwrap();
    let (envs, _) = store.load().unwrap();
    assert_eq!(envs.len(), 1);
    assert_eq!(
        store.spare_count(),
        1,
        "only `free`: the others have two names"
    );
    let next = queue_one(&store, b"new\n");
    assert!(!spare.join("free").exists());
    assert!(
        fs::read(store.message_path(&queued))
            .unwrap()
            .ends_with(b"still queued\n")
    );
    let env = store
        .load()
        .unwrap()
        .0
        .into_iter()
        .find(|e| e.id == next)
        .unwrap();
    assert_eq!(&*store.read_message(&env).unwrap(), b"new\n");
}

/// Two instances on one queue directory: each clears only its own `tmp/` at start, their ids
/// differ in their tags, one at a time claims a message (the other is told it is busy, then
/// that it is gone once removed), and a claim reads the envelope the other instance saved.
#[test]
fn instances_sharing_a_queue_claim_each_message_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let a = QueueStore::open(dir.path(), "node-a").unwrap();
    let b = QueueStore::open(dir.path(), "node-b").unwrap();
    let id = queue_one(&a, b"shared\n");
    let other = queue_one(&b, b"other\n");
    assert_ne!(id[id.len() - 5..], other[other.len() - 5..], "{id} {other}");
    assert_eq!(id_tag("node-a", 7), id_tag("node-a", 7));
    assert_ne!(id_tag("node-a", 7), id_tag("node-a", 8));

    // b starting while a writes a message: a's tmp/ file stays.
    let mut writing = Arc::clone(&a).begin(&Origin::default(), &[rcpt("x@far.test", true)]);
    writing.write(b"half\n").unwrap();
    let (envs, _) = b.load().unwrap();
    assert_eq!(envs.len(), 2);
    assert_eq!(
        fs::read_dir(a.tmp_dir()).unwrap().count(),
        1,
        "a's file is a's"
    );
    drop(writing);

    let Claim::Claimed { lock, mut envelope } = a.claim(&id).unwrap() else {
        panic!("a claims its message")
    };
    assert!(matches!(b.claim(&id).unwrap(), Claim::Busy));
    assert!(
        matches!(a.claim(&id).unwrap(), Claim::Busy),
        "a second attempt here too"
    );
    envelope.recipients[0].attempts = 3;
    a.save(&envelope).unwrap();
    drop(lock);
    let Claim::Claimed { lock, envelope } = b.claim(&id).unwrap() else {
        panic!("free again")
    };
    assert_eq!(envelope.recipients[0].attempts, 3, "b reads what a saved");
    b.remove_claimed(&id, lock).unwrap();
    assert!(matches!(a.claim(&id).unwrap(), Claim::Gone));
    assert!(
        !dir.path().join("env").join(format!("{id}.json")).exists(),
        "env/ file removed by b"
    );
    let mut left = b.scan().unwrap();
    left.sort();
    assert_eq!(left, [other]);
}

/// A claim taken on a file that is removed before the lock is had is not that message: the
/// file may already be recycled for another one.
#[test]
fn a_claim_on_a_removed_file_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let a = QueueStore::open(dir.path(), "node-a").unwrap();
    let id = queue_one(&a, b"short\n");
    let held = File::open(a.message_path(&id)).unwrap();
    held.lock().unwrap();
    assert!(
        matches!(a.claim(&id).unwrap(), Claim::Busy),
        "without waiting"
    );
    a.remove_claimed(&id, held).unwrap();
    let next = queue_one(&a, b"recycled\n");
    assert_eq!(
        a.spare_count(),
        0,
        "the file was recycled for the next message"
    );
    assert!(matches!(a.claim(&id).unwrap(), Claim::Gone));
    assert!(matches!(a.claim(&next).unwrap(), Claim::Claimed { .. }));
}
