//! A run's staged writes: visible to the run itself, to nobody else, until
//! the run succeeds and they are committed.

use std::collections::BTreeMap;

/// One staged change to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Put(Vec<u8>),
    Delete,
}

/// All staged changes of one run, per dataset, per key.
#[derive(Debug, Default)]
pub struct Staged {
    datasets: BTreeMap<String, BTreeMap<String, Change>>,
    bytes: usize,
}

impl Staged {
    /// Stages a change, replacing any earlier one to the same key.
    pub fn stage(&mut self, dataset: &str, key: &str, change: Change) {
        let added = match &change {
            Change::Put(v) => v.len(),
            Change::Delete => 0,
        };
        let keys = self.datasets.entry(dataset.to_string()).or_default();
        if let Some(Change::Put(old)) = keys.insert(key.to_string(), change) {
            self.bytes -= old.len();
        }
        self.bytes += added;
    }

    /// The staged change to a key, if any.
    pub fn get(&self, dataset: &str, key: &str) -> Option<&Change> {
        self.datasets.get(dataset)?.get(key)
    }

    /// All staged changes to one dataset.
    pub fn dataset(&self, dataset: &str) -> Option<&BTreeMap<String, Change>> {
        self.datasets.get(dataset)
    }

    /// Datasets with staged changes, and their changes.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &BTreeMap<String, Change>)> {
        self.datasets.iter()
    }

    /// Bytes of staged values held in memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}
