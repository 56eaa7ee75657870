use super::*;
use crate::mailbox::imap::Flag;

fn account() -> (tempfile::TempDir, Account) {
    let d = tempfile::tempdir().unwrap();
    for s in ["tmp", "new", "cur"] {
        fs::create_dir(d.path().join(s)).unwrap();
    }
    let names = Arc::new(MaildirStore::new(d.path(), "host"));
    let a = Account::open(d.path(), names).unwrap();
    (d, a)
}

#[test]
fn first_open_makes_and_subscribes_the_special_folders() {
    let (d, a) = account();
    let f = a.folders().unwrap();
    let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    );
    assert!(f.iter().all(|f| f.subscribed));
    assert_eq!(f[4].special, Some("\\Sent"));
    assert!(d.path().join(".Sent/maildirfolder").exists());
    // A folder the user deleted is not made again at the next login.
    a.delete("Junk").unwrap();
    let again = Account::open(d.path(), Arc::clone(&a.names)).unwrap();
    assert!(again.folders().unwrap().iter().all(|f| f.name != "Junk"));
}

#[test]
fn names_that_could_leave_the_account_are_refused() {
    let (_d, a) = account();
    for bad in [
        "", "../x", "a/b", "a\\b", ".hidden", "a..b", ".a", "x\u{7}", "a\nb", "INBOX.x",
    ] {
        assert!(
            matches!(
                a.create(bad),
                Err(StoreError::BadName(_)) | Err(StoreError::Exists)
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(a.create("Sent"), Err(StoreError::Exists)));
    assert!(matches!(a.create("inbox"), Err(StoreError::Exists)));
}

#[test]
fn create_rename_delete_with_children() {
    let (_d, a) = account();
    a.create("Work").unwrap();
    a.create("Work.2026").unwrap();
    a.subscribe("Work.2026", true).unwrap();
    let f = a.folders().unwrap();
    assert!(f.iter().find(|f| f.name == "Work").unwrap().has_children);
    assert!(matches!(a.delete("Work"), Err(StoreError::Refused(_))));
    a.rename("Work", "Jobs").unwrap();
    let names: Vec<String> = a.folders().unwrap().into_iter().map(|f| f.name).collect();
    assert!(names.contains(&"Jobs.2026".to_string()) && !names.contains(&"Work".to_string()));
    assert!(a.subscriptions().contains(&"Jobs.2026".to_string()));
    a.delete("Jobs.2026").unwrap();
    a.delete("Jobs").unwrap();
    assert!(matches!(a.delete("Jobs"), Err(StoreError::NoSuchFolder)));
    assert!(matches!(a.delete("INBOX"), Err(StoreError::Refused(_))));
}

#[test]
fn append_and_copy_get_the_next_uids() {
    let (_d, a) = account();
    let sent = a.existing("Sent").unwrap();
    let mut fl = Flags::default();
    fl.insert(Flag::Seen);
    let (v, uid) = a
        .append(
            &sent,
            b"Subject: x\r\n\r\nbody\r\n",
            &fl,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        )
        .unwrap();
    assert_eq!(uid, 1);
    let f = Folder::open(&sent, false).unwrap();
    assert_eq!(f.uidvalidity, v);
    assert_eq!(f.msgs.len(), 1);
    assert!(f.msgs[0].flags.contains(Flag::Seen));
    assert_eq!(f.msgs[0].internal, 1_000_000);
    assert_eq!(f.read(0).unwrap(), b"Subject: x\n\nbody\n");
    assert_eq!(f.msgs[0].size, 20);
    let trash = a.existing("Trash").unwrap();
    let m = &f.msgs[0];
    let (_, u2) = a.copy(&m.path, &trash, &m.base, &m.flags).unwrap();
    assert_eq!(u2, 1);
    let (_, u3) = a.copy(&m.path, &trash, &m.base, &m.flags).unwrap();
    assert_eq!(u3, 2);
    let t = Folder::open(&trash, false).unwrap();
    assert_eq!(t.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(t.msgs[1].size, 20);
}
