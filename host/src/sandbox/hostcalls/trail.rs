//! A run's call records on their way to the audit trail: one per host
//! call, buffered and handed over in batches of [`AUDIT_BATCH`] (the call
//! path pays a `Vec` push, not a lock and a wake-up), always before the
//! run's writes commit; and where each batch landed, so a staged write can
//! name the audit sequence number of the call that made it.

use runway_audit::{AuditError, AuditLog, Entry, Hash};

use super::AUDIT_BATCH;

pub(crate) struct CallTrail {
    /// The digest of the plugin every record names.
    pub plugin: Hash,
    audit: AuditLog,
    pending: Vec<(u64, Entry)>,
    /// Calls recorded so far; the next call's number.
    pub calls: u64,
    /// (first call number, its audit sequence number) of every batch
    /// handed over: a batch's records get consecutive numbers.
    batches: Vec<(u64, u64)>,
}

impl CallTrail {
    pub fn new(plugin: Hash, audit: AuditLog) -> CallTrail {
        CallTrail {
            plugin,
            audit,
            pending: Vec::with_capacity(AUDIT_BATCH),
            calls: 0,
            batches: Vec::new(),
        }
    }

    /// Records one call; hands a full batch over.
    pub fn push(&mut self, entry: Entry) -> Result<(), AuditError> {
        self.pending.push((runway_audit::now_ns(), entry));
        self.calls += 1;
        if self.pending.len() >= AUDIT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the buffered records to the audit trail.
    pub fn flush(&mut self) -> Result<(), AuditError> {
        // The next batch gets a buffer of full size at once (a taken,
        // empty one regrew by doubling on every batch).
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(AUDIT_BATCH));
        let n = batch.len() as u64;
        if let Some(batch) = self.audit.append_batch(batch)? {
            self.batches
                .push((self.calls - n, batch.last.seq() + 1 - n));
        }
        Ok(())
    }

    /// The audit sequence number of call number `call` (once flushed).
    pub fn seq_of(&self, call: u64) -> u64 {
        let i = self.batches.partition_point(|&(first, _)| first <= call);
        match i.checked_sub(1).map(|i| self.batches[i]) {
            Some((first, seq)) => seq + (call - first),
            None => 0,
        }
    }
}
