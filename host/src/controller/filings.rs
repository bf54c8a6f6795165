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

use runway_audit::{Appended, Entry, Event, Hash};

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
/// the latest time of the batch up to it (the log never goes back in
/// time) and the record.
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
        let mut latest = 0;
        let mut plans = Vec::new();
        for (k, (time_ns, e)) in batch.iter().enumerate() {
            latest = latest.max(*time_ns);
            if plan(e) {
                plans.push(Pending(k, latest, e.clone()));
            }
        }
        plans
    }

    /// Keeps `plans`, of a batch of `n` records appended as `appended`
    /// says, at the sequence numbers and times the log gave them.
    pub fn appended(&mut self, appended: Appended, n: u64, plans: Vec<Pending>) {
        let first = appended.last.seq() + 1 - n;
        for Pending(k, latest, entry) in plans {
            let time_ns = latest.max(appended.after_ns);
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
    use runway_audit::{AuditLog, AuditOptions};

    fn plan(runways: &[&str]) -> Entry {
        Entry::of_host(Event::PlanFiled {
            by: "olga".into(),
            source: "api".into(),
            digest: runway_audit::sha256(b"plan"),
            runways: runways.iter().map(|r| r.to_string()).collect(),
        })
    }

    /// A run's batch stamped later lands first: the controller's PLAN
    /// records are written at that later time, and the book says so.
    #[test]
    fn a_batchs_plans_get_the_sequence_numbers_and_times_the_log_gave_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), AuditOptions::new("test")).unwrap();
        let other = Entry::of_host(Event::Paused { by: "olga".into() });
        log.append_batch(vec![(50, other.clone())]).unwrap();
        let batch = vec![
            (10, other.clone()),
            (20, plan(&["a", "b"])),
            (70, other),
            (60, plan(&["c"])),
        ];
        let plans = Filings::among(&batch);
        let mut live = Filings::default();
        let appended = log.append_batch(batch).unwrap().unwrap();
        live.appended(appended, 4, plans);
        log.sync().unwrap();
        let mut folded = Filings::default();
        for r in runway_audit::read_records(dir.path()).unwrap() {
            folded.apply(r.seq, r.time_ns, &r.entry);
        }
        let listed = live.list();
        assert_eq!(listed, folded.list());
        let seqs: Vec<(u64, u64)> = listed.iter().map(|f| (f.seq, f.time_ns)).collect();
        assert_eq!(seqs, [(2, 50), (4, 70)]);
        assert_eq!(listed[0].runways, ["a", "b"]);
    }
}
