//! A delegated child as the parent sees it: a [`Child`] (its runway id, as
//! `delegate` gives it back) and a [`ChildResult`] (how a `join` found it:
//! the WIT record, with helpers to read it), in a [`ChildState`].

use std::fmt;

use serde::de::DeserializeOwned;

use crate::{ChildResult, ChildState, Error};

/// A child runway this run filed, by its runway id; pass it to
/// [`Context::join`](crate::Context::join).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Child(pub(crate) String);

impl Child {
    /// The child's runway id.
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ChildState {
    /// The WIT name of the state: `waiting`, `running`, `succeeded`,
    /// `failed`, `timed-out`, `cancelled`, `rejected` or `expired`.
    pub fn name(&self) -> &'static str {
        match self {
            ChildState::Waiting => "waiting",
            ChildState::Running => "running",
            ChildState::Succeeded => "succeeded",
            ChildState::Failed => "failed",
            ChildState::TimedOut => "timed-out",
            ChildState::Cancelled => "cancelled",
            ChildState::Rejected => "rejected",
            ChildState::Expired => "expired",
        }
    }

    /// Whether the child has ended (any state but `waiting` and `running`):
    /// after a join's timeout, those that have not are still going.
    pub fn ended(&self) -> bool {
        !matches!(self, ChildState::Waiting | ChildState::Running)
    }
}

impl fmt::Display for ChildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Most characters of a child's reason quoted in an error about it.
const REASON_CHARS: usize = 200;

impl ChildResult {
    /// Whether the child succeeded (its output is then there).
    pub fn succeeded(&self) -> bool {
        self.state == ChildState::Succeeded
    }

    /// The child's output bytes, when it succeeded.
    pub fn output(&self) -> Option<&[u8]> {
        self.output.as_deref()
    }

    /// Why the child did not succeed, when it ended otherwise.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The child's output decoded from JSON. [`Error::Invalid`] naming the
    /// child when it has no output (it did not succeed: the message says
    /// how it ended) or the output is not the JSON expected.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let Some(output) = &self.output else {
            return Err(Error::Invalid(format!("no output: {}", self.summary())));
        };
        serde_json::from_slice(output).map_err(|e| {
            let (runway, agent) = (&self.runway, &self.agent);
            Error::Invalid(format!("output of child {runway} ({agent}): {e}"))
        })
    }

    /// `child test-1.2 (scorer): failed: REASON`, the reason cut at
    /// [`REASON_CHARS`] characters: for errors about children.
    pub(crate) fn summary(&self) -> String {
        let (runway, agent, state) = (&self.runway, &self.agent, self.state);
        let mut line = format!("child {runway} ({agent}): {state}");
        if let Some(reason) = &self.reason {
            line.push_str(": ");
            line.extend(reason.chars().take(REASON_CHARS));
            if reason.chars().nth(REASON_CHARS).is_some() {
                line.push_str("...");
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(state: ChildState, output: Option<&[u8]>, reason: Option<&str>) -> ChildResult {
        ChildResult {
            runway: "test-1.2".into(),
            agent: "scorer".into(),
            state,
            output: output.map(<[u8]>::to_vec),
            reason: reason.map(String::from),
        }
    }

    #[test]
    fn a_succeeded_child_decodes_its_output() {
        let r = result(ChildState::Succeeded, Some(b"[1,2]"), None);
        assert!(r.succeeded());
        assert_eq!(r.json::<Vec<u32>>().unwrap(), [1, 2]);
        assert_eq!(r.output(), Some(&b"[1,2]"[..]));
        assert_eq!(r.reason(), None);
    }

    #[test]
    fn output_that_does_not_decode_names_the_child() {
        let e = result(ChildState::Succeeded, Some(b"\"x\""), None)
            .json::<u32>()
            .unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.starts_with("output of child test-1.2 (scorer): ")),
            "{e}"
        );
    }

    #[test]
    fn a_failed_child_has_no_json_and_says_why() {
        let r = result(
            ChildState::Failed,
            None,
            Some("agent returned error: limit: x"),
        );
        assert!(!r.succeeded());
        let e = r.json::<u32>().unwrap_err();
        assert_eq!(
            e,
            Error::Invalid(
                "no output: child test-1.2 (scorer): failed: agent returned error: limit: x".into()
            )
        );
    }

    #[test]
    fn a_long_reason_is_cut() {
        let long = "é".repeat(REASON_CHARS + 5);
        let line = result(ChildState::TimedOut, None, Some(&long)).summary();
        assert!(line.starts_with("child test-1.2 (scorer): timed-out: é"));
        assert!(line.ends_with("é..."));
        assert_eq!(line.chars().filter(|&c| c == 'é').count(), REASON_CHARS);
    }

    #[test]
    fn states_have_their_wit_names() {
        assert_eq!(ChildState::TimedOut.to_string(), "timed-out");
        assert!(ChildState::Cancelled.ended() && !ChildState::Waiting.ended());
        assert!(!ChildState::Running.ended());
    }
}
