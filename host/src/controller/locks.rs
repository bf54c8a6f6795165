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

use runway_audit::LockMode;

/// A runway's lock set: dataset → mode, in the manifest's order (the order
/// its run is told its locks in).
pub type LockSet = indexmap::IndexMap<String, LockMode>;

#[derive(Debug, Clone)]
struct Held {
    mode: LockMode,
    /// Runways holding it (several only when shared).
    holders: Vec<String>,
}

/// Locks currently held, by dataset.
#[derive(Debug, Default)]
pub struct LockTable {
    held: HashMap<String, Held>,
}

fn compatible(existing: Option<LockMode>, wanted: LockMode) -> bool {
    matches!(
        (existing, wanted),
        (None, _) | (Some(LockMode::Shared), LockMode::Shared)
    )
}

impl LockTable {
    /// Whether `wants` could be granted beside the locks held now.
    pub fn free(&self, wants: &LockSet) -> bool {
        wants
            .iter()
            .all(|(d, &m)| compatible(self.held.get(d).map(|h| h.mode), m))
    }

    /// `runway` takes its whole lock set.
    pub fn acquire(&mut self, wants: &LockSet, runway: &str) {
        for (d, &mode) in wants {
            let h = self.held.entry(d.clone()).or_insert(Held {
                mode,
                holders: Vec::new(),
            });
            h.holders.push(runway.to_string());
        }
    }

    /// `runway` releases its whole lock set.
    pub fn release(&mut self, wants: &LockSet, runway: &str) {
        for d in wants.keys() {
            if let Some(h) = self.held.get_mut(d) {
                if let Some(at) = h.holders.iter().position(|r| r == runway) {
                    h.holders.swap_remove(at);
                }
                if h.holders.is_empty() {
                    self.held.remove(d);
                }
            }
        }
    }

    /// Who holds what `wants` conflicts with, as `runway (dataset X)`.
    pub fn blockers(&self, wants: &LockSet) -> Vec<String> {
        let mut out = Vec::new();
        for (d, &m) in wants {
            if let Some(h) = self.held.get(d)
                && !compatible(Some(h.mode), m)
            {
                for holder in &h.holders {
                    out.push(format!("{holder} ({d} {})", h.mode.letter()));
                }
            }
        }
        out
    }

    /// Datasets currently locked, by name: mode and holders.
    pub fn held(&self) -> impl Iterator<Item = (&str, LockMode, &[String])> {
        self.held
            .iter()
            .map(|(d, h)| (d.as_str(), h.mode, h.holders.as_slice()))
    }
}

/// One dataset's waiters, by ticket (filing order).
#[derive(Debug, Default)]
struct Line {
    all: BTreeSet<u64>,
    exclusive: BTreeSet<u64>,
}

/// The waiting runways' places in line, per dataset.
#[derive(Debug, Default)]
pub struct Lines {
    lines: HashMap<String, Line>,
}

impl Lines {
    /// Puts `ticket` at the end of the line of each of its datasets.
    pub fn join(&mut self, ticket: u64, wants: &LockSet) {
        for (d, &m) in wants {
            let line = self.lines.entry(d.clone()).or_default();
            line.all.insert(ticket);
            if m == LockMode::Exclusive {
                line.exclusive.insert(ticket);
            }
        }
    }

    /// Takes `ticket` out of its lines.
    pub fn leave(&mut self, ticket: u64, wants: &LockSet) {
        for d in wants.keys() {
            if let Some(line) = self.lines.get_mut(d) {
                line.all.remove(&ticket);
                line.exclusive.remove(&ticket);
                if line.all.is_empty() {
                    self.lines.remove(d);
                }
            }
        }
    }

    /// Whether no earlier waiter on any of its datasets conflicts with
    /// `ticket`: a reader is before every waiting writer, a writer first.
    pub fn first_in_line(&self, ticket: u64, wants: &LockSet) -> bool {
        wants.iter().all(|(d, &m)| {
            let Some(line) = self.lines.get(d) else {
                return true;
            };
            match m {
                LockMode::Exclusive => line.all.first() == Some(&ticket),
                LockMode::Shared => line.exclusive.first().is_none_or(|&x| x > ticket),
            }
        })
    }

    /// Every dataset someone waits for, with its waiters in line order.
    pub fn waiting(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = u64> + '_)> {
        self.lines
            .iter()
            .filter(|(_, line)| !line.all.is_empty())
            .map(|(d, line)| (d.as_str(), line.all.iter().copied()))
    }

    /// The waiters at the head of `dataset`'s line that may go once it is
    /// free: its first writer, or the readers before the first writer.
    pub fn heads(&self, dataset: &str) -> Vec<u64> {
        let Some(line) = self.lines.get(dataset) else {
            return Vec::new();
        };
        match (line.all.first(), line.exclusive.first()) {
            (Some(first), Some(x)) if first == x => vec![*first],
            (_, Some(&x)) => line.all.range(..x).copied().collect(),
            (_, None) => line.all.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::{Exclusive as X, Shared as S};

    fn set(items: &[(&str, LockMode)]) -> LockSet {
        items.iter().map(|(d, m)| (d.to_string(), *m)).collect()
    }

    #[test]
    fn shared_coexist_exclusive_excludes() {
        let mut t = LockTable::default();
        let r = set(&[("d", S)]);
        let w = set(&[("d", X)]);
        t.acquire(&r, "r0");
        assert!(t.free(&r), "a reader beside a reader");
        t.acquire(&r, "r1");
        assert!(!t.free(&w), "a writer beside readers");
        assert_eq!(t.blockers(&w), ["r0 (d S)", "r1 (d S)"]);
        t.release(&r, "r0");
        assert!(!t.free(&w));
        t.release(&r, "r1");
        assert!(t.free(&w));
        t.acquire(&w, "w");
        assert!(!t.free(&r), "a reader beside a writer");
        let held: Vec<_> = t.held().collect();
        assert_eq!(held, [("d", X, &["w".to_string()][..])]);
    }

    #[test]
    fn no_one_overtakes_an_earlier_conflicting_waiter() {
        let mut lines = Lines::default();
        let reader = set(&[("d", S)]);
        let writer = set(&[("d", X), ("e", X)]);
        lines.join(1, &reader);
        lines.join(2, &writer);
        lines.join(3, &reader);
        assert!(lines.first_in_line(1, &reader));
        assert!(!lines.first_in_line(2, &writer), "a writer behind a reader");
        assert!(!lines.first_in_line(3, &reader), "a reader behind a writer");
        assert_eq!(lines.heads("d"), [1]);
        assert_eq!(lines.heads("e"), [2]);
        lines.leave(1, &reader);
        assert!(lines.first_in_line(2, &writer));
        assert_eq!(lines.heads("d"), [2]);
        lines.leave(2, &writer);
        assert!(lines.first_in_line(3, &reader));
        assert_eq!(lines.heads("d"), [3]);
        assert!(lines.heads("e").is_empty());
        // Readers in a row all stand at the head, up to the first writer.
        lines.join(4, &reader);
        lines.join(5, &set(&[("d", X)]));
        lines.join(6, &reader);
        assert_eq!(lines.heads("d"), [3, 4]);
    }
}
