//! The lock table: shared (S) and exclusive (X) locks on datasets, granted a
//! runway's whole set at once or not at all.
//!
//! All-or-nothing grants mean no runway ever holds some locks while waiting
//! for others, so no deadlock is possible. Fairness: walking waiting runways
//! in filing order, a runway that cannot be granted *reserves* its datasets,
//! so a later runway that conflicts with it cannot overtake it (a stream of
//! readers cannot starve a writer). Priority decides among the runways that
//! could all be granted when fewer may take off than are ready: higher
//! first, then filing order.

use std::collections::{BTreeMap, HashMap};

use runway_audit::LockMode;

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

/// One runway waiting for its lock set.
pub struct Want<'a> {
    pub locks: &'a BTreeMap<String, LockMode>,
    pub priority: i64,
    /// Cannot go now whatever its locks (its agent is at its limit); it
    /// still keeps its place in line on its datasets.
    pub held_back: bool,
}

fn compatible(existing: Option<LockMode>, wanted: LockMode) -> bool {
    matches!(
        (existing, wanted),
        (None, _) | (Some(LockMode::Shared), LockMode::Shared)
    )
}

/// Adds `mode` on `dataset` to a map of modes taken: exclusive wins.
fn take<'a>(map: &mut HashMap<&'a str, LockMode>, dataset: &'a str, mode: LockMode) {
    let m = map.entry(dataset).or_insert(mode);
    if mode == LockMode::Exclusive {
        *m = mode;
    }
}

impl LockTable {
    /// Walks `waiting` (in filing order) and picks the runways whose whole
    /// lock set is free and not reserved by an earlier waiter; when more
    /// than `max` could go, the `max` of highest priority (then earliest).
    /// Returns their indices into `waiting`, in filing order. Nothing is
    /// acquired: the caller [`acquire`](Self::acquire)s what it grants.
    pub fn grant(&self, waiting: &[Want<'_>], max: usize) -> Vec<usize> {
        let mut reserved: HashMap<&str, LockMode> = HashMap::new();
        let mut taken: HashMap<&str, LockMode> = HashMap::new();
        let mut ready = Vec::new();
        for (i, want) in waiting.iter().enumerate() {
            let free = !want.held_back
                && want.locks.iter().all(|(d, &m)| {
                    compatible(self.held.get(d).map(|h| h.mode), m)
                        && compatible(taken.get(d.as_str()).copied(), m)
                        && compatible(reserved.get(d.as_str()).copied(), m)
                });
            let into = if free { &mut taken } else { &mut reserved };
            for (d, &m) in want.locks {
                take(into, d, m);
            }
            if free {
                ready.push(i);
            }
        }
        if ready.len() > max {
            ready.sort_by_key(|&i| (std::cmp::Reverse(waiting[i].priority), i));
            ready.truncate(max);
            ready.sort_unstable();
        }
        ready
    }

    /// `runway` takes its whole lock set.
    pub fn acquire(&mut self, wants: &BTreeMap<String, LockMode>, runway: &str) {
        for (d, &mode) in wants {
            let h = self.held.entry(d.clone()).or_insert(Held {
                mode,
                holders: Vec::new(),
            });
            h.holders.push(runway.to_string());
        }
    }

    /// `runway` releases its whole lock set.
    pub fn release(&mut self, wants: &BTreeMap<String, LockMode>, runway: &str) {
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
    pub fn blockers(&self, wants: &BTreeMap<String, LockMode>) -> Vec<String> {
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

    /// Datasets currently locked, with mode and holder count.
    pub fn snapshot(&self) -> Vec<(String, LockMode, usize)> {
        let mut v: Vec<_> = self
            .held
            .iter()
            .map(|(d, h)| (d.clone(), h.mode, h.holders.len()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::{Exclusive as X, Shared as S};

    fn set(items: &[(&str, LockMode)]) -> BTreeMap<String, LockMode> {
        items.iter().map(|(d, m)| (d.to_string(), *m)).collect()
    }

    fn wants<'a>(sets: &[&'a BTreeMap<String, LockMode>]) -> Vec<Want<'a>> {
        sets.iter()
            .map(|locks| Want {
                locks,
                priority: 0,
                held_back: false,
            })
            .collect()
    }

    /// Grants and acquires, as the tower does; names runways by index.
    fn grant(t: &mut LockTable, sets: &[&BTreeMap<String, LockMode>], max: usize) -> Vec<usize> {
        let granted = t.grant(&wants(sets), max);
        for &i in &granted {
            t.acquire(sets[i], &format!("r{i}"));
        }
        granted
    }

    #[test]
    fn shared_coexist_exclusive_excludes() {
        let mut t = LockTable::default();
        let r1 = set(&[("d", S)]);
        let r2 = set(&[("d", S)]);
        let w = set(&[("d", X)]);
        assert_eq!(grant(&mut t, &[&r1, &r2, &w], 10), vec![0, 1]);
        assert_eq!(t.blockers(&w), ["r0 (d S)", "r1 (d S)"]);
        t.release(&r1, "r0");
        assert!(
            t.grant(&wants(&[&w]), 10).is_empty(),
            "writer granted beside a reader"
        );
        t.release(&r2, "r1");
        assert_eq!(t.grant(&wants(&[&w]), 10), vec![0]);
    }

    #[test]
    fn all_or_nothing_and_no_overtaking() {
        let mut t = LockTable::default();
        let holder = set(&[("b", X)]);
        assert_eq!(grant(&mut t, &[&holder], 10), vec![0]);
        // Wants a and b: b is taken, so it gets neither, and reserves a.
        let both = set(&[("a", X), ("b", X)]);
        let reader_a = set(&[("a", S)]);
        let other = set(&[("c", X)]);
        assert_eq!(grant(&mut t, &[&both, &reader_a, &other], 10), vec![2]);
        assert_eq!(
            t.snapshot()
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
    }

    #[test]
    fn two_ready_runways_on_one_dataset_are_not_granted_together() {
        let t = LockTable::default();
        let w1 = set(&[("d", X)]);
        let w2 = set(&[("d", X)]);
        assert_eq!(t.grant(&wants(&[&w1, &w2]), 10), vec![0]);
    }

    #[test]
    fn respects_max_and_priority_among_the_ready() {
        let t = LockTable::default();
        let a = set(&[("a", X)]);
        let b = set(&[("b", X)]);
        let c = set(&[("c", X)]);
        assert_eq!(t.grant(&wants(&[&a, &b]), 1), vec![0]);
        let mut w = wants(&[&a, &b, &c]);
        w[2].priority = 5;
        w[1].priority = 1;
        assert_eq!(t.grant(&w, 1), vec![2]);
        assert_eq!(t.grant(&w, 2), vec![1, 2]);
    }

    #[test]
    fn priority_never_overtakes_an_earlier_waiter_on_its_dataset() {
        let mut t = LockTable::default();
        let reader = set(&[("d", S)]);
        grant(&mut t, &[&reader], 10);
        // The writer waits for the reader; a later high-priority reader
        // must not overtake the writer.
        let writer = set(&[("d", X)]);
        let late_reader = set(&[("d", S)]);
        let mut w = wants(&[&writer, &late_reader]);
        w[1].priority = 100;
        assert!(t.grant(&w, 10).is_empty());
    }
}
