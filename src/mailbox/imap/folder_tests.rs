use super::*;
use crate::mailbox::imap::Flag;

fn maildir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for s in ["tmp", "new", "cur"] {
        fs::create_dir(d.path().join(s)).unwrap();
    }
    d
}

fn deliver(dir: &Path, name: &str, body: &str) {
    fs::write(dir.join("new").join(name), body).unwrap();
}

#[test]
fn open_moves_new_to_cur_and_assigns_uids_in_delivery_order() {
    let d = maildir();
    deliver(d.path(), "1700000010.M5P1Q2.h,S=6,W=8", "a\nbc\n");
    deliver(d.path(), "1700000009.M9P1Q1.h,S=3,W=4", "x\ny");
    deliver(d.path(), "1700000010.M10P1Q3.h", "no hint\n");
    let f = Folder::open(d.path(), false).unwrap();
    let bases: Vec<(u32, &str)> = f.msgs.iter().map(|m| (m.uid, m.base.as_str())).collect();
    assert_eq!(
        bases,
        [
            (1, "1700000009.M9P1Q1.h,S=3,W=4"),
            (2, "1700000010.M5P1Q2.h,S=6,W=8"),
            (3, "1700000010.M10P1Q3.h")
        ]
    );
    assert!(
        f.msgs
            .iter()
            .all(|m| m.recent && m.path.parent().unwrap().ends_with("cur"))
    );
    assert_eq!(f.msgs[2].size, 9, "no W= hint: counted with CRLF");
    assert_eq!(fs::read_dir(d.path().join("new")).unwrap().count(), 0);
    let list = uidlist::read(d.path()).unwrap().unwrap();
    assert_eq!(list.next_uid, 4);
    assert_eq!(f.uidvalidity, list.uidvalidity);
    // UIDs survive a reopen; a read-only open leaves new/ alone.
    deliver(d.path(), "1700000011.M1P1Q4.h", "z\n");
    let g = Folder::open(d.path(), true).unwrap();
    assert_eq!(
        g.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(g.msgs[3].path.parent().unwrap().ends_with("new"));
}

#[test]
fn sync_reports_expunges_arrivals_and_flag_changes() {
    let d = maildir();
    for i in 1..=4 {
        deliver(d.path(), &format!("17000000{i:02}.M1P1Q{i}.h"), "m\n");
    }
    let mut a = Folder::open(d.path(), false).unwrap();
    let mut b = Folder::open(d.path(), false).unwrap();
    // a: flag message 4, expunge 2 and 3 (marked \Deleted).
    let mut fl = a.msgs[3].flags.clone();
    fl.insert(Flag::Flagged);
    a.set_flags(3, fl).unwrap();
    let gone = a.expunge(|i, _| i == 1 || i == 2).unwrap();
    assert_eq!(gone, [2, 2]);
    deliver(d.path(), "1700000099.M1P1Q9.h", "new\n");
    let ch = b.sync().unwrap();
    assert_eq!(ch.expunged, [2, 2]);
    assert_eq!(ch.exists, Some(3));
    assert_eq!(ch.flags, [2]);
    assert_eq!(b.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 4, 5]);
    assert!(b.msgs[1].flags.contains(Flag::Flagged));
    assert_eq!(b.seq_of(5), Some(3));
    assert_eq!(b.seq_of(2), None);
}

#[test]
fn flags_are_renames_within_cur_that_keep_the_base() {
    let d = maildir();
    deliver(d.path(), "1700000001.M1P1Q1.h,S=2,W=3", "m\n");
    let mut f = Folder::open(d.path(), false).unwrap();
    let mut fl = Flags::default();
    fl.insert(Flag::Seen);
    fl.insert(Flag::Answered);
    f.set_flags(0, fl).unwrap();
    let names: Vec<String> = fs::read_dir(d.path().join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["1700000001.M1P1Q1.h,S=2,W=3:2,RS"]);
    assert_eq!(f.read(0).unwrap(), b"m\n");
}

#[test]
fn dovecot_uids_are_kept() {
    let d = maildir();
    fs::write(d.path().join("cur/1700000001.M1P1Q1.h:2,S"), "a\n").unwrap();
    fs::write(d.path().join("cur/1700000002.M1P1Q1.h:2,"), "b\n").unwrap();
    fs::write(
        d.path().join(uidlist::FILE),
        "3 V1234 N40 G0123456789abcdef0123456789abcdef\n17 :1700000001.M1P1Q1.h\n31 W4 :1700000002.M1P1Q1.h\n",
    )
    .unwrap();
    let f = Folder::open(d.path(), false).unwrap();
    assert_eq!(f.uidvalidity, 1234);
    assert_eq!(f.next_uid, 40);
    assert_eq!(f.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), [17, 31]);
    assert!(f.msgs[0].flags.contains(Flag::Seen));
    // Nothing new: the list is not rewritten.
    let text = fs::read_to_string(d.path().join(uidlist::FILE)).unwrap();
    assert!(text.contains("31 W4 :"));
}

#[test]
fn sizes_and_dates_come_from_the_cache_after_the_first_open() {
    let d = maildir();
    deliver(d.path(), "1700000001.M1P1Q1.h", "one\n");
    deliver(d.path(), "1700000002.M1P1Q2.h", "two\n");
    let f = Folder::open(d.path(), false).unwrap();
    assert_eq!(f.msgs[0].size, 5);
    let cached = cache::load(d.path());
    assert_eq!(cached.len(), 2);
    // The file is not read again: a changed length (which a Maildir file never has) is not seen.
    let path = f.msgs[0].path.clone();
    fs::write(&path, "one, longer\n").unwrap();
    let f = Folder::open(d.path(), true).unwrap();
    assert_eq!(f.msgs[0].size, 5);
    // Missing or stale: worked out from the files again; gone messages leave the cache.
    fs::remove_file(d.path().join(cache::FILE)).unwrap();
    fs::remove_file(&f.msgs[1].path).unwrap();
    let f = Folder::open(d.path(), true).unwrap();
    assert_eq!(f.msgs.len(), 1);
    assert_eq!(f.msgs[0].size, 13);
    let cached = cache::load(d.path());
    assert_eq!(cached.len(), 1);
    assert!(cached.contains_key("1700000001.M1P1Q1.h"));
}
