//! The queue in memory: every message by id, and an index of the ones waiting for a try by
//! when they are due, so that the runner's wake-ups (one per message queued, one per attempt
//! ended) cost a look at the first due entries, not a walk over every deferred message.

use std::collections::{BTreeMap, BTreeSet};

use crate::queue::Envelope;

pub struct Entry {
    pub envelope: Envelope,
    pub in_flight: bool,
    /// Not tried before this (Unix seconds), whatever its recipients say: another instance
    /// sharing the queue was trying it.
    pub not_before: u64,
    /// Its key in the due index (the next try), when it is there.
    due_at: Option<u64>,
}

#[derive(Default)]
pub struct Table {
    entries: BTreeMap<String, Entry>,
    /// (next try, id) of every message neither in flight nor held that has something to try.
    due: BTreeSet<(u64, String)>,
}

impl Table {
    pub fn new(envelopes: Vec<Envelope>) -> Table {
        let mut t = Table::default();
        for e in envelopes {
            t.insert(e);
        }
        t
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Adds (or replaces) a message, not in flight.
    pub fn insert(&mut self, envelope: Envelope) {
        let id = envelope.id.clone();
        self.remove(&id);
        self.entries.insert(
            id.clone(),
            Entry {
                envelope,
                in_flight: false,
                not_before: 0,
                due_at: None,
            },
        );
        self.reindex(&id);
    }

    /// Adds a message unless it is already there (a scan and the queueing hook may both bring
    /// a new one); true when it was added.
    pub fn insert_new(&mut self, envelope: Envelope) -> bool {
        if self.contains(&envelope.id) {
            return false;
        }
        self.insert(envelope);
        true
    }

    pub fn remove(&mut self, id: &str) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        if let Some(t) = e.due_at {
            self.due.remove(&(t, id.to_string()));
        }
        Some(e)
    }

    /// Changes one entry; the index follows. `None` when there is no such message.
    pub fn update<R>(&mut self, id: &str, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let e = self.entries.get_mut(id)?;
        let r = f(e);
        self.reindex(id);
        Some(r)
    }

    /// Ids of every message, for changes to many of them (with [`Table::update`]).
    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    fn reindex(&mut self, id: &str) {
        let Some(e) = self.entries.get_mut(id) else {
            return;
        };
        let want = match e.in_flight || e.envelope.held {
            true => None,
            false => e.envelope.next_try().map(|t| t.max(e.not_before)),
        };
        if want == e.due_at {
            return;
        }
        if let Some(t) = e.due_at.take() {
            self.due.remove(&(t, id.to_string()));
        }
        if let Some(t) = want {
            self.due.insert((t, id.to_string()));
            e.due_at = Some(t);
        }
    }

    /// Messages due at `now` (marked in flight, out of the index), at most `room`, earliest
    /// first; and when the next one left is due.
    pub fn take_due(&mut self, now: u64, room: usize) -> (Vec<Envelope>, Option<u64>) {
        let mut out = Vec::new();
        while out.len() < room {
            let Some((t, _)) = self.due.first() else {
                break;
            };
            if *t > now {
                break;
            }
            let Some((_, id)) = self.due.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.get_mut(&id) {
                e.due_at = None;
                e.in_flight = true;
                out.push(e.envelope.clone());
            }
        }
        (out, self.due.first().map(|(t, _)| *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{RecipientState, State};

    fn env(id: &str, next_try: u64) -> Envelope {
        let mut e = Envelope::for_tests(id);
        e.recipients = vec![RecipientState::for_tests("a@far.test", next_try)];
        e
    }

    #[test]
    fn due_in_order_within_room_and_the_next_time() {
        let mut t = Table::new(vec![env("c", 30), env("a", 10), env("b", 20)]);
        let (due, next) = t.take_due(25, 10);
        let ids: Vec<&str> = due.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(next, Some(30));
        // In flight: not taken again.
        assert_eq!(t.take_due(25, 10).0.len(), 0);
        let (due, next) = t.take_due(100, 0);
        assert!(due.is_empty());
        assert_eq!(next, Some(30));
    }

    #[test]
    fn held_done_and_changed_entries_follow_the_index() {
        let mut t = Table::new(vec![env("a", 10), env("b", 10)]);
        t.update("a", |e| e.envelope.held = true);
        assert_eq!(t.take_due(10, 10).0.len(), 1);
        t.update("a", |e| e.envelope.held = false);
        // b came back from its attempt, deferred to 50.
        t.update("b", |e| {
            e.in_flight = false;
            e.envelope.recipients[0].next_try = 50;
        });
        let (due, next) = t.take_due(10, 10);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, "a");
        assert_eq!(next, Some(50));
        // Nothing left to try: out of the index, still listed.
        t.update("b", |e| e.envelope.recipients[0].state = State::Delivered);
        assert_eq!(t.take_due(100, 10), (vec![], None));
        assert_eq!(t.len(), 2);
        t.remove("b");
        t.remove("a");
        assert_eq!(t.len(), 0);
        assert!(t.due.is_empty());
    }

    #[test]
    fn not_before_postpones_and_insert_new_keeps_what_is_there() {
        let mut t = Table::new(vec![env("a", 10)]);
        let taken = t.take_due(10, 10).0;
        assert_eq!(taken.len(), 1);
        // Another instance held it: back, not before 15.
        t.update("a", |e| {
            e.in_flight = false;
            e.not_before = 15;
        });
        assert_eq!(t.take_due(14, 10), (vec![], Some(15)));
        assert!(
            !t.insert_new(env("a", 0)),
            "a scan's copy does not reset it"
        );
        assert_eq!(t.take_due(14, 10), (vec![], Some(15)));
        assert_eq!(t.take_due(15, 10).0.len(), 1);
        assert!(t.insert_new(env("b", 0)));
        assert_eq!(t.len(), 2);
    }
}
