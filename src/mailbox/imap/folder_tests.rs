use super::*;
use crate::mailbox::imap::Flag;
use crate::mailbox::imap::index::{self, Index};

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
    assert_eq!(gone, [(2, 2), (2, 3)]);
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
    let cached = Index::load(d.path()).entries;
    assert_eq!(cached.len(), 2);
    // The file is not read again: a changed length (which a Maildir file never has) is not seen.
    let path = f.msgs[0].path.clone();
    fs::write(&path, "one, longer\n").unwrap();
    let f = Folder::open(d.path(), true).unwrap();
    assert_eq!(f.msgs[0].size, 5);
    // Missing or stale: worked out from the files again; gone messages leave the cache.
    fs::remove_file(d.path().join(crate::mailbox::imap::index::FILE)).unwrap();
    fs::remove_file(&f.msgs[1].path).unwrap();
    let f = Folder::open(d.path(), true).unwrap();
    assert_eq!(f.msgs.len(), 1);
    assert_eq!(f.msgs[0].size, 13);
    let cached = Index::load(d.path()).entries;
    assert_eq!(cached.len(), 1);
    assert!(cached.contains_key("1700000001.M1P1Q1.h"));
}

fn rename_flags_elsewhere(dir: &Path, base: &str, letters: &str) {
    let from = find(dir, base).unwrap();
    fs::rename(&from, dir.join("cur").join(format!("{base}:2,{letters}"))).unwrap();
}

#[test]
fn modseqs_grow_with_each_change_are_shared_and_survive_a_reopen() {
    let d = maildir();
    for i in 1..=3 {
        deliver(d.path(), &format!("17000000{i:02}.M1P1Q{i}.h"), "m\n");
    }
    let mut a = Folder::open(d.path(), false).unwrap();
    let start = a.highest_modseq();
    assert!(a.msgs.iter().all(|m| m.modseq == start));
    let mut b = Folder::open(d.path(), false).unwrap();
    assert_eq!(b.highest_modseq(), start);
    // A STORE by a: one new modseq, seen by b with the same value.
    let mut fl = a.msgs[0].flags.clone();
    fl.insert(Flag::Seen);
    assert_eq!(
        a.store_flags(&[(0, fl)], None).unwrap(),
        Vec::<usize>::new()
    );
    assert_eq!(a.msgs[0].modseq, start + 1);
    assert_eq!(a.highest_modseq(), start + 1);
    let ch = b.sync().unwrap();
    assert_eq!(ch.flags, [1]);
    assert_eq!(b.msgs[0].modseq, start + 1);
    // Another program renames in cur/: whoever syncs first gives it the next modseq.
    rename_flags_elsewhere(d.path(), &a.msgs[1].base.clone(), "F");
    let ch = b.sync().unwrap();
    assert_eq!(ch.flags, [2]);
    assert_eq!(b.msgs[1].modseq, start + 2);
    a.sync().unwrap();
    assert_eq!(a.msgs[1].modseq, start + 2);
    // UNCHANGEDSINCE against what the index holds, not a stale view: b has not synced.
    let mut fl = a.msgs[2].flags.clone();
    fl.insert(Flag::Flagged);
    a.set_flags(2, fl.clone()).unwrap();
    let mut other = b.msgs[2].flags.clone();
    other.insert(Flag::Answered);
    assert_eq!(b.store_flags(&[(2, other)], Some(start + 2)).unwrap(), [2]);
    // An expunge (here by POP3 or another program) gets a modseq and a VANISHED entry.
    fs::remove_file(&a.msgs[0].path).unwrap();
    let ch = a.sync().unwrap();
    assert_eq!((ch.expunged, ch.vanished), (vec![1], vec![1]));
    assert_eq!(a.highest_modseq(), start + 4);
    assert_eq!(a.expunged_since(start + 3), Some(vec![1]));
    assert_eq!(a.expunged_since(start + 4), Some(vec![]));
    assert_eq!(a.expunged_since(start - 1), None, "from before the index");
    let gone = a.expunge(|i, _| i == 0).unwrap();
    assert_eq!(gone, [(1, 2)]);
    assert_eq!(a.highest_modseq(), start + 5);
    assert_eq!(a.expunged_since(start + 3), Some(vec![1, 2]));
    // A restart: the same modseqs.
    let before: Vec<(u32, u64)> = a.msgs.iter().map(|m| (m.uid, m.modseq)).collect();
    let c = Folder::open(d.path(), true).unwrap();
    assert_eq!(
        c.msgs.iter().map(|m| (m.uid, m.modseq)).collect::<Vec<_>>(),
        before
    );
    assert_eq!(c.highest_modseq(), start + 5);
    assert_eq!(c.expunged_since(start + 3), Some(vec![1, 2]));
    // A lost index is rebuilt above what was handed out, and forgets the expunges.
    fs::remove_file(d.path().join(index::FILE)).unwrap();
    let c = Folder::open(d.path(), true).unwrap();
    assert!(c.highest_modseq() >= start);
    assert_eq!(c.expunged_since(start + 3), None);
}

#[test]
fn two_writers_never_share_a_modseq() {
    let d = maildir();
    for i in 1..=8 {
        deliver(d.path(), &format!("17000000{i:02}.M1P1Q{i}.h"), "m\n");
    }
    let start = Folder::open(d.path(), false).unwrap().highest_modseq();
    let dir = d.path().to_path_buf();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut f = Folder::open(&dir, false).unwrap();
                let mut got = Vec::new();
                for round in 0..20 {
                    let i = w * 4 + round % 4;
                    let mut fl = f.msgs[i].flags.clone();
                    if fl.contains(Flag::Seen) {
                        fl.remove(Flag::Seen);
                    } else {
                        fl.insert(Flag::Seen);
                    }
                    f.store_flags(&[(i, fl)], None).unwrap();
                    got.push(f.msgs[i].modseq);
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u64> = writers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 40, "each change its own modseq");
    assert_eq!(*all.last().unwrap(), start + 40);
    assert_eq!(
        Folder::open(d.path(), true).unwrap().highest_modseq(),
        start + 40
    );
}

#[test]
fn an_unchanged_folder_is_not_listed_again() {
    let d = maildir();
    deliver(d.path(), "1700000001.M1P1Q1.h", "m\n");
    let opts = Options {
        mtime_granularity: Some(Duration::ZERO),
        ..Options::default()
    };
    let mut f = Folder::open_with(d.path(), false, opts).unwrap();
    // Listed again once: the open moved the message from new/ to cur/.
    f.sync().unwrap();
    // A listing would write the uidlist again: it stays gone while nothing changed.
    fs::remove_file(d.path().join(uidlist::FILE)).unwrap();
    assert_eq!(f.sync().unwrap(), Changes::default());
    assert!(!d.path().join(uidlist::FILE).exists());
    deliver(d.path(), "1700000002.M1P1Q2.h", "n\n");
    assert_eq!(f.sync().unwrap().exists, Some(2));
    assert!(d.path().join(uidlist::FILE).exists());
    // Where timestamps are coarse, a folder changed within the granularity is listed each time.
    let coarse = Options {
        mtime_granularity: Some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let mut g = Folder::open_with(d.path(), false, coarse).unwrap();
    g.sync().unwrap();
    fs::remove_file(d.path().join(uidlist::FILE)).unwrap();
    g.sync().unwrap();
    assert!(d.path().join(uidlist::FILE).exists());
}

/// Not a timed assertion: prints what a command's sync costs on a 10,000-message folder when
/// it lists the folder (as every command did within 2 s of a change before) and when it only
/// compares the directories' metadata. Run with `--nocapture` to see it.
#[test]
fn sync_cost_on_ten_thousand_messages_is_printed() {
    let d = maildir();
    for i in 0..10_000u32 {
        let name = format!("{}.M{i}P1Q{i}.h,S=2,W=3:2,S", 1_700_000_000 + i);
        fs::write(d.path().join("cur").join(name), "m\n").unwrap();
    }
    let relist = Options {
        mtime_granularity: Some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let quiet = Options {
        mtime_granularity: Some(Duration::ZERO),
        ..Options::default()
    };
    let t = std::time::Instant::now();
    let mut f = Folder::open_with(d.path(), false, relist).unwrap();
    let first = t.elapsed();
    assert_eq!(f.msgs.len(), 10_000);
    let rounds = 20;
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        assert_eq!(f.sync().unwrap(), Changes::default());
    }
    let listed = t.elapsed() / rounds;
    let mut g = Folder::open_with(d.path(), false, quiet).unwrap();
    g.sync().unwrap();
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        assert_eq!(g.sync().unwrap(), Changes::default());
    }
    let stamped = t.elapsed() / rounds;
    // A STORE on one message: the lock, the index read, changed and written again.
    let t = std::time::Instant::now();
    for round in 0..rounds as usize {
        let mut fl = g.msgs[round].flags.clone();
        fl.insert(Flag::Flagged);
        g.store_flags(&[(round, fl)], None).unwrap();
    }
    let store = t.elapsed() / rounds;
    println!(
        "10,000 messages: first open {first:?}; a sync that lists the folder {listed:?}, one that compares metadata {stamped:?}; a one-message STORE {store:?}"
    );
}

#[test]
fn an_asleep_folder_keeps_its_uids_and_reports_what_changed_when_it_wakes() {
    let d = maildir();
    for i in 1..=6 {
        deliver(d.path(), &format!("17000000{i:02}.M1P1Q{i}.h"), "m\n");
    }
    let opts = Options {
        mtime_granularity: Some(Duration::ZERO),
        ..Options::default()
    };
    let mut a = Folder::open_with(d.path(), false, opts).unwrap();
    let mut b = Folder::open_with(d.path(), false, opts).unwrap();
    assert!(a.msgs.iter().all(|m| m.recent), "a moved them from new/");
    // UIDs 1..6 minus 3: two ranges kept.
    a.expunge(|i, _| i == 2).unwrap();
    b.sync().unwrap();
    b.sync().unwrap();
    let highest = b.highest_modseq();
    b.sleep();
    assert!(b.is_asleep() && b.msgs.is_empty());
    assert_eq!(b.highest_modseq(), highest);
    // Nothing changed: it stays asleep.
    assert_eq!(b.sync().unwrap(), Changes::default());
    assert!(b.is_asleep());
    // Meanwhile: UID 5 flagged by a session, UID 2 renamed by another program, UID 4
    // expunged, a new delivery.
    let mut fl = a.msgs[3].flags.clone();
    fl.insert(Flag::Flagged);
    a.set_flags(3, fl).unwrap();
    rename_flags_elsewhere(d.path(), &a.msgs[1].base, "S");
    a.expunge(|i, _| i == 2).unwrap();
    deliver(d.path(), "1700000099.M1P1Q9.h", "new\n");
    let ch = b.sync().unwrap();
    assert!(!b.is_asleep());
    assert_eq!(ch.expunged, [3]);
    assert_eq!(ch.vanished, [4]);
    assert_eq!(ch.flags, [2, 3], "UIDs 2 and 5, not 1 and 6");
    assert_eq!(ch.exists, Some(5));
    assert_eq!(
        b.msgs.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2, 5, 6, 7]
    );
    assert!(b.msgs[1].flags.contains(Flag::Seen));
    assert!(b.msgs[2].flags.contains(Flag::Flagged));
    assert!(b.msgs[4].recent, "b moved the delivery from new/");
    // The \Recent of the session that fell asleep come back with it.
    a.sleep();
    let ch = a.wake().unwrap();
    assert_eq!(ch.exists, Some(5), "the delivery, which b listed first");
    assert_eq!(
        a.msgs.iter().map(|m| m.recent).collect::<Vec<_>>(),
        [true, true, true, true, false]
    );
    // Woken with nothing changed: no report, all there.
    a.sleep();
    assert_eq!(a.wake().unwrap(), Changes::default());
    assert_eq!(a.msgs.len(), 5);
}

#[test]
fn an_unchanged_folder_is_listed_from_its_index_alone() {
    let d = maildir();
    for i in 1..=3 {
        fs::write(
            d.path().join(format!("cur/170000000{i}.M1P1Q{i}.h,S=2:2,")),
            "m\n",
        )
        .unwrap();
    }
    let opts = Options {
        mtime_granularity: Some(Duration::ZERO),
        ..Options::default()
    };
    // The first listing makes the uidlist and the index, which is saved with the stamps of
    // the listing made under the lock.
    let f = Folder::open_with(d.path(), false, opts).unwrap();
    assert_eq!(f.msgs.len(), 3);
    let saved = Index::load(d.path());
    assert!(saved.listed.is_some(), "a stable listing saves its stamps");
    // The index says UID 1 is \Seen although its file does not: believed while the folder's
    // directories and uidlist keep their stamps (the index file's own does not count).
    let text = fs::read_to_string(d.path().join(index::FILE)).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() == 6 && f[0] == "1" {
                format!("1 {} {} {} S {}\n", f[1], f[2], f[3], f[5])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(edited, text);
    fs::write(d.path().join(index::FILE), edited).unwrap();
    let g = Folder::open_with(d.path(), false, opts).unwrap();
    assert!(
        g.msgs[0].flags.contains(Flag::Seen),
        "listed from the index"
    );
    assert_eq!(g.next_uid, 4);
    assert_eq!(g.uidvalidity, f.uidvalidity);
    assert!(g.msgs[1].path.exists(), "paths are the files'");
    // The uidlist written again (by Dovecot, say), the same bytes: its stamp moved, the files
    // are listed again and win.
    let ul = fs::read(d.path().join(uidlist::FILE)).unwrap();
    fs::remove_file(d.path().join(uidlist::FILE)).unwrap();
    fs::write(d.path().join(uidlist::FILE), ul).unwrap();
    let g = Folder::open_with(d.path(), false, opts).unwrap();
    assert!(!g.msgs[0].flags.contains(Flag::Seen), "the files win");
    // A rename by another program moves cur/'s stamp: the files are listed again.
    rename_flags_elsewhere(d.path(), &f.msgs[1].base, "F");
    let h = Folder::open_with(d.path(), false, opts).unwrap();
    assert!(!h.msgs[0].flags.contains(Flag::Seen), "the files win");
    assert!(h.msgs[1].flags.contains(Flag::Flagged));
    // A name without `:2,` is never left to the index; nor one with other info after the
    // base (cut inside a multi-byte letter, it must not panic).
    fs::write(d.path().join("cur/1700000009.M2P1Q9.h:aé"), "n\n").unwrap();
    let i = Folder::open_with(d.path(), false, opts).unwrap();
    assert_eq!(i.msgs.len(), 4);
    assert_eq!(Index::load(d.path()).listed, None);
    fs::write(d.path().join("cur/1700000009.M1P1Q9.h"), "n\n").unwrap();
    let j = Folder::open_with(d.path(), false, opts).unwrap();
    assert_eq!(j.msgs.len(), 5);
    assert!(j.msgs[3].path.exists() && j.msgs[4].path.exists());
    assert_eq!(Index::load(d.path()).listed, None);
    // A STORE changes the index: the stamps are cleared with it.
    let mut k = j;
    fs::remove_file(d.path().join("cur/1700000009.M1P1Q9.h")).unwrap();
    fs::remove_file(d.path().join("cur/1700000009.M2P1Q9.h:aé")).unwrap();
    k.sync().unwrap();
    let mut fl = k.msgs[2].flags.clone();
    fl.insert(Flag::Answered);
    k.set_flags(2, fl).unwrap();
    assert_eq!(Index::load(d.path()).listed, None);
    let l = Folder::open_with(d.path(), false, opts).unwrap();
    assert!(l.msgs[2].flags.contains(Flag::Answered));
    assert!(Index::load(d.path()).listed.is_some());
    // A new message: the index brought in line under the lock saves the stamps of that
    // listing with it (the uidlist, extended meanwhile, is in them).
    fs::write(d.path().join("cur/1700000010.M1P1Q10.h,S=2:2,"), "o\n").unwrap();
    let m = Folder::open_with(d.path(), false, opts).unwrap();
    assert_eq!(m.msgs.len(), 4);
    let saved = Index::load(d.path());
    assert_eq!(saved.entries.len(), 4);
    let line = saved.listed.expect("saved with the reconciled index");
    assert!(line.ends_with(&format!(" x{}", m.next_uid)), "{line}");
}
