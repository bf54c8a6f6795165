//! A run's staged writes: visible to the run itself, to nobody else, until
//! the run succeeds and they are committed. Each remembers which of the
//! run's host calls made it, so the commit can record the audit sequence
//! number of the write as the record's provenance.

use std::collections::BTreeMap;

/// One staged change to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Vec<u8>),
    Delete,
}

/// A staged change and the number of the run's host call that made it
/// (0 for the run's first audited call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    pub change: Change,
    pub call: u64,
}

/// Bytes a staged change costs beyond its key and value (map node, key
/// string, change tag), so that a flood of empty values is not free.
pub const ENTRY_BYTES: usize = 64;

/// All staged changes of one run, per dataset, per key.
#[derive(Debug, Default)]
pub struct Staged {
    datasets: BTreeMap<String, BTreeMap<String, Staging>>,
    /// Changes staged (distinct keys).
    changes: usize,
    /// Memory the changes hold: keys, values and [`ENTRY_BYTES`] each.
    bytes: usize,
}

impl Change {
    fn value_len(&self) -> usize {
        match self {
            Change::Put(v) => v.len(),
            Change::Delete => 0,
        }
    }
}

impl Staged {
    /// Stages a change made by the run's host call number `call`,
    /// replacing any earlier one to the same key.
    pub fn stage(&mut self, dataset: &str, key: &str, change: Change, call: u64) {
        let (changes, bytes) = self.after(dataset, key, &change);
        // The dataset's name is copied once, not on every write to it.
        if !self.datasets.contains_key(dataset) {
            self.datasets.insert(dataset.to_string(), BTreeMap::new());
        }
        let changes_of = self.datasets.get_mut(dataset).expect("inserted above");
        changes_of.insert(key.to_string(), Staging { change, call });
        self.changes = changes;
        self.bytes = bytes;
    }

    /// What [`changes`](Self::changes) and [`bytes`](Self::bytes) would be
    /// after staging `change`, so a caller can refuse it first.
    pub fn after(&self, dataset: &str, key: &str, change: &Change) -> (usize, usize) {
        match self.get(dataset, key) {
            Some(old) => (
                self.changes,
                self.bytes - old.value_len() + change.value_len(),
            ),
            None => (
                self.changes + 1,
                self.bytes + key.len() + change.value_len() + ENTRY_BYTES,
            ),
        }
    }

    /// Changes staged (distinct keys over all datasets).
    pub fn changes(&self) -> usize {
        self.changes
    }

    /// Whether anything is staged in `dataset`.
    pub fn has_changes(&self, dataset: &str) -> bool {
        self.datasets.get(dataset).is_some_and(|c| !c.is_empty())
    }

    /// The staged change to a key, if any.
    pub fn get(&self, dataset: &str, key: &str) -> Option<&Change> {
        self.datasets.get(dataset)?.get(key).map(|s| &s.change)
    }

    /// All staged changes to one dataset.
    pub fn dataset(&self, dataset: &str) -> Option<&BTreeMap<String, Staging>> {
        self.datasets.get(dataset)
    }

    /// Datasets with staged changes, and their changes.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, Staging>)> {
        self.datasets.iter()
    }

    /// Bytes the staged changes hold in memory: keys, values, bookkeeping.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_bookkeeping_count_not_only_values() {
        let mut s = Staged::default();
        s.stage("d", "k1", Change::Put(Vec::new()), 0);
        assert_eq!((s.changes(), s.bytes()), (1, 2 + ENTRY_BYTES));
        s.stage("d", "k1", Change::Put(vec![0; 10]), 1);
        assert_eq!((s.changes(), s.bytes()), (1, 12 + ENTRY_BYTES));
        s.stage("d", "k2", Change::Delete, 2);
        assert_eq!((s.changes(), s.bytes()), (2, 14 + 2 * ENTRY_BYTES));
        assert_eq!(
            s.after("d", "k3", &Change::Put(vec![0; 5])),
            (3, 21 + 3 * ENTRY_BYTES)
        );
    }
}
