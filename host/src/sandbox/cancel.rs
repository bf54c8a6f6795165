//! A run's stop switch: set once — by a person's cancel, or by the host
//! stopping past its grace — and seen by the run at its next epoch tick
//! (it traps), or by the landing stage before it commits (nothing lands).
//!
//! The two are kept apart because they end differently: a person's cancel
//! is final (CANCELLED); a run the host's stop cut short FAILS like one a
//! crash cut short, and is retried by its policy.

use std::sync::{Arc, OnceLock};

use super::failure::RunFailure;

/// Why a run was stopped from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A person (or its parent runway) cancelled it, in this name, and
    /// why when it was not a person's own choice.
    By(String, Option<String>),
    /// The host stopped and its grace for runs in the air was over.
    HostStopping,
    /// The run reported no progress for its manifest's heartbeat.
    Silent(std::time::Duration),
}

impl Stop {
    /// How the run ends.
    pub fn failure(&self) -> RunFailure {
        match self {
            Stop::By(by, why) => RunFailure::Cancelled {
                by: by.clone(),
                why: why.clone(),
            },
            Stop::HostStopping => RunFailure::HostStopped,
            Stop::Silent(beat) => RunFailure::Silent {
                heartbeat_ms: beat.as_millis() as u64,
            },
        }
    }
}

/// Shared between the dispatcher, the run's store and the landing stage.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<OnceLock<Stop>>);

impl Cancel {
    /// Cancels the run in the name of `by`; the first stop given stays.
    pub fn cancel(&self, by: &str) {
        let _ = self.0.set(Stop::By(by.to_string(), None));
    }

    /// Cancels the run in the name of `by` (its parent), saying `why`.
    pub fn cancel_because(&self, by: &str, why: &str) {
        let _ = self.0.set(Stop::By(by.to_string(), Some(why.to_string())));
    }

    /// Stops the run: it reported no progress for `heartbeat`.
    pub fn silent(&self, heartbeat: std::time::Duration) {
        let _ = self.0.set(Stop::Silent(heartbeat));
    }

    /// Stops the run because the host is stopping.
    pub fn host_stopping(&self) {
        let _ = self.0.set(Stop::HostStopping);
    }

    /// Why it was stopped, if it was.
    pub fn stopped(&self) -> Option<&Stop> {
        self.0.get()
    }
}

/// The error a stopped run traps with.
#[derive(Debug, thiserror::Error)]
#[error("stopped: {}", .0.failure())]
pub struct Cancelled(pub Stop);
