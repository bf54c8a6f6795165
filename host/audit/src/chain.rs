//! The chain state: what the next record must link to.
//!
//! The writer uses it to fill in a new record's `seq`, `time_ns`, `prev` and
//! `prev_dataset`; the verifier uses the very same state to check them. Both
//! then advance it with the record's leaf hash.

use std::collections::HashMap;

use crate::findings::VerifyErrorKind;
use crate::record::{Entry, Hash, Record};

/// Where the log stands after its last record.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chain {
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// Leaf hash of the last record; zeros before the first.
    pub last_hash: Hash,
    /// Time of the last record; the next one may not be earlier.
    pub last_time_ns: u64,
    /// Leaf hash of the last record of each dataset.
    datasets: HashMap<String, Hash>,
    /// Reading from the middle of the log: the next record's `prev` is
    /// not known (the frame before it was skipped), so it is not checked.
    unknown_prev: bool,
    /// Reading from the middle of the log: a dataset not seen yet may link
    /// to any earlier record (its head lies before where reading began).
    unknown_datasets: bool,
}

impl Chain {
    /// The chain after a known record: `next_seq`, the last record's leaf
    /// hash and time, and the last leaf hash of each dataset.
    pub fn resume(
        next_seq: u64,
        last_hash: Hash,
        last_time_ns: u64,
        datasets: HashMap<String, Hash>,
    ) -> Chain {
        Chain {
            next_seq,
            last_hash,
            last_time_ns,
            datasets,
            ..Chain::default()
        }
    }

    /// A chain for reading from record `next_seq` on without what came
    /// before: `prev` (when `last_hash` is `None`), the time and the
    /// first link of each dataset are taken as found; everything after
    /// them is checked.
    pub fn partial(next_seq: u64, last_hash: Option<Hash>) -> Chain {
        Chain {
            next_seq,
            last_hash: last_hash.unwrap_or_default(),
            unknown_prev: last_hash.is_none(),
            unknown_datasets: true,
            ..Chain::default()
        }
    }

    /// Moves past a record without looking at it: its hash is unknown.
    pub fn skip(&mut self) {
        self.next_seq += 1;
        self.unknown_prev = true;
    }

    /// The last leaf hash of each dataset.
    pub fn datasets(&self) -> &HashMap<String, Hash> {
        &self.datasets
    }

    /// The record that puts `entry`, observed at `time_ns`, next in the log.
    /// Time is clamped so that it never goes backwards.
    pub fn link(&self, time_ns: u64, entry: Entry) -> Record {
        Record {
            seq: self.next_seq,
            time_ns: time_ns.max(self.last_time_ns),
            prev: self.last_hash,
            prev_dataset: self.prev_dataset(&entry),
            entry,
        }
    }

    /// What the next record is checked against, but its dataset's head.
    fn tip(&self) -> Tip {
        Tip {
            next_seq: self.next_seq,
            last_hash: self.last_hash,
            last_time_ns: self.last_time_ns,
            unknown_prev: self.unknown_prev,
            unknown_datasets: self.unknown_datasets,
        }
    }

    /// Checks that `record` is the one that may come next.
    pub fn check(&self, record: &Record) -> Result<(), VerifyErrorKind> {
        let tip = self.tip();
        tip.judge(record, self.prev_dataset(&record.entry))
    }

    /// Checks that `record`, whose leaf hash is `leaf`, may come next, as
    /// [`check`](Self::check) does, and moves past it as
    /// [`advance`](Self::advance) does, looking its dataset up once.
    pub fn follow(&mut self, record: &Record, leaf: Hash) -> Result<(), VerifyErrorKind> {
        let tip = self.tip();
        let dataset = record.entry.dataset.as_ref();
        let head = dataset.and_then(|d| self.datasets.get_mut(d));
        tip.judge(record, head.as_deref().copied())?;
        match (head, dataset) {
            (Some(last), _) => *last = leaf,
            (None, Some(dataset)) => {
                self.datasets.insert(dataset.clone(), leaf);
            }
            (None, None) => {}
        }
        self.next_seq = record.seq + 1;
        self.last_hash = leaf;
        self.unknown_prev = false;
        self.last_time_ns = record.time_ns;
        Ok(())
    }

    /// Moves past `record`, whose leaf hash is `leaf`.
    pub fn advance(&mut self, record: &Record, leaf: Hash) {
        self.next_seq = record.seq + 1;
        self.last_hash = leaf;
        self.unknown_prev = false;
        self.last_time_ns = record.time_ns;
        if let Some(dataset) = &record.entry.dataset {
            match self.datasets.get_mut(dataset) {
                Some(last) => *last = leaf,
                None => {
                    self.datasets.insert(dataset.clone(), leaf);
                }
            }
        }
    }

    /// How many datasets have records.
    pub fn dataset_count(&self) -> usize {
        self.datasets.len()
    }

    fn prev_dataset(&self, entry: &Entry) -> Option<Hash> {
        let dataset = entry.dataset.as_ref()?;
        self.datasets.get(dataset).copied()
    }
}

/// What the next record is checked against, but its dataset's head.
struct Tip {
    next_seq: u64,
    last_hash: Hash,
    last_time_ns: u64,
    unknown_prev: bool,
    unknown_datasets: bool,
}

impl Tip {
    /// Whether `record` may come next, `head` being the last leaf hash of
    /// its dataset: sequence, chain, dataset chain, time, in that order.
    fn judge(&self, record: &Record, head: Option<Hash>) -> Result<(), VerifyErrorKind> {
        if record.seq != self.next_seq {
            return Err(VerifyErrorKind::SequenceGap {
                expected: self.next_seq,
                found: record.seq,
            });
        }
        if record.prev != self.last_hash && !self.unknown_prev {
            return Err(VerifyErrorKind::PrevHashMismatch);
        }
        // Reading from the middle, a dataset's first record links to a
        // record not read.
        let unseen = self.unknown_datasets && head.is_none() && record.entry.dataset.is_some();
        if record.prev_dataset != head && !unseen {
            return Err(VerifyErrorKind::DatasetHashMismatch {
                dataset: record.entry.dataset.clone().unwrap_or_default(),
            });
        }
        if record.time_ns < self.last_time_ns {
            return Err(VerifyErrorKind::TimeBackwards {
                previous_ns: self.last_time_ns,
                found_ns: record.time_ns,
            });
        }
        Ok(())
    }
}
