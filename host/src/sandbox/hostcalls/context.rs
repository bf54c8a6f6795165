//! `runway:agent/context`: who and what the running agent is.

use runway_audit::Call;

use super::runway::agent::context::Host;
use super::{GuestError, RunInfo, RunState, Target, digest_parts};

impl Host for RunState {
    fn info(&mut self) -> wasmtime::Result<RunInfo> {
        let info = self.info.clone();
        let input = digest_parts(&[&info.input]);
        let target = Target::default();
        let result = self.audited(Call::Info, target, input, Ok::<_, GuestError>(()), |_| {
            input
        })?;
        debug_assert!(result.is_ok());
        Ok(info)
    }
}
