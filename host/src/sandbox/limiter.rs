//! One memory budget for all of a run's memories and tables: a resource
//! limiter that remembers why it refused (`trap.rs` explains the trap it
//! causes). The values are in `crate::limits`; `run.rs` puts the limiter,
//! fuel, the epoch deadline and hostcall fuel on a run's store.

use wasmtime::ResourceLimiter;

use crate::limits::Limits;
use crate::limits::{
    MAX_CORE_INSTANCES_PER_RUN, MAX_MEMORIES_PER_RUN, MAX_TABLES_PER_RUN, TABLE_ELEMENT_BYTES,
};

/// Which limit stopped a run, when one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// Memories and tables together would pass the run's cap.
    Memory { cap_mib: u64, wanted: usize },
}

/// The memory/table limiter of one run: one budget for all of it.
#[derive(Debug)]
pub struct RunLimiter {
    cap: usize,
    cap_mib: u64,
    /// Bytes of memories and tables the run holds now.
    used: usize,
    /// Growth approved but not yet known to have happened.
    approved: usize,
    pub breach: Option<Breach>,
}

impl RunLimiter {
    pub fn new(limits: &Limits) -> RunLimiter {
        RunLimiter {
            cap: limits.memory_bytes(),
            cap_mib: limits.memory_mib,
            used: 0,
            approved: 0,
            breach: None,
        }
    }

    /// Bytes of memories and tables the run holds now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used
    }

    /// Approves growing one piece from `current` to `desired` bytes if the
    /// whole run stays within its cap.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let added = desired.saturating_sub(current);
        match self.used.checked_add(added) {
            Some(total) if total <= self.cap => {
                self.used = total;
                self.approved = added;
                true
            }
            _ => {
                self.breach = Some(Breach::Memory {
                    cap_mib: self.cap_mib,
                    wanted: self.used.saturating_add(added),
                });
                false
            }
        }
    }

    /// An approved growth did not happen after all.
    fn undo(&mut self) {
        self.used -= std::mem::take(&mut self.approved);
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired)))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES_PER_RUN as usize
    }
    fn tables(&self) -> usize {
        MAX_TABLES_PER_RUN as usize
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES_PER_RUN as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_for_every_memory_and_table() {
        let limits = Limits {
            memory_mib: 4,
            ..Limits::default()
        };
        let mut l = RunLimiter::new(&limits);
        let mib = 1 << 20;
        assert!(l.memory_growing(0, 2 * mib, None).unwrap(), "first memory");
        assert!(l.memory_growing(0, mib, None).unwrap(), "second memory");
        assert!(
            !l.memory_growing(0, 2 * mib, None).unwrap(),
            "a third memory passing the run's cap"
        );
        assert_eq!(
            l.breach,
            Some(Breach::Memory {
                cap_mib: 4,
                wanted: 5 * mib
            })
        );
        // A table counts against the same budget.
        assert!(
            !l.table_growing(0, mib / TABLE_ELEMENT_BYTES * 2, None)
                .unwrap()
        );
        // An approved growth that failed gives its bytes back.
        assert!(l.memory_growing(mib, 2 * mib, None).unwrap());
        assert_eq!(l.used(), 4 * mib);
        l.memory_grow_failed(wasmtime::format_err!("no")).unwrap();
        assert_eq!(l.used(), 3 * mib);
    }
}
