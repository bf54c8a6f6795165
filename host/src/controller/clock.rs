//! The wall clock the dispatcher schedules by (`earliest_start`,
//! `expires`), behind one trait so tests move time by hand instead of
//! sleeping. Windows and backoff use the monotonic clock (tokio's), which
//! no wall-clock jump can move.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

/// A wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// Resolves when the clock was moved by hand (never, for the system's).
    fn moved(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn moved(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}

/// A clock that stands still until told to move (for tests).
pub struct ManualClock {
    now: Mutex<Timestamp>,
    moved: Notify,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
            moved: Notify::new(),
        }
    }

    /// Moves the clock by `by` (backwards too) and wakes whoever waits.
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now
            .saturating_add(by)
            .expect("a signed duration never fails");
        drop(now);
        // Whoever waits now, and the next to wait if nobody does (the
        // controller may be mid-step): a move is never missed.
        self.moved.notify_waiters();
        self.moved.notify_one();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn moved(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.moved.notified())
    }
}
