//! The epoch ticker: advances the engine's epoch every [`TICK`] while runs
//! are alive, and sleeps without a single wake-up while none is, so an idle
//! host costs no CPU.
//!
//! Every run holds an [`Awake`] for as long as its store lives. Ticks follow
//! the clock, not a count of sleeps, so a ticker that was late catches up
//! and the epoch never lags wall time while anyone is watching it; after an
//! idle spell it starts counting afresh (no run had a deadline meanwhile).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use wasmtime::Engine;

use crate::limits::TICK;

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    alive: usize,
    stop: bool,
    /// Epoch increments so far (what the tests watch).
    ticks: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The ticker thread of one engine; stopped and joined when dropped.
pub(crate) struct Ticker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A handle runs use to keep the epoch ticking.
#[derive(Clone)]
pub struct EpochClock(Arc<Shared>);

/// Held by a live run: while any is held, the epoch ticks.
pub struct Awake(Arc<Shared>);

impl Ticker {
    pub(crate) fn start(engine: Engine) -> std::io::Result<Ticker> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("runway-epoch".into())
            .spawn({
                let shared = shared.clone();
                move || tick(&engine, &shared)
            })?;
        Ok(Ticker {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn clock(&self) -> EpochClock {
        EpochClock(self.shared.clone())
    }
}

fn tick(engine: &Engine, shared: &Shared) {
    loop {
        {
            let mut state = shared.lock();
            while state.alive == 0 && !state.stop {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.stop {
                return;
            }
        }
        let start = Instant::now();
        let mut ticks = 0u128;
        loop {
            std::thread::sleep(TICK);
            let due = start.elapsed().as_nanos() / TICK.as_nanos();
            let behind = due - ticks;
            for _ in 0..behind {
                engine.increment_epoch();
            }
            ticks = due;
            let mut state = shared.lock();
            state.ticks += behind as u64;
            if state.stop {
                return;
            }
            if state.alive == 0 {
                break;
            }
        }
    }
}

impl EpochClock {
    /// Keeps the epoch ticking until the returned guard is dropped.
    pub fn hold(&self) -> Awake {
        let mut state = self.0.lock();
        state.alive += 1;
        if state.alive == 1 {
            self.0.wake.notify_one();
        }
        Awake(self.0.clone())
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        self.0.lock().alive -= 1;
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(ticker: &Ticker) -> u64 {
        ticker.shared.lock().ticks
    }

    #[test]
    fn ticks_only_while_a_run_is_alive() {
        let engine = Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap();
        let ticker = Ticker::start(engine).unwrap();
        std::thread::sleep(TICK * 10);
        assert_eq!(ticks(&ticker), 0, "ticked with no run alive");
        let awake = ticker.clock().hold();
        let start = Instant::now();
        while ticks(&ticker) == 0 {
            assert!(start.elapsed() < TICK * 1000, "never ticked");
            std::thread::sleep(TICK);
        }
        drop(awake);
        std::thread::sleep(TICK * 5);
        let after = ticks(&ticker);
        std::thread::sleep(TICK * 10);
        assert_eq!(ticks(&ticker), after, "went on ticking after the last run");
    }
}
