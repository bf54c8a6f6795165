//! The error an agent can handle: the WIT `error` variant of
//! `runway:agent/types`, with the same cases under the same names.
//!
//! Host faults are traps, never these. An agent returns this type from
//! [`Agent::run`](crate::Agent::run) to fail its run, so the host records the
//! case and message.

use std::fmt;

/// An error the agent can handle; mirrors the WIT `error` variant case by case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The run holds no lock, or not a strong enough one, for this call.
    Denied(String),
    /// The run's lock was lost or fenced off by a newer holder.
    LockLost(String),
    /// The dataset or key does not exist.
    NotFound(String),
    /// A name or argument is malformed (e.g. `..` in a key), or a record or
    /// input is not the JSON the agent expected.
    Invalid(String),
    /// A size or count limit was hit.
    Limit(String),
}

impl Error {
    /// The message carried by any case.
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::LockLost(m)
            | Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Limit(m) => m,
        }
    }

    /// The same case, its message prefixed with `what` and `: `: where an
    /// error from one of several calls came from.
    pub(crate) fn within(self, what: &str) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::Denied(m) => Error::Denied(wrap(m)),
            Error::LockLost(m) => Error::LockLost(wrap(m)),
            Error::NotFound(m) => Error::NotFound(wrap(m)),
            Error::Invalid(m) => Error::Invalid(wrap(m)),
            Error::Limit(m) => Error::Limit(wrap(m)),
        }
    }

    /// The WIT name of the case: `denied`, `lock-lost`, `not-found`,
    /// `invalid` or `limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::LockLost(_) => "lock-lost",
            Error::NotFound(_) => "not-found",
            Error::Invalid(_) => "invalid",
            Error::Limit(_) => "limit",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

/// Malformed JSON (input, record or output) is [`Error::Invalid`].
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_wit_case() {
        let e = Error::LockLost("fenced by token 7".into());
        assert_eq!(e.to_string(), "lock-lost: fenced by token 7");
    }

    #[test]
    fn within_keeps_the_case() {
        let e = Error::Denied("no grant".into()).within("delegation 2 of 3");
        assert_eq!(e, Error::Denied("delegation 2 of 3: no grant".into()));
    }

    #[test]
    fn json_errors_are_invalid() {
        let e: Error = serde_json::from_slice::<u32>(b"nope").unwrap_err().into();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
    }
}
