//! Why a run that trapped stopped, in words an operator understands, with
//! the cause kept: classified by type and by trap code, never by the text
//! of wasmtime's message —
//! 1. the run's limiter refused memory ([`Breach`]) → a memory failure;
//! 2. a [`HostFault`] carried through the trap (the store or the audit
//!    trail failed under a host call) → a host fault;
//! 3. a [`Cancelled`] from the epoch callback → cancelled, or host stopped;
//! 4. a [`wasmtime::Trap`] code: out of fuel, interrupted (the window),
//!    stack overflow, unreachable, …;
//! 5. wasmtime's hostcall-fuel refusal (a private type whose derived
//!    `Debug` is its name) → an oversized transfer;
//! 6. anything else: its root cause, with where in the guest it happened.

use wasmtime::WasmBacktrace;

use super::cancel::Cancelled;
use super::failure::{HostFault, RunFailure};
use super::hostcalls::RunState;
use super::limiter::Breach;
use crate::limits::Limits;

/// The run failure `error` (a trap of a run with `state` and `limits`)
/// stands for.
pub fn explain(state: &RunState, limits: &Limits, error: &wasmtime::Error) -> RunFailure {
    if let Some(Breach::Memory { cap_mib, wanted }) = &state.bounds.limiter.breach {
        return RunFailure::Memory {
            wanted_mib: wanted.div_ceil(1 << 20) as u64,
            cap_mib: *cap_mib,
        };
    }
    if let Some(fault) = error.downcast_ref::<HostFault>() {
        return RunFailure::host_fault(fault);
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
            let root = error.root_cause();
            let text = root.to_string();
            let text = text.lines().next().unwrap_or("unknown").to_string();
            if is_hostcall_fuel(root) {
                return RunFailure::transfer(&text);
            }
            text
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

/// wasmtime's refusal of a transfer past the store's hostcall fuel: its
/// type, `HostcallFuelExhausted` (component/func/options.rs), is private,
/// so it is recognised by the name its derived `Debug` prints — the type,
/// not the wording of its message.
fn is_hostcall_fuel(root: &(dyn std::error::Error + 'static)) -> bool {
    format!("{root:?}") == "HostcallFuelExhausted"
}
