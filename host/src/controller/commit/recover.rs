//! Steps 4 and 5 of the protocol (see the module doc of `commit`): what a
//! crash left unsettled, observed record by record as the trail is read
//! once at start-up, then settled against the store.
//!
//! A run's COMMITTING record is durable before its store transaction
//! starts, and the transaction writes a commits row keyed by that record's
//! sequence number. Every COMMITTING not followed by its run's end (or an
//! earlier RECOVER) is looked up: found, the transaction committed —
//! RECOVER (landed), COMMITTED per dataset still missing, SUCCEEDED; not
//! found, nothing was applied — RECOVER (not landed) and FAILED ("host
//! crashed during the commit"; on a shared database "host ORIGIN lost
//! during the commit"). A run that was flying when the host died, before
//! any commit began (STARTED with nothing after it), gets FAILED ("host
//! crashed during the run", or "host ORIGIN lost during the run"):
//! nothing of it was committed, and the trail no longer ends at its
//! START.

use std::collections::BTreeMap;

use runway_audit::{AuditLog, Entry, Event, LockMode, Record};
use serde::{Deserialize, Serialize};

use super::CommitError;
use crate::store::{DatasetStore, Landed};

/// What a start-up found a crash had left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Commits begun and settled against the store.
    pub commits: usize,
    /// Runs cut short before they began to commit.
    pub runs: usize,
    /// The records settling them appended, in order, with their sequence
    /// numbers (the start path folds them into the journal too).
    pub appended: Vec<(u64, Entry)>,
}

/// Commits and runs a crash interrupted, as seen so far in a trail.
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsettled {
    /// Per runway, its COMMITTING with no end after it yet.
    open: BTreeMap<String, Open>,
    /// Per runway, its STARTED with nothing after it yet.
    flying: BTreeMap<String, (u64, Entry)>,
    /// Per flying runway, the host (origin) it flew on, when records from
    /// many hosts are observed (the shared history); never snapshotted.
    #[serde(skip)]
    flown_by: BTreeMap<String, String>,
}

/// A commit begun and not yet ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Open {
    /// Sequence number of the COMMITTING record.
    seq: u64,
    /// The COMMITTING record itself.
    entry: Entry,
    /// Datasets whose COMMITTED record followed it.
    done: Vec<String>,
    /// The shard (origin) of the COMMITTING record, when records from
    /// many hosts are observed; never snapshotted.
    #[serde(skip)]
    origin: String,
}

impl Unsettled {
    /// One commit known to have begun — its COMMITTING record, number
    /// `seq` of shard `origin` — whose run's end was never recorded (its
    /// crew was lost after the commit: `controller::remote`).
    pub fn begun(origin: &str, seq: u64, entry: Entry) -> Unsettled {
        let mut unsettled = Unsettled::default();
        let open = Open {
            seq,
            entry,
            done: Vec::new(),
            origin: origin.to_string(),
        };
        unsettled.open.insert(open.entry.runway.clone(), open);
        unsettled
    }

    /// Takes one record of this host's trail into account; records come
    /// in trail order.
    pub fn observe(&mut self, record: &Record) {
        self.observe_from("", record);
    }

    /// Takes one record of shard `origin` into account, as the shared
    /// history orders the records of many hosts.
    pub fn observe_from(&mut self, origin: &str, record: &Record) {
        let runway = &record.entry.runway;
        match &record.entry.event {
            Event::Started { .. } => {
                self.flying
                    .insert(runway.clone(), (record.seq, record.entry.clone()));
                if !origin.is_empty() {
                    self.flown_by.insert(runway.clone(), origin.to_string());
                }
            }
            Event::Committing { .. } => {
                self.flying.remove(runway);
                let open = Open {
                    seq: record.seq,
                    entry: record.entry.clone(),
                    done: Vec::new(),
                    origin: origin.to_string(),
                };
                self.open.insert(runway.clone(), open);
            }
            Event::Committed { .. } => {
                if let (Some(open), Some(dataset)) =
                    (self.open.get_mut(runway), &record.entry.dataset)
                {
                    open.done.push(dataset.clone());
                }
            }
            Event::Succeeded { .. } | Event::Failed { .. } | Event::Moved { .. } => {
                self.open.remove(runway);
                self.flying.remove(runway);
            }
            Event::Recovered { committing, .. } => {
                self.open
                    .retain(|id, open| open.seq != *committing || id != runway);
            }
            _ => {}
        }
    }

    /// Settles each against `store`: appends FAILED for the runs cut short,
    /// RECOVER then COMMITTED and SUCCEEDED (or FAILED) for the commits,
    /// in trail order, and syncs the trail. A commits row that does not
    /// read back whole or disagrees with its COMMITTING stops it, named.
    pub fn settle(self, audit: &AuditLog, store: &DatasetStore) -> Result<Settled, CommitError> {
        let flown_by = self.flown_by;
        let mut flying: Vec<_> = self.flying.into_values().collect();
        flying.sort_by_key(|(seq, _)| *seq);
        let mut open: Vec<_> = self.open.into_values().collect();
        open.sort_by_key(|open| open.seq);
        // Every row is read and checked before anything is appended.
        let mut found = Vec::with_capacity(open.len());
        for commit in &open {
            let landed = store.landed(&commit.origin, commit.seq)?;
            if let Some(landed) = &landed {
                agrees(commit, landed)?;
            }
            found.push(landed);
        }
        let mut appended = Vec::new();
        let mut append = |entry: Entry| {
            let ticket = audit.append(entry.clone())?;
            appended.push((ticket.seq(), entry));
            Ok::<_, runway_audit::AuditError>(())
        };
        for (_, entry) in &flying {
            let reason = match flown_by.get(&entry.runway) {
                Some(origin) => format!("host {origin} lost during the run; nothing was committed"),
                None => "host crashed during the run; nothing was committed".into(),
            };
            append(Entry {
                event: Event::Failed { reason },
                dataset: None,
                ..entry.clone()
            })?;
        }
        for (commit, landed) in open.iter().zip(found) {
            let note = |event| Entry {
                event,
                dataset: None,
                ..commit.entry.clone()
            };
            append(note(Event::Recovered {
                committing: commit.seq,
                landed: landed.is_some(),
            }))?;
            match landed {
                Some(landed) => {
                    // COMMITTED records that made it to disk before the
                    // crash are not written twice.
                    for d in landed.datasets {
                        if commit.done.contains(&d.dataset) {
                            continue;
                        }
                        append(Entry {
                            dataset: Some(d.dataset),
                            ..note(Event::Committed {
                                token: d.token,
                                writes: d.stats.writes,
                                deletes: d.stats.deletes,
                            })
                        })?;
                    }
                    append(note(Event::Succeeded {
                        output: landed.output,
                    }))?;
                }
                None => {
                    let reason = match commit.origin.as_str() {
                        "" => "host crashed during the commit; nothing was applied".into(),
                        origin => {
                            format!("host {origin} lost during the commit; nothing was applied")
                        }
                    };
                    append(note(Event::Failed { reason }))?;
                }
            }
        }
        audit.sync()?;
        Ok(Settled {
            commits: open.len(),
            runs: flying.len(),
            appended,
        })
    }
}

/// Checks a commits row against the COMMITTING record it is keyed by: the
/// same runway, and each dataset landed under an exclusive lock the record
/// names, with that lock's token.
fn agrees(commit: &Open, landed: &Landed) -> Result<(), CommitError> {
    let disagrees = |why: String| CommitError::Disagrees {
        runway: commit.entry.runway.clone(),
        committing: commit.seq,
        why,
    };
    if landed.runway != commit.entry.runway {
        return Err(disagrees(format!("the row is runway {}'s", landed.runway)));
    }
    let Event::Committing { locks, .. } = &commit.entry.event else {
        unreachable!("an open commit is a COMMITTING record");
    };
    for d in &landed.datasets {
        let lock = locks
            .iter()
            .find(|l| l.dataset == d.dataset && l.mode == LockMode::Exclusive);
        match lock {
            None => {
                return Err(disagrees(format!(
                    "it landed on {}, which the record holds no exclusive lock on",
                    d.dataset
                )));
            }
            Some(l) if l.token != d.token => {
                return Err(disagrees(format!(
                    "it landed on {} under token {}, the record's lock has token {}",
                    d.dataset, d.token, l.token
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use runway_audit::{AuditOptions, LockGrant};

    use super::*;
    use crate::store::{Change, RunCommit, Staged};

    /// The trail streamed into [`Unsettled`] and settled, as the start path
    /// (`controller::start`) does it.
    fn recover(audit: &AuditLog, store: &DatasetStore) -> Result<Settled, CommitError> {
        let mut unsettled = Unsettled::default();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        runway_audit::for_each_record(audit.dir(), threads, |r: Record| unsettled.observe(&r))?;
        unsettled.settle(audit, store)
    }

    /// A real trail with one COMMITTING whose store transaction committed
    /// (the host died before COMMITTED): the commits row, corrupted in the
    /// real database file or not, decides what recovery does.
    fn interrupted(dir: &std::path::Path) -> (AuditLog, DatasetStore, u64) {
        let audit = AuditLog::open(&dir.join("audit"), AuditOptions::new("test")).unwrap();
        let store = DatasetStore::open(&dir.join("data")).unwrap();
        let entry = |event| Entry {
            runway: "import".into(),
            agent: "importer".into(),
            plugin: Some([1; 32]),
            dataset: None,
            event,
        };
        audit.append(entry(Event::Started { attempt: 1 })).unwrap();
        let locks = vec![LockGrant {
            dataset: "d".into(),
            mode: LockMode::Exclusive,
            token: 9,
        }];
        let ticket = audit
            .append(entry(Event::Committing {
                locks,
                changes: [0; 32],
            }))
            .unwrap();
        audit.wait_durable(ticket).unwrap();
        let mut staged = Staged::default();
        staged.stage("d", "k", Change::Put(b"v".to_vec()), 0);
        let tokens = BTreeMap::from([("d".to_string(), 9)]);
        let landed = store.commit(&[RunCommit {
            runway: "import",
            agent: "importer",
            plugin: [1; 32],
            attempt: 1,
            tokens: &tokens,
            staged: &staged,
            seq_of: &|_| 0,
            deadline: Instant::now() + Duration::from_secs(60),
            committing_seq: ticket.seq(),
            output: [4; 32],
        }]);
        assert!(landed[0].is_ok(), "{landed:?}");
        (audit, store, ticket.seq())
    }

    #[test]
    fn a_commit_that_landed_is_settled_as_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let (audit, store, seq) = interrupted(dir.path());
        let settled = recover(&audit, &store).unwrap();
        assert_eq!(
            (settled.commits, settled.runs, settled.appended.len()),
            (1, 0, 3)
        );
        let records = runway_audit::read_records(audit.dir()).unwrap();
        let events: Vec<_> = records[2..].iter().map(|r| &r.entry.event).collect();
        assert!(
            matches!(
                events[..],
                [
                    Event::Recovered { committing, landed: true },
                    Event::Committed { token: 9, writes: 1, deletes: 0 },
                    Event::Succeeded { output: [4, ..] },
                ] if *committing == seq
            ),
            "{events:?}"
        );
        // Settled once: a second start finds nothing open.
        assert_eq!(recover(&audit, &store).unwrap(), Settled::default());
    }

    /// The row recovery trusts, corrupted by this test in the real SQLite
    /// file: recovery stops naming the runway and the COMMITTING record,
    /// and appends nothing.
    #[test]
    fn a_corrupt_commits_row_stops_recovery_naming_it() {
        for (sql, why) in [
            (
                "UPDATE commits SET output = x'00'",
                "output digest has 1 bytes",
            ),
            ("DELETE FROM commit_datasets", "lists no dataset"),
            (
                "UPDATE commit_datasets SET token = 8",
                "under token 8, the record's lock has token 9",
            ),
            (
                "UPDATE commit_datasets SET dataset = 'e'",
                "landed on e, which the record holds no",
            ),
            (
                "UPDATE commits SET runway = 'other'",
                "the row is runway other's",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (audit, store, seq) = interrupted(dir.path());
            let db = rusqlite::Connection::open(dir.path().join("data/runway.db")).unwrap();
            db.pragma_update(None, "ignore_check_constraints", true)
                .unwrap();
            db.execute_batch(sql).unwrap();
            let before = runway_audit::read_records(audit.dir()).unwrap().len();
            let err = recover(&audit, &store).unwrap_err().to_string();
            assert!(err.contains(why), "{sql}: {err}");
            assert!(
                err.contains("runway import") && err.contains(&format!("COMMITTING record {seq}")),
                "{sql}: {err}"
            );
            let after = runway_audit::read_records(audit.dir()).unwrap().len();
            assert_eq!(before, after, "{sql}: nothing appended");
        }
    }

    /// What recovery keeps between records survives a snapshot round trip.
    #[test]
    fn unsettled_is_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (audit, _store, _) = interrupted(dir.path());
        let mut unsettled = Unsettled::default();
        for r in runway_audit::read_records(audit.dir()).unwrap() {
            unsettled.observe(&r);
        }
        assert_ne!(unsettled, Unsettled::default());
        let bytes = postcard::to_stdvec(&unsettled).unwrap();
        assert_eq!(
            postcard::from_bytes::<Unsettled>(&bytes).unwrap(),
            unsettled
        );
    }
}
