//! The lock table: shared (S) and exclusive (X) locks on datasets, granted a
//! runway's whole set at once or not at all, and the [`Lines`] of runways
//! waiting for them.
//!
//! All-or-nothing grants mean no runway ever holds some locks while waiting
//! for others, so no deadlock is possible. Fairness: each dataset keeps its
//! waiters in filing order, and a waiter may go only when no earlier waiter
//! on any of its datasets conflicts with it — a reader only before the
//! first waiting writer, a writer only first in line — so a later runway
//! never overtakes an earlier conflicting one (a stream of readers cannot
//! starve a writer). Priority decides among the runways that could all go
//! when fewer may take off than are ready: higher first, then filing order.
//!
//! Who may go changes only where something changed, so the tower looks
//! only there: at a new request, and at the heads of the lines of the
//! datasets a grant, a release or a withdrawal touched ([`Lines::heads`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use runway_audit::LockMode;

/// A runway's lock set: dataset → mode, in the manifest's order (the order
/// its run is told its locks in).
pub type LockSet = indexmap::IndexMap<String, LockMode>;

/// A dataset's number in this host's [`Names`]: the lock table and the
/// lines are indexed by it, so no lock operation hashes or copies a name.
pub type DatasetId = u32;

/// A lock set as the tower keeps it: dataset numbers and modes, in the
/// manifest's order.
pub type Wants = Vec<(DatasetId, LockMode)>;

/// Dataset names, each given a number the first time it is asked for.
#[derive(Debug, Default)]
pub struct Names {
    ids: HashMap<Arc<str>, DatasetId>,
    names: Vec<Arc<str>>,
}

impl Names {
    /// The numbers of `set`'s datasets, numbering new ones.
    pub fn intern(&mut self, set: &LockSet) -> Wants {
        set.iter().map(|(d, &m)| (self.id(d), m)).collect()
    }

    fn id(&mut self, name: &str) -> DatasetId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = DatasetId::try_from(self.names.len()).expect("fewer than 2^32 datasets");
        let name: Arc<str> = name.into();
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    pub fn name(&self, id: DatasetId) -> &Arc<str> {
        &self.names[id as usize]
    }
}

#[derive(Debug, Clone)]
struct Held {
    mode: LockMode,
    /// Runways holding it (several only when shared).
    holders: Vec<Arc<str>>,
}

/// Locks currently held, by dataset number.
#[derive(Debug, Default)]
pub struct LockTable {
    held: Vec<Option<Held>>,
}

fn compatible(existing: Option<LockMode>, wanted: LockMode) -> bool {
    matches!(
        (existing, wanted),
        (None, _) | (Some(LockMode::Shared), LockMode::Shared)
    )
}

impl LockTable {
    fn get(&self, d: DatasetId) -> Option<&Held> {
        self.held.get(d as usize).and_then(Option::as_ref)
    }

    /// Whether `wants` could be granted beside the locks held now.
    pub fn free(&self, wants: &[(DatasetId, LockMode)]) -> bool {
        wants
            .iter()
            .all(|&(d, m)| compatible(self.get(d).map(|h| h.mode), m))
    }

    /// `runway` takes its whole lock set.
    pub fn acquire(&mut self, wants: &[(DatasetId, LockMode)], runway: &Arc<str>) {
        for &(d, mode) in wants {
            let d = d as usize;
            if self.held.len() <= d {
                self.held.resize(d + 1, None);
            }
            let h = self.held[d].get_or_insert_with(|| Held {
                mode,
                holders: Vec::new(),
            });
            h.holders.push(runway.clone());
        }
    }

    /// `runway` releases its whole lock set.
    pub fn release(&mut self, wants: &[(DatasetId, LockMode)], runway: &str) {
        for &(d, _) in wants {
            let Some(slot) = self.held.get_mut(d as usize) else {
                continue;
            };
            if let Some(h) = slot {
                if let Some(at) = h.holders.iter().position(|r| &**r == runway) {
                    h.holders.swap_remove(at);
                }
                if h.holders.is_empty() {
                    *slot = None;
                }
            }
        }
    }

    /// Whether `runway` holds each of `wants` in the mode asked.
    pub fn holds(&self, wants: &[(DatasetId, LockMode)], runway: &str) -> bool {
        wants.iter().all(|&(d, m)| {
            self.get(d)
                .is_some_and(|h| h.mode == m && h.holders.iter().any(|r| &**r == runway))
        })
    }

    /// `from`'s holds on `wants` become `to`'s (a lock handed down to a
    /// child, or back): nobody else can take them in between.
    pub fn hand_over(&mut self, wants: &[(DatasetId, LockMode)], from: &str, to: &Arc<str>) {
        for &(d, _) in wants {
            if let Some(Some(h)) = self.held.get_mut(d as usize)
                && let Some(at) = h.holders.iter().position(|r| &**r == from)
            {
                h.holders[at] = to.clone();
            }
        }
    }

    /// Who holds what `wants` conflicts with, as `runway (dataset X)`.
    pub fn blockers(&self, wants: &[(DatasetId, LockMode)], names: &Names) -> Vec<String> {
        let mut out = Vec::new();
        for &(d, m) in wants {
            if let Some(h) = self.get(d)
                && !compatible(Some(h.mode), m)
            {
                for holder in &h.holders {
                    out.push(format!("{holder} ({} {})", names.name(d), h.mode.letter()));
                }
            }
        }
        out
    }

    /// Datasets currently locked, by number: mode and holders.
    pub fn held(&self) -> impl Iterator<Item = (DatasetId, LockMode, &[Arc<str>])> {
        self.held.iter().enumerate().filter_map(|(d, h)| {
            let h = h.as_ref()?;
            Some((d as DatasetId, h.mode, h.holders.as_slice()))
        })
    }
}

/// One dataset's waiters, by ticket (filing order).
#[derive(Debug, Default, Clone)]
struct Line {
    all: BTreeSet<u64>,
    exclusive: BTreeSet<u64>,
    /// Those not yet marked ready: a ready waiter keeps its place (no one
    /// overtakes it) but is never looked at again, so a line of ready
    /// readers waiting for workers is not walked on every release.
    unready: BTreeSet<u64>,
}

/// The waiting runways' places in line, per dataset number.
#[derive(Debug, Default)]
pub struct Lines {
    lines: Vec<Line>,
}

impl Lines {
    /// Puts `ticket` at the end of the line of each of its datasets.
    pub fn join(&mut self, ticket: u64, wants: &[(DatasetId, LockMode)]) {
        for &(d, m) in wants {
            let d = d as usize;
            if self.lines.len() <= d {
                self.lines.resize(d + 1, Line::default());
            }
            let line = &mut self.lines[d];
            line.all.insert(ticket);
            line.unready.insert(ticket);
            if m == LockMode::Exclusive {
                line.exclusive.insert(ticket);
            }
        }
    }

    /// Takes `ticket` out of its lines.
    pub fn leave(&mut self, ticket: u64, wants: &[(DatasetId, LockMode)]) {
        for &(d, _) in wants {
            if let Some(line) = self.lines.get_mut(d as usize) {
                line.all.remove(&ticket);
                line.exclusive.remove(&ticket);
                line.unready.remove(&ticket);
            }
        }
    }

    /// `ticket` is ready: [`Lines::heads`] no longer names it.
    pub fn ready(&mut self, ticket: u64, wants: &[(DatasetId, LockMode)]) {
        for &(d, _) in wants {
            if let Some(line) = self.lines.get_mut(d as usize) {
                line.unready.remove(&ticket);
            }
        }
    }

    /// Whether no earlier waiter on any of its datasets conflicts with
    /// `ticket`: a reader is before every waiting writer, a writer first.
    pub fn first_in_line(&self, ticket: u64, wants: &[(DatasetId, LockMode)]) -> bool {
        wants.iter().all(|&(d, m)| {
            let Some(line) = self.lines.get(d as usize) else {
                return true;
            };
            match m {
                LockMode::Exclusive => line.all.first() == Some(&ticket),
                LockMode::Shared => line.exclusive.first().is_none_or(|&x| x > ticket),
            }
        })
    }

    /// Every dataset someone waits for, with its waiters in line order.
    pub fn waiting(&self) -> impl Iterator<Item = (DatasetId, impl Iterator<Item = u64> + '_)> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, line)| !line.all.is_empty())
            .map(|(d, line)| (d as DatasetId, line.all.iter().copied()))
    }

    /// The waiters not yet ready at the head of dataset `d`'s line that
    /// may go once it is free: its first writer, or the readers before the
    /// first writer.
    pub fn heads(&self, d: DatasetId) -> impl Iterator<Item = u64> + '_ {
        let line = self.lines.get(d as usize);
        let (first, writer) = line.map_or((None, None), |l| (l.all.first(), l.exclusive.first()));
        let upto = match (first, writer) {
            (Some(first), Some(&x)) if *first == x => x + 1,
            (_, Some(&x)) => x,
            (_, None) => u64::MAX,
        };
        line.into_iter()
            .flat_map(move |l| l.unready.range(..upto).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::{Exclusive as X, Shared as S};

    fn set(names: &mut Names, items: &[(&str, LockMode)]) -> Wants {
        let set: LockSet = items.iter().map(|(d, m)| (d.to_string(), *m)).collect();
        names.intern(&set)
    }

    #[test]
    fn shared_coexist_exclusive_excludes() {
        let mut names = Names::default();
        let mut t = LockTable::default();
        let r = set(&mut names, &[("d", S)]);
        let w = set(&mut names, &[("d", X)]);
        let holder = |n: &str| -> Arc<str> { n.into() };
        t.acquire(&r, &holder("r0"));
        assert!(t.free(&r), "a reader beside a reader");
        t.acquire(&r, &holder("r1"));
        assert!(!t.free(&w), "a writer beside readers");
        assert_eq!(t.blockers(&w, &names), ["r0 (d S)", "r1 (d S)"]);
        t.release(&r, "r0");
        assert!(!t.free(&w));
        t.release(&r, "r1");
        assert!(t.free(&w));
        t.acquire(&w, &holder("w"));
        assert!(!t.free(&r), "a reader beside a writer");
        let held: Vec<_> = t.held().collect();
        assert_eq!(held, [(0, X, &[holder("w")][..])]);
        assert_eq!(&**names.name(0), "d");
    }

    #[test]
    fn no_one_overtakes_an_earlier_conflicting_waiter() {
        let mut names = Names::default();
        let mut lines = Lines::default();
        let reader = set(&mut names, &[("d", S)]);
        let writer = set(&mut names, &[("d", X), ("e", X)]);
        let (d, e) = (0, 1);
        lines.join(1, &reader);
        lines.join(2, &writer);
        lines.join(3, &reader);
        assert!(lines.first_in_line(1, &reader));
        assert!(!lines.first_in_line(2, &writer), "a writer behind a reader");
        assert!(!lines.first_in_line(3, &reader), "a reader behind a writer");
        let heads = |lines: &Lines, d| lines.heads(d).collect::<Vec<_>>();
        assert_eq!(heads(&lines, d), [1]);
        assert_eq!(heads(&lines, e), [2]);
        lines.leave(1, &reader);
        assert!(lines.first_in_line(2, &writer));
        assert_eq!(heads(&lines, d), [2]);
        lines.leave(2, &writer);
        assert!(lines.first_in_line(3, &reader));
        assert_eq!(heads(&lines, d), [3]);
        assert!(heads(&lines, e).is_empty());
        // Readers in a row all stand at the head, up to the first writer.
        lines.join(4, &reader);
        lines.join(5, &set(&mut names, &[("d", X)]));
        lines.join(6, &reader);
        assert_eq!(heads(&lines, d), [3, 4]);
        // A ready reader keeps its place but is not named again.
        lines.ready(3, &reader);
        assert_eq!(heads(&lines, d), [4]);
        assert!(!lines.first_in_line(5, &set(&mut names, &[("d", X)])));
    }
}
