//! The plans filed, as their PLAN records say them: which runways were
//! filed together, by whom, from where and when. The board groups a
//! filing's runways by it, and a filing is named by its PLAN record's
//! sequence number (`/filings/SEQ`).
//!
//! One source, the trail: at start the journal's fold feeds every PLAN
//! record in ([`Filings::apply`]); while the controller runs, it keeps
//! each PLAN record it appends once the batch holding it has its
//! sequence numbers ([`Filings::among`], then [`Filings::appended`]). So
//! the list is the same before and after a restart, and nobody reads the
//! trail to answer it.

use runway_audit::{Entry, Event, Hash};

/// One plan filed (a PLAN record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingReport {
    /// The PLAN record's sequence number: the filing's id.
    pub seq: u64,
    /// When it was written (Unix ns, the trail's clock).
    pub time_ns: u64,
    pub by: String,
    pub source: String,
    /// SHA-256 of the plan as received.
    pub digest: Hash,
    /// Its runway ids, in the plan's order.
    pub runways: Vec<String>,
}

/// Every plan filed, oldest first.
#[derive(Debug, Default)]
pub struct Filings {
    list: Vec<FilingReport>,
}

/// A PLAN record in a batch not appended yet: its place in the batch,
/// its time and the record.
pub struct Pending(usize, u64, Entry);

impl Filings {
    /// Keeps record number `seq`, written at `time_ns`, if it is a PLAN
    /// record.
    pub fn apply(&mut self, seq: u64, time_ns: u64, entry: &Entry) {
        let Event::PlanFiled {
            by,
            source,
            digest,
            runways,
        } = &entry.event
        else {
            return;
        };
        if entry.runway.is_empty() {
            self.list.push(FilingReport {
                seq,
                time_ns,
                by: by.clone(),
                source: source.clone(),
                digest: *digest,
                runways: runways.clone(),
            });
        }
    }

    /// The PLAN records among `batch` (none, mostly: nothing allocated).
    pub fn among(batch: &[(u64, Entry)]) -> Vec<Pending> {
        let plan = |e: &Entry| e.runway.is_empty() && matches!(e.event, Event::PlanFiled { .. });
        let places = batch.iter().enumerate().filter(|(_, (_, e))| plan(e));
        places
            .map(|(k, (time_ns, e))| Pending(k, *time_ns, e.clone()))
            .collect()
    }

    /// Keeps `plans`, of a batch appended as the records numbered from
    /// `first` on.
    pub fn appended(&mut self, first: u64, plans: Vec<Pending>) {
        for Pending(k, time_ns, entry) in plans {
            self.apply(first + k as u64, time_ns, &entry);
        }
    }

    /// Every plan filed, oldest first.
    pub fn list(&self) -> Vec<FilingReport> {
        self.list.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(runways: &[&str]) -> Entry {
        Entry::of_host(Event::PlanFiled {
            by: "olga".into(),
            source: "api".into(),
            digest: runway_audit::sha256(b"plan"),
            runways: runways.iter().map(|r| r.to_string()).collect(),
        })
    }

    #[test]
    fn a_batchs_plans_get_their_own_sequence_numbers() {
        let other = Entry::of_host(Event::Paused { by: "olga".into() });
        let batch = vec![
            (1, other.clone()),
            (2, plan(&["a", "b"])),
            (3, other),
            (4, plan(&["c"])),
        ];
        let mut live = Filings::default();
        live.appended(10, Filings::among(&batch));
        let mut folded = Filings::default();
        for (k, (time_ns, e)) in batch.iter().enumerate() {
            folded.apply(10 + k as u64, *time_ns, e);
        }
        let listed = live.list();
        assert_eq!(listed, folded.list());
        let seqs: Vec<(u64, u64)> = listed.iter().map(|f| (f.seq, f.time_ns)).collect();
        assert_eq!(seqs, [(11, 2), (13, 4)]);
        assert_eq!(listed[0].runways, ["a", "b"]);
    }
}
