//! Enforcing a plugin's [`Limits`] on one run's store: a memory cap through
//! a resource limiter (which remembers that it refused, so the run's failure
//! says why), a fuel budget for CPU, an epoch deadline for wall time, and
//! hostcall fuel so a guest cannot make the host allocate more than
//! [`MAX_TRANSFER`] bytes for one call.
//!
//! The epoch ticks every [`TICK`] on a thread owned by the runtime; a run's
//! deadline is its window in ticks, checked by wasmtime at every loop
//! back-edge and function entry — also in a loop that keeps calling the host.

use std::time::Duration;

use wasmtime::{ResourceLimiter, Store};

use crate::grants::Limits;
use crate::hostcalls::RunState;

/// How often the epoch advances.
pub const TICK: Duration = Duration::from_millis(10);
/// Largest value a guest may write in one call.
pub const MAX_VALUE: usize = 1 << 20;
/// Most bytes of writes one run may stage before it commits.
pub const MAX_STAGED: usize = 512 << 20;
/// Most bytes a guest may hand the host in one call (value + names + slack).
pub const MAX_TRANSFER: usize = MAX_VALUE + (64 << 10);
/// Most instances / tables / memories a run may create.
const MAX_INSTANCES: usize = 32;

/// Which limit stopped a run, when one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    Memory { cap_mib: u64 },
    Table,
}

/// The memory/table limiter of one run.
#[derive(Debug)]
pub struct RunLimiter {
    memory_bytes: usize,
    memory_mib: u64,
    pub breach: Option<Breach>,
}

impl RunLimiter {
    pub fn new(limits: &Limits) -> RunLimiter {
        RunLimiter {
            memory_bytes: limits.memory_bytes(),
            memory_mib: limits.memory_mib,
            breach: None,
        }
    }
}

impl ResourceLimiter for RunLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.breach = Some(Breach::Memory {
                cap_mib: self.memory_mib,
            });
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > 100_000 {
            self.breach = Some(Breach::Table);
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_INSTANCES
    }
    fn memories(&self) -> usize {
        MAX_INSTANCES
    }
}

/// Puts `limits` on a fresh store.
pub fn apply(store: &mut Store<RunState>, limits: &Limits) -> wasmtime::Result<()> {
    store.limiter(|s| &mut s.limiter);
    store.set_fuel(limits.fuel)?;
    let ticks = limits
        .window()
        .as_millis()
        .div_ceil(TICK.as_millis())
        .max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    store.set_hostcall_fuel(MAX_TRANSFER);
    Ok(())
}

/// Why a run that trapped stopped, in words an operator understands.
pub fn explain_trap(state: &RunState, limits: &Limits, error: &wasmtime::Error) -> String {
    if let Some(breach) = &state.limiter.breach {
        return match breach {
            Breach::Memory { cap_mib } => {
                format!("memory limit exceeded: the run tried to grow past {cap_mib} MiB")
            }
            Breach::Table => "table limit exceeded".to_string(),
        };
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => {
            format!("CPU budget exhausted: fuel {} used up", limits.fuel)
        }
        Some(wasmtime::Trap::Interrupt) => format!(
            "timed out: wall-clock window of {} s exceeded",
            limits.window_secs
        ),
        Some(wasmtime::Trap::StackOverflow) => "stack overflow".to_string(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "agent trapped: unreachable (a panic or abort in the guest)".to_string()
        }
        Some(trap) => format!("agent trapped: {trap}"),
        None => {
            let text = format!("{error:#}");
            let first = text.lines().next().unwrap_or("unknown");
            // wasmtime's hostcall-fuel refusal (component/func/options.rs).
            if text.contains("too much data is being copied between the host and the guest") {
                format!("limit: a host call carried more than {MAX_TRANSFER} bytes ({first})")
            } else {
                format!("agent trapped: {first}")
            }
        }
    }
}
