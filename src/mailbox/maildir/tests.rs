//! Maildir delivery on a temporary directory.

use super::*;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn deliver_to_two_maildirs() {
    let root = tempfile::tempdir().unwrap();
    let store = MaildirStore::new(root.path(), "mx.test");
    let a = store.maildir("example.test", "alice").unwrap();
    let b = store.maildir("other.test", "bob").unwrap();
    store.ensure(&a).unwrap();
    store.ensure(&b).unwrap();
    let mut spool = store.begin(&a).unwrap();
    spool.write(b"Subject: hi\n\nbody\n").unwrap();
    assert_eq!(files(&a.join("tmp")).len(), 1);
    let name = spool.final_name();
    assert!(name.ends_with(",S=18,W=21"), "{name}");
    let paths = spool.commit(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(paths.len(), 2);
    assert!(files(&a.join("tmp")).is_empty());
    for md in [&a, &b] {
        let f = files(&md.join("new"));
        assert_eq!(f.len(), 1);
        assert_eq!(fs::read(&f[0]).unwrap(), b"Subject: hi\n\nbody\n");
        let fname = f[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            fname.contains(".M") && fname.contains("P") && fname.contains(".mx.test,S=18,W=21"),
            "{fname}"
        );
    }
}

#[test]
fn dropped_spool_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let store = MaildirStore::new(root.path(), "mx.test");
    let a = store.maildir("example.test", "alice").unwrap();
    store.ensure(&a).unwrap();
    let mut spool = store.begin(&a).unwrap();
    spool.write(b"partial").unwrap();
    drop(spool);
    assert!(files(&a.join("tmp")).is_empty());
    assert!(files(&a.join("new")).is_empty());
}

#[test]
fn failed_commit_leaves_nothing_in_new() {
    let root = tempfile::tempdir().unwrap();
    let store = MaildirStore::new(root.path(), "mx.test");
    let a = store.maildir("example.test", "alice").unwrap();
    let b = store.maildir("example.test", "bob").unwrap();
    store.ensure(&a).unwrap();
    store.ensure(&b).unwrap();
    // bob's new/ is not a directory: placing his copy fails after alice's was linked.
    fs::remove_dir(b.join("new")).unwrap();
    fs::write(b.join("new"), b"").unwrap();
    let mut spool = store.begin(&a).unwrap();
    spool.write(b"x\n").unwrap();
    let err = spool.commit(&[a.clone(), b.clone()]).unwrap_err();
    assert!(!err.is_disk_full());
    assert!(files(&a.join("new")).is_empty());
    assert!(files(&a.join("tmp")).is_empty());
}

#[test]
fn stale_tmp_files_are_removed() {
    let root = tempfile::tempdir().unwrap();
    let store = MaildirStore::new(root.path(), "mx.test");
    let md = store.maildir("example.test", "alice").unwrap();
    store.ensure(&md).unwrap();
    let old = md.join("tmp/old");
    let fresh = md.join("tmp/fresh");
    fs::write(&old, b"x").unwrap();
    fs::write(&fresh, b"x").unwrap();
    let long_ago = SystemTime::now() - std::time::Duration::from_secs(40 * 3600);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let n = clean_stale_tmp(root.path(), std::time::Duration::from_secs(36 * 3600));
    assert_eq!(n, 1);
    assert!(!old.exists() && fresh.exists());
}

#[test]
fn unsafe_names_refused() {
    let store = MaildirStore::new("/nonexistent", "mx");
    for (d, l) in [
        ("..", "x"),
        ("a", ".."),
        ("a", "b/c"),
        ("a/b", "c"),
        ("", "x"),
        ("a", ".hidden"),
    ] {
        assert!(store.maildir(d, l).is_err(), "{d}/{l}");
    }
}

#[test]
fn hostname_escaped_in_unique_names() {
    let store = MaildirStore::new("/x", "a/b:c");
    assert_eq!(store.host, "a\\057b\\072c");
}
