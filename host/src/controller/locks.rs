//! The lock table: shared (S) and exclusive (X) locks on datasets, granted a
//! runway's whole set at once or not at all, first come first served.
//!
//! All-or-nothing grants mean no runway ever holds some locks while waiting
//! for others, so no deadlock is possible. Fairness: walking waiting runways
//! in filing order, a runway that cannot be granted *reserves* its datasets,
//! so a later runway that conflicts with it cannot overtake it (a stream of
//! readers cannot starve a writer).

use std::collections::{BTreeMap, HashMap};

use runway_audit::LockMode;

#[derive(Debug, Clone, Copy)]
struct Held {
    mode: LockMode,
    holders: usize,
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
    /// Walks `waiting` (in filing order) and grants every runway whose whole
    /// lock set is free and not reserved by an earlier waiter, up to `max`
    /// runways. Returns the indices (into `waiting`) granted.
    pub fn grant<'a>(
        &mut self,
        waiting: impl IntoIterator<Item = &'a BTreeMap<String, LockMode>>,
        max: usize,
    ) -> Vec<usize> {
        let mut reserved: HashMap<&str, LockMode> = HashMap::new();
        let mut granted = Vec::new();
        for (i, wants) in waiting.into_iter().enumerate() {
            if granted.len() == max {
                break;
            }
            let free = wants.iter().all(|(d, &m)| {
                compatible(self.held.get(d).map(|h| h.mode), m)
                    && compatible(reserved.get(d.as_str()).copied(), m)
            });
            if free {
                self.acquire(wants);
                granted.push(i);
            } else {
                for (d, &m) in wants {
                    let r = reserved.entry(d).or_insert(m);
                    if m == LockMode::Exclusive {
                        *r = m;
                    }
                }
            }
        }
        granted
    }

    fn acquire(&mut self, wants: &BTreeMap<String, LockMode>) {
        for (d, &mode) in wants {
            let h = self
                .held
                .entry(d.clone())
                .or_insert(Held { mode, holders: 0 });
            h.holders += 1;
        }
    }

    /// Releases a runway's whole lock set.
    pub fn release(&mut self, wants: &BTreeMap<String, LockMode>) {
        for d in wants.keys() {
            if let Some(h) = self.held.get_mut(d) {
                h.holders -= 1;
                if h.holders == 0 {
                    self.held.remove(d);
                }
            }
        }
    }

    /// Datasets currently locked, with mode and holder count.
    pub fn snapshot(&self) -> Vec<(String, LockMode, usize)> {
        let mut v: Vec<_> = self
            .held
            .iter()
            .map(|(d, h)| (d.clone(), h.mode, h.holders))
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

    #[test]
    fn shared_coexist_exclusive_excludes() {
        let mut t = LockTable::default();
        let r1 = set(&[("d", S)]);
        let r2 = set(&[("d", S)]);
        let w = set(&[("d", X)]);
        assert_eq!(t.grant([&r1, &r2, &w], 10), vec![0, 1]);
        t.release(&r1);
        assert!(
            t.grant([&w], 10).is_empty(),
            "writer granted beside a reader"
        );
        t.release(&r2);
        assert_eq!(t.grant([&w], 10), vec![0]);
    }

    #[test]
    fn all_or_nothing_and_no_overtaking() {
        let mut t = LockTable::default();
        let holder = set(&[("b", X)]);
        assert_eq!(t.grant([&holder], 10), vec![0]);
        // Wants a and b: b is taken, so it gets neither, and reserves a.
        let both = set(&[("a", X), ("b", X)]);
        let reader_a = set(&[("a", S)]);
        let other = set(&[("c", X)]);
        assert_eq!(t.grant([&both, &reader_a, &other], 10), vec![2]);
        assert_eq!(
            t.snapshot()
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
    }

    #[test]
    fn respects_max() {
        let mut t = LockTable::default();
        let a = set(&[("a", X)]);
        let b = set(&[("b", X)]);
        assert_eq!(t.grant([&a, &b], 1), vec![0]);
    }
}
