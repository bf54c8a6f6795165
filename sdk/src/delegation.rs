//! What a run asks of other agents: a [`Delegation`] (a child runway the
//! host files for it) and a [`Handoff`] (the agent that takes over when it
//! ends). Both are the WIT records of `runway:agent/orchestration`, built
//! with the methods here; their fields stay public for reading.
//!
//! Defaults, when a method is not called: the action `run` (a manifest's
//! default), empty input (read by the child as `{}`), no locks, the window
//! and retries the child's grants give, and the host's idempotency key
//! (this runway and the call's position among its delegations).

use std::time::Duration;

use serde::Serialize;

use crate::{Delegation, Error, Handoff, LockMode, LockRequest, RetryPolicy};

/// The action asked for unless [`Delegation::action`] or
/// [`Handoff::action`] says otherwise: a manifest's default.
const DEFAULT_ACTION: &str = "run";

/// The methods a [`Delegation`] and a [`Handoff`] share: the action, locks,
/// window and retries of the runway filed (`$who` in their docs).
macro_rules! runway_terms {
    ($who:literal) => {
        #[doc = concat!("The action ", $who, " is asked for.")]
        pub fn action(mut self, action: &str) -> Self {
            self.action = action.into();
            self
        }

        #[doc = concat!(
                    "A lock for ", $who, ", after those asked before. A dataset its parent ",
                    "holds (this run, for a child; this run's parent, for the agent taking ",
                    "over) is handed down, and the parent's calls there answer ",
                    "[`Error::LockLost`] until ", $who, " has ended. Any other is taken at ",
                    "once if free, or refused naming its holder."
                )]
        pub fn lock(mut self, dataset: &str, mode: LockMode) -> Self {
            let dataset = dataset.into();
            self.locks.push(LockRequest { dataset, mode });
            self
        }

        #[doc = concat!(
                    "The window of ", $who, ", when shorter than its grants' (rounded up ",
                    "to whole seconds)."
                )]
        pub fn window(mut self, window: Duration) -> Self {
            let started = u64::from(window.subsec_nanos() > 0);
            self.window_secs = Some(window.as_secs() + started);
            self
        }

        #[doc = concat!(
                    "Try ", $who, " `attempts` times in all (the first included), waiting ",
                    "`backoff` before the second attempt and twice as long before each next."
                )]
        pub fn retry(mut self, attempts: u32, backoff: Duration) -> Self {
            let backoff_ms = millis(backoff);
            self.retry = Some(RetryPolicy {
                attempts,
                backoff_ms,
            });
            self
        }
    };
}

impl Delegation {
    /// A child running `agent` (its action `run`, no input, no locks):
    ///
    /// ```
    /// # use runway_sdk::{Delegation, Error, LockMode};
    /// # use std::time::Duration;
    /// # fn f() -> Result<(), Error> {
    /// let shard = Delegation::to("scorer")
    ///     .action("score")
    ///     .input(&serde_json::json!({ "shard": 3 }))?
    ///     .lock("apps", LockMode::Shared)
    ///     .window(Duration::from_secs(60))
    ///     .retry(3, Duration::from_millis(500))
    ///     .key("shard-3");
    /// # Ok(()) }
    /// ```
    pub fn to(agent: &str) -> Self {
        Self {
            agent: agent.into(),
            action: DEFAULT_ACTION.into(),
            input: Vec::new(),
            locks: Vec::new(),
            window_secs: None,
            retry: None,
            key: None,
        }
    }

    /// The child's input: `value` as JSON, which the child reads with
    /// [`Context::input`](crate::Context::input). A value that does not
    /// serialize is [`Error::Invalid`] naming the agent.
    pub fn input<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, Error> {
        self.input = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("input for agent {}: {e}", self.agent)))?;
        Ok(self)
    }

    /// The child's input as exact bytes.
    pub fn raw_input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = input.into();
        self
    }

    /// The idempotency key: delegating again with the same key (in a retried
    /// attempt of this run too, after a crash) gives back the child filed
    /// the first time, and its result once it has one.
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.into());
        self
    }

    runway_terms!("the child");
}

impl Handoff {
    /// Hand the rest to `agent` (its action `run`, no locks); see
    /// [`Context::handoff`](crate::Context::handoff).
    pub fn to(agent: &str) -> Self {
        Self {
            agent: agent.into(),
            action: DEFAULT_ACTION.into(),
            input: None,
            locks: Vec::new(),
            window_secs: None,
            retry: None,
        }
    }

    /// The successor's input: `value` as JSON, instead of this run's
    /// output.
    pub fn input<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::Invalid(format!("input for agent {}: {e}", self.agent)))?;
        self.input = Some(bytes);
        Ok(self)
    }

    runway_terms!("the agent taking over");
}

/// `d` in whole milliseconds, `u64::MAX` past it.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegation_defaults_to_run_with_nothing() {
        let d = Delegation::to("scorer");
        assert_eq!((d.agent.as_str(), d.action.as_str()), ("scorer", "run"));
        assert!(d.input.is_empty() && d.locks.is_empty());
        assert_eq!((d.window_secs, d.retry, d.key), (None, None, None));
    }

    #[test]
    fn the_builder_fills_every_field() {
        let d = Delegation::to("scorer")
            .action("score")
            .input(&[1, 2])
            .unwrap()
            .lock("apps", LockMode::Exclusive)
            .lock("ref", LockMode::Shared)
            .window(Duration::from_millis(1500))
            .retry(3, Duration::from_millis(250))
            .key("shard-3");
        assert_eq!(d.input, b"[1,2]");
        let locks: Vec<_> = d.locks.iter().map(|l| (&*l.dataset, l.mode)).collect();
        assert_eq!(
            locks,
            [("apps", LockMode::Exclusive), ("ref", LockMode::Shared)]
        );
        assert_eq!(d.window_secs, Some(2), "a started second counts whole");
        assert_eq!(
            d.retry,
            Some(RetryPolicy {
                attempts: 3,
                backoff_ms: 250
            })
        );
        assert_eq!(d.key.as_deref(), Some("shard-3"));
        assert_eq!(Delegation::to("x").raw_input(*b"ab").input, b"ab");
    }

    #[test]
    fn input_that_does_not_serialize_names_the_agent() {
        let bad = std::collections::HashMap::from([((1, 2), 3)]);
        let e = Delegation::to("scorer").input(&bad).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.starts_with("input for agent scorer")),
            "{e}"
        );
    }

    #[test]
    fn a_handoff_is_built_the_same_way() {
        let h = Handoff::to("appeals")
            .action("review")
            .lock("cases", LockMode::Exclusive)
            .window(Duration::from_secs(30))
            .retry(2, Duration::from_secs(1));
        assert_eq!((h.agent.as_str(), h.action.as_str()), ("appeals", "review"));
        let cases = LockRequest {
            dataset: "cases".into(),
            mode: LockMode::Exclusive,
        };
        assert_eq!(h.locks, [cases]);
        assert_eq!(h.window_secs, Some(30));
        assert_eq!(h.retry.map(|r| r.backoff_ms), Some(1000));
        assert_eq!(Handoff::to("x").action, "run");
    }
}
