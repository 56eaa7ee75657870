//! A folder asleep while its session waits in IDLE: the messages and the index are dropped and
//! only what the next sync compares with is kept (the UIDs as ranges, HIGHESTMODSEQ, the
//! session's \Recent UIDs), so an idling session costs a few hundred bytes, not ~0.6 KiB a
//! message (Dovecot's imap-hibernate does the same for its IDLE processes). Waking rescans the
//! folder as a sync would and reports what changed: expunges and new messages by UID, flag
//! changes as the messages whose mod-sequence is above the HIGHESTMODSEQ kept.

use super::{Changes, Folder, StoreError};

/// What an asleep folder keeps of its messages.
#[derive(Debug, Default)]
pub(super) struct Asleep {
    /// The UIDs in order, as inclusive ranges.
    uids: Vec<(u32, u32)>,
    /// HIGHESTMODSEQ when it fell asleep: a message whose mod-sequence is above it changed.
    highest: u64,
    /// The UIDs that are \Recent for this session, ascending.
    recent: Vec<u32>,
}

impl Asleep {
    fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.uids.iter().flat_map(|&(a, b)| a..=b)
    }
}

impl Folder {
    /// Drops the messages and the index until the next [`Folder::sync`] or [`Folder::wake`].
    /// A folder whose index is only in memory (not saved: a read-only Maildir) stays awake, as
    /// its mod-sequences would not be found again.
    pub fn sleep(&mut self) {
        if self.asleep.is_some() || !self.index.on_disk {
            return;
        }
        let mut uids: Vec<(u32, u32)> = Vec::new();
        for m in &self.msgs {
            match uids.last_mut() {
                Some((_, b)) if b.checked_add(1) == Some(m.uid) => *b = m.uid,
                _ => uids.push((m.uid, m.uid)),
            }
        }
        uids.shrink_to_fit();
        let recent: Vec<u32> = self
            .msgs
            .iter()
            .filter(|m| m.recent)
            .map(|m| m.uid)
            .collect();
        self.asleep = Some(Asleep {
            uids,
            highest: self.index.highest,
            recent,
        });
        self.msgs = Vec::new();
        self.index = Default::default();
    }

    pub fn is_asleep(&self) -> bool {
        self.asleep.is_some()
    }

    /// Awake again (the messages listed anew), with what changed since it fell asleep.
    pub fn wake(&mut self) -> Result<Changes, StoreError> {
        let Some(asleep) = self.asleep.take() else {
            return self.sync();
        };
        if let Err(e) = self.rescan() {
            // Still asleep; the next sync tries again (not skipped as "unchanged").
            self.asleep = Some(asleep);
            self.stamp = None;
            return Err(e);
        }
        let mut changes = Changes::default();
        let mut kept = 0u32;
        let mut old_max = 0;
        for uid in asleep.uids() {
            old_max = uid;
            let Ok(i) = self.msgs.binary_search_by_key(&uid, |m| m.uid) else {
                changes.expunged.push(kept + 1);
                changes.vanished.push(uid);
                continue;
            };
            kept += 1;
            let m = &mut self.msgs[i];
            m.recent |= asleep.recent.binary_search(&uid).is_ok();
            if m.modseq > asleep.highest {
                changes.flags.push(kept);
            }
        }
        if self.msgs.iter().any(|m| m.uid > old_max) || self.msgs.len() as u32 != kept {
            changes.exists = Some(self.msgs.len() as u32);
        }
        Ok(changes)
    }

    /// HIGHESTMODSEQ as it was when the folder fell asleep.
    pub(super) fn asleep_highest(&self) -> Option<u64> {
        self.asleep.as_ref().map(|a| a.highest)
    }
}
