//! The shared history's door on the leader's side: a [`Forward`] on the
//! leader's audit log that puts each durable batch's controller records
//! — what the journal folds and what commit recovery reads — into the
//! database's history, in log order, before the batch counts as durable
//! (DESIGN.md, "Beyond one machine"). A host that no longer leads has its
//! batch refused by the database, and its log stops: it acts no more.
//!
//! So a record is durable in the shard of the host that made it before the
//! database takes it, and a waiter told "durable" (a filing acknowledged,
//! a commit begun) knows the next leader will fold it.

use runway_audit::{Entry, Event, Forward, Record};

use super::journal;
use crate::store::Shared;

/// Forwards a leader's controller records to the shared history.
pub struct Mirror(pub Shared);

/// Whether `entry` goes into the shared history: what the journal folds,
/// the commit protocol's records, and the leader's own LEADING.
pub fn in_history(entry: &Entry) -> bool {
    journal::folds(entry)
        || matches!(
            entry.event,
            Event::Committing { .. }
                | Event::Committed { .. }
                | Event::Recovered { .. }
                | Event::Leading { .. }
        )
}

impl Forward for Mirror {
    fn forward(&self, records: &[Record]) -> Result<(), String> {
        let mut rows = Vec::new();
        for record in records.iter().filter(|r| in_history(&r.entry)) {
            let bytes = record
                .encode()
                .map_err(|e| format!("record {}: {e}", record.seq))?;
            rows.push((record.seq, record.time_ns, bytes));
        }
        self.0.append_history(&rows).map_err(|e| e.to_string())
    }
}
