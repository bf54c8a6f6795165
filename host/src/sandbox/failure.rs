//! Why a run failed, as a type: one variant per cause, its words in one
//! `Display`. Every text that comes from the guest or from wasmtime is cut
//! to [`MAX_REASON`] when the failure is made, so no failure can grow an
//! audit record or a report without bound.
//!
//! A [`HostFault`] is the host's own failure during a host call (the
//! dataset store or the audit trail failed): never a WIT error the guest
//! could mistake for `not-found` or `denied`, but a trap that carries the
//! fault as a typed error, found again by downcasting when the run is
//! judged (`trap.rs`).

use std::sync::Arc;

use runway_audit::AuditError;
use thiserror::Error;

use crate::store::StoreError;

use crate::limits::{MAX_REASON, MAX_TRANSFER};

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum RunFailure {
    #[error(
        "memory limit exceeded: the run's memories and tables together would need \
         {wanted_mib} MiB, over its cap of {cap_mib} MiB"
    )]
    Memory { wanted_mib: u64, cap_mib: u64 },
    #[error("CPU budget exhausted: fuel {fuel} used up")]
    Fuel { fuel: u64 },
    #[error("timed out: wall-clock window of {window_secs} s exceeded")]
    TimedOut { window_secs: u64 },
    #[error("timed out: the commit did not fit in the wall-clock window of {window_secs} s")]
    CommitTimedOut { window_secs: u64 },
    #[error("limit: a host call carried more than {MAX_TRANSFER} bytes ({detail})")]
    Transfer { detail: String },
    /// A trap: its cause (trap code or root error) and where in the guest.
    #[error("agent trapped: {cause}{place}")]
    Trapped { cause: String, place: String },
    #[error("output of {len} bytes exceeds the {max}-byte limit")]
    Output { len: usize, max: usize },
    #[error("output flood: stdout/stderr exceeded {max} bytes ({then})")]
    Flood { max: usize, then: Box<RunFailure> },
    /// The agent's own error value, `kind: message`.
    #[error("agent returned error: {0}")]
    Agent(String),
    /// The store transaction failed (I/O, a full disk): nothing landed.
    #[error("commit failed: {0}")]
    Commit(String),
    /// A newer holder of the lock committed to `dataset` first: this run's
    /// token is fenced off and nothing of it landed.
    #[error(
        "commit fenced off: token {token} on dataset {dataset} is below its fence {fence} \
         (a newer holder already committed); nothing landed"
    )]
    Fenced {
        dataset: String,
        token: u64,
        fence: u64,
    },
    /// A person (or the run's parent) cancelled the run; its staged writes
    /// were dropped.
    #[error("cancelled by {by}{}", .why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    Cancelled { by: String, why: Option<String> },
    /// The run reported no progress for its manifest's heartbeat.
    #[error("no progress reported for {heartbeat_ms} ms (the manifest's heartbeat)")]
    Silent { heartbeat_ms: u64 },
    /// The host stopped while the run was in the air and its grace was
    /// over: settled like a run a crash cut short (FAILED, retried by its
    /// policy), never final as a person's cancel is.
    #[error("host stopped during the run; nothing was committed")]
    HostStopped,
    /// The host code running the run panicked; the host itself goes on.
    #[error("host fault during run: {0}")]
    HostFault(String),
    /// The host flying the run (a crew, on a shared database) stopped
    /// beating or gave the run up: settled like a crash.
    #[error("host {host} lost during the run; nothing was committed")]
    HostLost { host: String },
}

/// The host's own failure during a host call: carried through the trap it
/// causes as a typed error, so the run fails naming it and the host goes on.
#[derive(Debug, Clone, Error)]
pub enum HostFault {
    /// The dataset store failed under a `datasets` call.
    #[error("{call} on {dataset}: the dataset store failed: {source}")]
    Store {
        call: &'static str,
        dataset: String,
        source: Arc<StoreError>,
    },
    /// The audit trail could not take a call's record.
    #[error("the audit trail failed: {0}")]
    Audit(Arc<AuditError>),
    /// The controller went away while the run waited for its answer.
    #[error("the controller stopped while the run waited on it")]
    Controller,
}

impl HostFault {
    /// The store failed under `call` on `dataset`.
    pub fn store(call: &'static str, dataset: &str, source: StoreError) -> HostFault {
        HostFault::Store {
            call,
            dataset: dataset.to_string(),
            source: Arc::new(source),
        }
    }
}

impl RunFailure {
    /// A host fault, its text cut to size.
    pub fn host_fault(fault: &HostFault) -> RunFailure {
        RunFailure::HostFault(cap_text(&fault.to_string(), MAX_REASON - 30))
    }

    /// How a store commit that did not land ends the run: fenced off, out
    /// of its window, or the store failed.
    pub fn commit(error: StoreError, window_secs: u64) -> RunFailure {
        match error {
            StoreError::Fenced {
                dataset,
                token,
                fence,
            } => RunFailure::Fenced {
                dataset,
                token,
                fence,
            },
            StoreError::PastDeadline => RunFailure::CommitTimedOut { window_secs },
            other => RunFailure::Commit(cap_text(&other.to_string(), MAX_REASON - 30)),
        }
    }

    /// The agent's error, its text cut to size.
    pub fn agent(described: &str) -> RunFailure {
        RunFailure::Agent(cap_text(described, MAX_REASON - 30))
    }

    /// A trap with its cause and place, cut to size.
    pub fn trapped(cause: &str, place: &str) -> RunFailure {
        RunFailure::Trapped {
            cause: cap_text(cause, MAX_REASON / 2),
            place: cap_text(place, MAX_REASON / 2 - 30),
        }
    }

    /// wasmtime's refusal of an oversized transfer.
    pub fn transfer(detail: &str) -> RunFailure {
        RunFailure::Transfer {
            detail: cap_text(detail, MAX_REASON / 2),
        }
    }
}

/// `text` cut to at most `max` bytes on a char boundary, with a marker
/// saying how much was cut.
pub fn cap_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …[{} more bytes]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_on_a_char_boundary() {
        assert_eq!(cap_text("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = cap_text(&long, 100);
        assert!(cut.len() <= 100, "{}", cut.len());
        assert!(cut.ends_with("more bytes]"), "{cut}");
    }

    #[test]
    fn no_failure_grows_past_the_reason_cap() {
        let huge = "\u{1b}[2J".repeat(100_000);
        for failure in [
            RunFailure::agent(&huge),
            RunFailure::trapped(&huge, &huge),
            RunFailure::transfer(&huge),
        ] {
            assert!(failure.to_string().len() <= MAX_REASON, "{failure:?}");
        }
    }
}
