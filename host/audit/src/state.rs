//! The states a runway moves through, as the audit trail names them (the
//! controller's transition table, `controller/state.rs` in the host, says
//! which moves are legal).
//!
//! QUEUED → WAITING_DEPS → WAITING_APPROVAL → WAITING_TIME →
//! WAITING_BREAKER → WAITING_LOCKS → CLEARED → RUNNING → SUCCEEDED | FAILED
//! | TIMED_OUT | CANCELLED | REJECTED | EXPIRED | SKIPPED |
//! BUDGET_EXHAUSTED; a retry goes back to QUEUED.

use serde::{Deserialize, Serialize};

use crate::codec::wire_units;

wire_units! {
    /// Where a runway is in its life. Postcard encodes the variant index, so
    /// new states go at the end.
    #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum State {
        Queued,
        WaitingDeps,
        WaitingApproval,
        WaitingTime,
        WaitingLocks,
        Cleared,
        Running,
        Succeeded,
        Failed,
        TimedOut,
        Cancelled,
        Rejected,
        Expired,
        /// Its condition (`when`) was false: it never ran, and its
        /// dependents treat it as done with no output.
        Skipped,
        /// Its agent's circuit breaker is open: it waits for the breaker to
        /// close (or for the one probe a half-open breaker lets through).
        WaitingBreaker,
        /// Its plan's budget was spent before it started.
        BudgetExhausted,
    }
}

impl State {
    /// Upper-case name, as timelines and reports show it.
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "QUEUED",
            State::WaitingDeps => "WAITING_DEPS",
            State::WaitingApproval => "WAITING_APPROVAL",
            State::WaitingTime => "WAITING_TIME",
            State::WaitingLocks => "WAITING_LOCKS",
            State::Cleared => "CLEARED",
            State::Running => "RUNNING",
            State::Succeeded => "SUCCEEDED",
            State::Failed => "FAILED",
            State::TimedOut => "TIMED_OUT",
            State::Cancelled => "CANCELLED",
            State::Rejected => "REJECTED",
            State::Expired => "EXPIRED",
            State::Skipped => "SKIPPED",
            State::WaitingBreaker => "WAITING_BREAKER",
            State::BudgetExhausted => "BUDGET_EXHAUSTED",
        }
    }

    /// A state nothing leaves (FAILED and TIMED_OUT are left only by a
    /// retry).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Succeeded
                | State::Cancelled
                | State::Rejected
                | State::Expired
                | State::Skipped
                | State::BudgetExhausted
        )
    }
}
