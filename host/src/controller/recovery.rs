//! Settling, at start-up, the commits a crash cut short, so the audit trail
//! and the store agree (DESIGN.md, "Datasets", the commit protocol).
//!
//! A run's COMMITTING record is durable before its store transaction
//! starts, and the transaction writes a commits row keyed by that record's
//! sequence number. Every COMMITTING that is not followed by its run's
//! SUCCEEDED or FAILED (or an earlier recovery) is looked up: found, the
//! transaction committed — RECOVER (landed), COMMITTED per dataset and
//! SUCCEEDED are appended; not found, nothing was applied — RECOVER (not
//! landed) and FAILED ("host crashed during the commit").
//!
//! A run that was flying when the host died, before any commit began
//! (STARTED with nothing after it), gets FAILED ("host crashed during the
//! run"): nothing of it was committed, and the trail no longer ends at its
//! START.

use std::collections::HashMap;

use runway_audit::{AuditError, AuditLog, Entry, Event, Record};

use crate::store::{DatasetStore, StoreError};

/// Why recovery could not run; the host must not start then.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("reading the audit trail to recover interrupted commits: {0}")]
    Read(#[from] runway_audit::VerifyError),
    #[error("looking up an interrupted commit in the store: {0}")]
    Store(#[from] StoreError),
    #[error("recording a recovered commit: {0}")]
    Audit(#[from] AuditError),
}

/// What a start-up found a crash had left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Commits begun and settled against the store.
    pub commits: usize,
    /// Runs cut short before they began to commit.
    pub runs: usize,
    /// The records settling them appended, in order.
    pub appended: Vec<Entry>,
}

/// Commits and runs a crash interrupted, as seen so far in a trail read in
/// order: COMMITTING records whose run has no outcome after them, each
/// with the datasets whose COMMITTED record followed it, and the STARTED
/// records of runs with nothing after them, not even a COMMITTING.
#[derive(Debug, Default, Clone)]
pub struct Unsettled {
    open: HashMap<String, (u64, Entry, Vec<String>)>,
    flying: HashMap<String, (u64, Entry)>,
}

impl Unsettled {
    /// Takes the next record of the trail into account.
    pub fn observe(&mut self, r: &Record) {
        let runway = &r.entry.runway;
        match &r.entry.event {
            Event::Started { .. } => {
                self.flying.insert(runway.clone(), (r.seq, r.entry.clone()));
            }
            Event::Committing { .. } => {
                self.flying.remove(runway);
                let entry = r.entry.clone();
                self.open.insert(runway.clone(), (r.seq, entry, Vec::new()));
            }
            Event::Committed { .. } => {
                if let (Some((_, _, done)), Some(dataset)) =
                    (self.open.get_mut(runway), &r.entry.dataset)
                {
                    done.push(dataset.clone());
                }
            }
            Event::Succeeded { .. } | Event::Failed { .. } | Event::Moved { .. } => {
                self.open.remove(runway);
                self.flying.remove(runway);
            }
            Event::Recovered { committing, .. } => {
                let committing = *committing;
                self.open.retain(|_, (seq, _, _)| *seq != committing);
            }
            _ => {}
        }
    }

    /// Settles every interrupted commit and run against `store`, appending
    /// what happened to `audit` (synced before this returns).
    pub fn settle(self, audit: &AuditLog, store: &DatasetStore) -> Result<Settled, RecoveryError> {
        let mut open: Vec<_> = self.open.into_values().collect();
        open.sort_by_key(|(seq, _, _)| *seq);
        let mut flying: Vec<_> = self.flying.into_values().collect();
        flying.sort_by_key(|(seq, _)| *seq);
        let mut appended = Vec::new();
        let mut append = |entry: Entry| {
            audit.append(entry.clone())?;
            appended.push(entry);
            Ok::<_, AuditError>(())
        };
        for (_, entry) in &flying {
            append(Entry {
                event: Event::Failed {
                    reason: "host crashed during the run; nothing was committed".into(),
                },
                dataset: None,
                ..entry.clone()
            })?;
        }
        for (seq, entry, done) in &open {
            let landed = store.landed(*seq)?;
            let note = |event| Entry {
                event,
                dataset: None,
                ..entry.clone()
            };
            append(note(Event::Recovered {
                committing: *seq,
                landed: landed.is_some(),
            }))?;
            match landed {
                Some(landed) => {
                    // COMMITTED records that made it to disk before the
                    // crash are not written twice.
                    for (dataset, token, stats) in landed.datasets {
                        if done.contains(&dataset) {
                            continue;
                        }
                        append(Entry {
                            dataset: Some(dataset),
                            ..note(Event::Committed {
                                token,
                                writes: stats.writes,
                                deletes: stats.deletes,
                            })
                        })?;
                    }
                    append(note(Event::Succeeded {
                        output: landed.output,
                    }))?;
                }
                None => {
                    append(note(Event::Failed {
                        reason: "host crashed during the commit; nothing was applied".into(),
                    }))?;
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
