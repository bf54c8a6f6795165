//! Events (WIT `events`, since 0.1.3): [`Context::publish`] puts an event
//! on a topic, for the triggers that wait on it (`on = { topic = ... }`
//! in a plan). The event is delivered only when this run succeeds; a run
//! that fails publishes nothing.

use serde::Serialize;

use crate::{Context, Error, host};

impl Context {
    /// Publishes `payload` on `topic` (a topic this agent's grants allow
    /// under `[events] publish`; at most 64 KiB). Delivered when the run
    /// succeeds, with its writes.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        host::publish(topic, payload)
    }

    /// [`publish`](Self::publish) of `value` as JSON.
    pub fn publish_json<T: Serialize>(&self, topic: &str, value: &T) -> Result<(), Error> {
        let payload = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("publish: payload is not JSON: {e}")))?;
        self.publish(topic, &payload)
    }
}
