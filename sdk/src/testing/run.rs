//! [`Run`]: what one run on the in-memory host did — its output or error,
//! its log and progress, the children it filed and how they ended, and the
//! handoff it made, with the run of the agent that took over.

use serde::de::DeserializeOwned;

use crate::bindings::runway::agent::log::Level;
use crate::{ChildResult, Error, Handoff};

/// What one run did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's output (JSON bytes) or the error that failed it.
    pub output: Result<Vec<u8>, Error>,
    /// Messages the run logged, in order.
    pub logs: Vec<(Level, String)>,
    pub(super) progress: Vec<(u64, u64, String)>,
    pub(super) published: Vec<(String, Vec<u8>)>,
    pub(super) children: Vec<ChildResult>,
    pub(super) handoff: Option<Handoff>,
    pub(super) successor: Option<Box<Run>>,
}

impl Run {
    /// The output decoded from JSON; panics, naming the error, if the run
    /// failed.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match &self.output {
            Ok(bytes) => serde_json::from_slice(bytes).expect("output is the JSON expected"),
            Err(e) => panic!("the run failed: {e}"),
        }
    }

    /// The error that failed the run; panics if it succeeded.
    pub fn error(&self) -> &Error {
        match &self.output {
            Ok(bytes) => panic!("the run succeeded with {}", String::from_utf8_lossy(bytes)),
            Err(e) => e,
        }
    }

    /// The logged messages, without their levels.
    pub fn messages(&self) -> Vec<&str> {
        self.logs.iter().map(|(_, m)| m.as_str()).collect()
    }

    /// What the run reported with [`Context::progress`](crate::Context::progress),
    /// in order: `(done, total, message)`.
    pub fn progress(&self) -> &[(u64, u64, String)] {
        &self.progress
    }

    /// The events the run published with
    /// [`Context::publish`](crate::Context::publish), in order:
    /// `(topic, payload)` — none when the run failed (a failed run
    /// delivers nothing).
    pub fn published(&self) -> &[(String, Vec<u8>)] {
        &self.published
    }

    /// Every child the run filed, in order, as it stood when the run ended:
    /// runway id (`test-1.1`, `test-1.2`, ...), agent, state, and output or
    /// reason. A child never joined is still `waiting`.
    pub fn children(&self) -> &[ChildResult] {
        &self.children
    }

    /// The handoff the run made, if it succeeded (a run that fails hands
    /// nothing off).
    pub fn handoff(&self) -> Option<&Handoff> {
        self.handoff.as_ref()
    }

    /// The run of the agent that took over after the handoff, when the test
    /// registered that agent (its input is this run's output).
    pub fn successor(&self) -> Option<&Run> {
        self.successor.as_deref()
    }
}
