//! Hooks for the benchmarks (`tests/benches/sandbox.rs`): thin wrappers
//! over crate internals, so a benchmark can time one part of a run on its
//! own. Not an API: hidden from the docs, changes with the internals.

use crate::controller::Host;
use crate::plugin::loader::Plugin;
use crate::sandbox::hostcalls::{GuestError, RunInfo};

/// The sandbox part of one run, as [`crate::controller::commit::execute`] does it: a
/// fresh store holding a fresh [`RunState`], the plugin's limits applied,
/// instantiate from the plugin's pre-instantiated component, call `run`,
/// drop the store. Nothing else: no Started / Succeeded records, no commit,
/// no wait for the audit trail to be durable (the agent's own host calls
/// are still audited, as in a real run).
pub fn instantiate_and_call(
    host: &Host,
    plugin: &Plugin,
    info: RunInfo,
) -> wasmtime::Result<Result<Vec<u8>, GuestError>> {
    let (mut store, limited) =
        crate::sandbox::run::new_store(host.sandbox(), &plugin.program(), info);
    limited?;
    let agent = plugin.pre.instantiate(&mut store)?;
    agent.call_run(&mut store)
}
