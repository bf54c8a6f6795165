//! `wasi:clocks/monotonic-clock`, bounded by the run's window and its stop
//! switch.
//!
//! A guest blocked in a WASI wait (Rust's `std::thread::sleep` subscribes to
//! the monotonic clock and blocks on the pollable) runs host code, where the
//! epoch deadline cannot fire. So every clock subscription is cut at the
//! run's deadline (plus two ticks, so the epoch has passed by then), and
//! ends within a tick of a cancel or a host stop: the wait ends on time and
//! the guest traps at its next function entry or loop back-edge (`Interrupt`,
//! or stopped). These definitions shadow wasmtime-wasi's own in
//! the linker; `now` and `resolution` are passed through unchanged. The
//! clock's other pollables (streams on stdio) never block: stdin is empty
//! and stdout/stderr are in-memory pipes.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable};

use super::RunState;
use crate::limits::TICK;
use crate::sandbox::cancel::Cancel;

/// The monotonic clock of one run: WASI's, with waits cut at `deadline`
/// and at a stop.
pub(crate) struct BoundedClock<'a> {
    clocks: WasiClocksCtxView<'a>,
    deadline: Instant,
    cancel: &'a Cancel,
}

/// One wait of a run: over at `until`, or within a tick of the run being
/// stopped.
struct Wait {
    until: tokio::time::Instant,
    cancel: Cancel,
}

impl Pollable for Wait {
    // `async fn ready(&mut self)` as `#[async_trait]` spells it.
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            loop {
                let now = tokio::time::Instant::now();
                if now >= self.until || self.cancel.stopped().is_some() {
                    return;
                }
                tokio::time::sleep((self.until - now).min(TICK)).await;
            }
        })
    }
}

impl BoundedClock<'_> {
    /// `wanted`, or less if the run's window ends sooner.
    fn bound(&self, wanted: Duration) -> Duration {
        let left = self.deadline.saturating_duration_since(Instant::now()) + 2 * TICK;
        wanted.min(left)
    }
}

impl monotonic_clock::Host for BoundedClock<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        self.clocks.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        self.clocks.resolution()
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = self.clocks.now()?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(
        &mut self,
        nanos: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let bounded = self.bound(Duration::from_nanos(nanos));
        let wait = Wait {
            until: tokio::time::Instant::now() + bounded,
            cancel: self.cancel.clone(),
        };
        let wait = self.clocks.table.push(wait)?;
        wasmtime_wasi::p2::subscribe(self.clocks.table, wait)
    }
}

struct Bounded;

impl HasData for Bounded {
    type Data<'a> = BoundedClock<'a>;
}

/// Replaces WASI's monotonic clock in `linker` with the bounded one.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = monotonic_clock::add_to_linker::<RunState, Bounded>(linker, |state| BoundedClock {
        deadline: state.bounds.deadline,
        cancel: &state.bounds.cancel,
        clocks: WasiClocksCtxView {
            ctx: state.wasi.clocks(),
            table: &mut state.table,
        },
    });
    linker.allow_shadowing(false);
    added
}
