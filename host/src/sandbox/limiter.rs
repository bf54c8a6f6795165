//! Enforcing a run's limits on its store: one memory budget for all its
//! memories and tables (a resource limiter that remembers why it refused),
//! fuel, the epoch deadline, hostcall fuel; and the words a run's failure
//! is explained in. The values are in `crate::limits`.

use std::time::Instant;

use wasmtime::{ResourceLimiter, Store, WasmBacktrace};

use super::cancel::Cancelled;
use super::failure::RunFailure;
use super::hostcalls::RunState;
use crate::limits::Limits;
use crate::limits::{
    MAX_CORE_INSTANCES_PER_RUN, MAX_MEMORIES_PER_RUN, MAX_TABLES_PER_RUN, MAX_TRANSFER,
    TABLE_ELEMENT_BYTES,
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

/// Puts `limits` on a fresh store whose window ends at `deadline`.
pub fn apply(
    store: &mut Store<RunState>,
    limits: &Limits,
    deadline: Instant,
) -> wasmtime::Result<()> {
    store.limiter(|s| &mut s.bounds.limiter);
    store.set_fuel(limits.fuel)?;
    // Every tick looks at the window and the cancel switch: past the
    // window the run traps as interrupted, cancelled it traps as such.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |ctx| {
        if let Some(stop) = ctx.data().bounds.cancel.stopped() {
            return Err(wasmtime::Error::new(Cancelled(stop.clone())));
        }
        if Instant::now() >= deadline {
            return Err(wasmtime::Trap::Interrupt.into());
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
    store.set_hostcall_fuel(MAX_TRANSFER);
    Ok(())
}

/// Why a run that trapped stopped, in words an operator understands, with
/// the cause kept: the trap code or root error, and where in the guest.
pub fn explain_trap(state: &RunState, limits: &Limits, error: &wasmtime::Error) -> RunFailure {
    if let Some(Breach::Memory { cap_mib, wanted }) = &state.bounds.limiter.breach {
        return RunFailure::Memory {
            wanted_mib: wanted.div_ceil(1 << 20) as u64,
            cap_mib: *cap_mib,
        };
    }
    if let Some(Cancelled(stop)) = error.downcast_ref::<Cancelled>() {
        return stop.failure();
    }
    let cause = match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => return RunFailure::Fuel { fuel: limits.fuel },
        Some(wasmtime::Trap::Interrupt) => {
            return RunFailure::TimedOut {
                window_secs: limits.window_secs,
            };
        }
        Some(wasmtime::Trap::StackOverflow) => "stack overflow".to_string(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "unreachable (a panic or abort in the guest)".to_string()
        }
        Some(trap) => trap.to_string(),
        None => {
            let root = error.root_cause().to_string();
            let root = root.lines().next().unwrap_or("unknown").to_string();
            // wasmtime's hostcall-fuel refusal (component/func/options.rs).
            if root.contains("too much data is being copied between the host and the guest") {
                return RunFailure::transfer(&root);
            }
            root
        }
    };
    let place = error
        .downcast_ref::<WasmBacktrace>()
        .and_then(|bt| bt.frames().first())
        .map(|frame| {
            let func = match frame.func_name() {
                Some(name) => name.to_string(),
                None => format!("function {}", frame.func_index()),
            };
            match frame.module().name() {
                Some(module) => format!(" in {func} (module {module})"),
                None => format!(" in {func}"),
            }
        })
        .unwrap_or_default();
    RunFailure::trapped(&cause, &place)
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
