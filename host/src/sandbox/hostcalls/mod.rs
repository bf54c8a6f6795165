//! Host side of the `runway:agent` world: the state of one run inside its
//! wasmtime `Store`, and the host calls a guest can make — one file per WIT
//! interface ([`datasets`], [`log`], [`context`], [`orchestration`],
//! [`events`], and `clocks`, which bounds WASI's monotonic-clock waits by the run's window).
//!
//! The run's state is split by what uses it: [`RunData`] (the datasets
//! interface), [`CallTrail`] (`trail.rs`), [`RunOutput`] (the log
//! interface and stdio), [`RunBounds`] (limits, deadline, cancel) and WASI.
//! Every call goes through [`RunState::audited`], which records exactly one
//! audit entry per call, allowed or denied (buffered per run, handed to the
//! trail in batches, always before the run's writes commit). Guest-handleable
//! failures are WIT `error` values; a host fault (the dataset store or the
//! audit trail failed) is a trap carrying a typed [`HostFault`], which the
//! run's judgement finds again by type (`sandbox/trap.rs`).

mod clocks;
mod context;
mod datasets;
mod events;
mod log;
mod orchestration;
mod trail;

pub use datasets::MAX_PAGE;
pub(crate) use datasets::RunData;
pub(crate) use events::RunEvents;
pub use events::{Publication, Topics};
pub use log::RunLog;
pub(crate) use log::RunOutput;
pub use orchestration::{Delegator, Family, HandBack, Returned};
pub(crate) use trail::CallTrail;

use std::sync::Arc;
use std::time::Instant;

use runway_audit::{AuditLog, Call, Entry, Event, Hash, LockMode, Outcome};
use sha2::{Digest, Sha256};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::cancel::Cancel;
use super::epoch::Awake;
use super::failure::HostFault;
use super::limiter::RunLimiter;
use crate::limits::Limits;
use crate::store::DatasetStore;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "agent",
    imports: {
        // The guest waits on its fiber; the host awaits the controller.
        "runway:agent/orchestration.delegate": async | trappable,
        "runway:agent/orchestration.join": async | trappable,
        "runway:agent/orchestration.cancel": async | trappable,
        "runway:agent/orchestration.handoff": async | trappable,
        default: trappable,
    },
});

pub(crate) use clocks::add_to_linker as add_bounded_clock_to_linker;
pub use runway::agent::orchestration::{
    Child, ChildResult, ChildState, Delegation, HandoffRequest, JoinMode, LockRequest, RetryPolicy,
};
pub use runway::agent::types::LockMode as WitLockMode;
pub use runway::agent::types::{Error as GuestError, HeldLock, RunInfo};

/// Call records a run buffers before handing them to the audit trail in
/// one batch: the call path pays a `Vec` push, not a lock and a wake-up.
pub const AUDIT_BATCH: usize = 256;

/// Everything one run's host calls need, split by what uses it. Lives in
/// the run's `Store`.
pub struct RunState {
    pub(crate) info: RunInfo,
    /// The `datasets` interface: reads and staged writes.
    pub(crate) data: RunData,
    /// The audit record of every call.
    pub(crate) trail: CallTrail,
    /// The `log` interface and the guest's stdout and stderr.
    pub(crate) output: RunOutput,
    /// The run's limits, deadline and cancel switch.
    pub(crate) bounds: RunBounds,
    /// The `orchestration` interface: the way to the controller, when the
    /// run flies under one.
    pub(crate) family: Option<Family>,
    /// The `events` interface: what the run published, staged until it
    /// lands.
    pub(crate) events: RunEvents,
    wasi: WasiCtx,
    table: ResourceTable,
}

/// What bounds one run: its limits (memory and counts by the limiter),
/// its window's end (WASI waits are cut there too) and its cancel switch.
pub(crate) struct RunBounds {
    pub limits: Limits,
    pub limiter: RunLimiter,
    pub deadline: Instant,
    /// Keeps the epoch ticking while this run lives.
    _awake: Awake,
    /// Set when a person cancels the run.
    pub cancel: Cancel,
}

impl RunState {
    /// State for one run. WASI is present (Rust's `std` imports it) but
    /// grants nothing: no files, no environment, no sockets, no arguments.
    /// stdout and stderr each keep at most the plugin's log budget.
    pub fn new(
        info: RunInfo,
        plugin: Hash,
        limits: Limits,
        deadline: Instant,
        awake: Awake,
        store: Arc<DatasetStore>,
        audit: AuditLog,
    ) -> RunState {
        let stdout = MemoryOutputPipe::new(limits.max_log());
        let stderr = MemoryOutputPipe::new(limits.max_log());
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        RunState {
            info,
            data: RunData::new(store),
            trail: CallTrail::new(plugin, audit),
            output: RunOutput {
                log: RunLog::new(limits.max_log()),
                stdout,
                stderr,
                cap: limits.max_log(),
            },
            bounds: RunBounds {
                limiter: RunLimiter::new(&limits),
                limits,
                deadline,
                _awake: awake,
                cancel: Cancel::default(),
            },
            family: None,
            events: RunEvents::default(),
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Closes the run's reader (its agent has returned).
    pub(crate) fn end_reads(&mut self) {
        self.data.end_reads();
    }

    /// The lock this run holds on `dataset`, if any.
    pub(crate) fn lock_on(&self, dataset: &str) -> Option<&HeldLock> {
        self.info.locks.iter().find(|l| l.dataset == dataset)
    }

    /// An audit entry about this run.
    pub(crate) fn entry(&self, dataset: Option<String>, event: Event) -> Entry {
        Entry {
            runway: self.info.runway.clone(),
            agent: self.info.agent.clone(),
            plugin: Some(self.trail.plugin),
            dataset,
            event,
        }
    }

    /// Records one host call and hands its result to the guest. A host
    /// fault, or an audit trail that cannot take the record, traps the
    /// guest with the fault as a typed error (a faulted call leaves no call
    /// record: the run's FAILED names the call and the fault).
    pub(crate) fn audited<T, E: Into<CallError>>(
        &mut self,
        call: Call,
        target: Target<'_>,
        args: Hash,
        result: Result<T, E>,
        digest: impl FnOnce(&T) -> Hash,
    ) -> wasmtime::Result<Result<T, GuestError>> {
        let result = match result.map_err(Into::into) {
            Ok(v) => Ok(v),
            Err(CallError::Guest(e)) => Err(e),
            Err(CallError::Host(fault)) => return Err(wasmtime::Error::new(fault)),
        };
        let (outcome, result_digest) = match &result {
            Ok(v) => (Outcome::Ok, digest(v)),
            Err(e) => (outcome_of(e), NO_DATA),
        };
        let event = Event::Call {
            call,
            key: target.key.map(str::to_string),
            token: target.token,
            args,
            result: result_digest,
            outcome,
        };
        let entry = self.entry(target.dataset.map(str::to_string), event);
        self.trail
            .push(entry)
            .map_err(|e| wasmtime::Error::new(HostFault::Audit(Arc::new(e))))?;
        Ok(result)
    }

    /// Hands the buffered call records to the audit trail. The sandbox run
    /// calls it when the guest returns, before anything is committed or
    /// reported.
    pub(crate) fn flush_audit(&mut self) -> Result<(), runway_audit::AuditError> {
        self.trail.flush()
    }

    /// The audit sequence number of call number `call` (once flushed).
    pub(crate) fn seq_of(&self, call: u64) -> u64 {
        self.trail.seq_of(call)
    }

    /// What the guest printed on stdout and stderr (capped).
    pub fn stdio(&self) -> (Vec<u8>, Vec<u8>) {
        self.output.stdio()
    }

    /// Did the guest fill stdout or stderr to the cap? (Rust's `print!`
    /// panics when the stream refuses more.)
    pub fn stdio_full(&self) -> bool {
        self.output.full()
    }
}

/// Why a host call did not succeed: the guest's to handle (a WIT error
/// value), or the host's own fault (a trap).
pub(crate) enum CallError {
    Guest(GuestError),
    Host(HostFault),
}

impl From<GuestError> for CallError {
    fn from(e: GuestError) -> Self {
        CallError::Guest(e)
    }
}

impl From<HostFault> for CallError {
    fn from(f: HostFault) -> Self {
        CallError::Host(f)
    }
}

/// Where a call was aimed, as far as it was valid enough to name.
#[derive(Default, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub dataset: Option<&'a str>,
    pub key: Option<&'a str>,
    pub token: Option<u64>,
}

/// Digest recorded when a call returns no data.
pub(crate) const NO_DATA: Hash = [0; 32];

/// SHA-256 over length-prefixed parts, so `("ab","c")` and `("a","bc")` differ.
pub(crate) fn digest_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn outcome_of(e: &GuestError) -> Outcome {
    match e {
        GuestError::Denied(m) => Outcome::Denied(m.clone()),
        GuestError::LockLost(m) => Outcome::LockLost(m.clone()),
        GuestError::NotFound(m) => Outcome::NotFound(m.clone()),
        GuestError::Invalid(m) => Outcome::Invalid(m.clone()),
        GuestError::Limit(m) => Outcome::Limit(m.clone()),
    }
}

/// `kind: message`, as run failure reasons show a guest's error.
pub fn describe(e: &GuestError) -> String {
    let outcome = outcome_of(e);
    format!(
        "{}: {}",
        outcome.name(),
        outcome.reason().unwrap_or_default()
    )
}

impl From<LockMode> for WitLockMode {
    fn from(m: LockMode) -> Self {
        match m {
            LockMode::Shared => WitLockMode::Shared,
            LockMode::Exclusive => WitLockMode::Exclusive,
        }
    }
}

impl runway::agent::types::Host for RunState {}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
