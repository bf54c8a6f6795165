//! `runway:agent/events`: the events a run publishes for triggers to
//! wait on. A publication is checked (a valid topic the run's grants
//! allow, a capped payload, at most so many per run) and audited like any
//! call, then staged with the run: it reaches the trail (a PUBLISHED
//! record) only when the run lands successfully, and is delivered only
//! when that attempt SUCCEEDED — a failed run publishes nothing.

use std::sync::Arc;

use runway_audit::Call;

use super::runway::agent::events::Host;
use super::{GuestError, NO_DATA, RunState, Target, digest_parts};
use crate::limits::{MAX_EVENT_PAYLOAD, MAX_EVENTS_BYTES, MAX_EVENTS_PER_RUN};
use crate::names;

/// The topics a plugin may publish to: names, or prefixes ending in `*`
/// (its grants' `[events] publish`). Empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics(Arc<[String]>);

impl Topics {
    pub fn new(patterns: Vec<String>) -> Topics {
        Topics(patterns.into())
    }

    /// Does it allow `topic`?
    pub fn allows(&self, topic: &str) -> bool {
        self.0.iter().any(|p| names::matches(p, topic))
    }
}

/// One event a run published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Publication {
    pub topic: String,
    pub payload: Vec<u8>,
}

/// What a run has published so far, and what it may.
#[derive(Debug, Default)]
pub(crate) struct RunEvents {
    pub topics: Topics,
    pub staged: Vec<Publication>,
    bytes: usize,
}

impl RunEvents {
    pub fn new(topics: Topics) -> RunEvents {
        RunEvents {
            topics,
            ..RunEvents::default()
        }
    }

    /// Stages `payload` on `topic` if the grants and caps allow it.
    fn stage(&mut self, topic: &str, payload: &[u8]) -> Result<(), GuestError> {
        names::check_topic(topic).map_err(|e| GuestError::Invalid(format!("publish: {e}")))?;
        if !self.topics.allows(topic) {
            return Err(GuestError::Denied(format!(
                "publish: topic {topic} is not in this agent's grants ([events] publish)"
            )));
        }
        if payload.len() > MAX_EVENT_PAYLOAD {
            return Err(GuestError::Limit(format!(
                "publish: payload of {} bytes is over the cap of {MAX_EVENT_PAYLOAD}",
                payload.len()
            )));
        }
        if self.staged.len() >= MAX_EVENTS_PER_RUN {
            return Err(GuestError::Limit(format!(
                "publish: a run publishes at most {MAX_EVENTS_PER_RUN} events"
            )));
        }
        if self.bytes + payload.len() > MAX_EVENTS_BYTES {
            return Err(GuestError::Limit(format!(
                "publish: a run publishes at most {MAX_EVENTS_BYTES} payload bytes in all"
            )));
        }
        self.bytes += payload.len();
        self.staged.push(Publication {
            topic: topic.to_string(),
            payload: payload.to_vec(),
        });
        Ok(())
    }
}

impl Host for RunState {
    fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), GuestError>> {
        let args = digest_parts(&[topic.as_bytes(), &payload]);
        let staged = self.events.stage(&topic, &payload);
        self.audited(Call::Publish, Target::default(), args, staged, |()| NO_DATA)
    }
}
