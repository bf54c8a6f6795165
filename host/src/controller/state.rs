//! The runway state machine: one transition table, and the one function
//! that moves a runway ([`Lifecycle::enter`]), which refuses every move the
//! table does not hold.
//!
//! The waiting states come in a fixed order — dependencies, approval, time,
//! breaker, locks — and a runway skips those that do not apply to it (no `after`, no
//! approval asked, no earliest start), so each waiting state may be left
//! for any later one. An illegal move is a bug in the dispatcher: it is
//! returned as [`IllegalMove`], never applied.

use runway_audit::State;
use thiserror::Error;

use State::*;

/// Every legal move: from a state, the states it may go to.
pub const TABLE: &[(State, &[State])] = &[
    (
        Queued,
        &[
            WaitingDeps,
            WaitingApproval,
            WaitingTime,
            WaitingBreaker,
            WaitingLocks,
            Failed,
            Cancelled,
            Expired,
            Skipped,
            BudgetExhausted,
        ],
    ),
    // A condition (`when`) is read once the dependencies have ended:
    // false skips the runway.
    (
        WaitingDeps,
        &[
            WaitingApproval,
            WaitingTime,
            WaitingBreaker,
            WaitingLocks,
            Failed,
            Cancelled,
            Expired,
            Skipped,
            BudgetExhausted,
        ],
    ),
    (
        WaitingApproval,
        &[
            WaitingTime,
            WaitingBreaker,
            WaitingLocks,
            Rejected,
            Cancelled,
            Expired,
            BudgetExhausted,
        ],
    ),
    (
        WaitingTime,
        &[
            WaitingBreaker,
            WaitingLocks,
            Failed,
            Cancelled,
            Expired,
            BudgetExhausted,
        ],
    ),
    // An open breaker holds its agent's runways here (or fails them at
    // once, `on_open = "fail"`, from the state before).
    (
        WaitingBreaker,
        &[WaitingLocks, Failed, Cancelled, Expired, BudgetExhausted],
    ),
    (
        WaitingLocks,
        &[Cleared, Failed, Cancelled, Expired, BudgetExhausted],
    ),
    // A cleared runway whose agent left, or whose tokens failed, fails
    // before it takes off.
    (Cleared, &[Running, Failed, Cancelled]),
    (Running, &[Succeeded, Failed, TimedOut, Cancelled]),
    // Failed and timed-out attempts may retry.
    (Failed, &[Queued]),
    (TimedOut, &[Queued]),
    (Succeeded, &[]),
    (Cancelled, &[]),
    (Rejected, &[]),
    (Expired, &[]),
    (Skipped, &[]),
    (BudgetExhausted, &[]),
];

/// A move the table does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("illegal move of runway {runway}: {} → {}", from.name(), to.name())]
pub struct IllegalMove {
    pub runway: String,
    pub from: State,
    pub to: State,
}

/// Whether the table lets a runway go from `from` to `to`.
pub fn legal(from: State, to: State) -> bool {
    TABLE
        .iter()
        .find(|(f, _)| *f == from)
        .is_some_and(|(_, tos)| tos.contains(&to))
}

/// One runway's place in the machine.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: State,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { state: Queued }
    }
}

impl Lifecycle {
    pub fn state(&self) -> State {
        self.state
    }

    /// A runway the journal found in `state` (see `journal`).
    pub fn restored(state: State) -> Lifecycle {
        Lifecycle { state }
    }

    /// Moves to `to` if the table allows it.
    pub fn enter(&mut self, runway: &str, to: State) -> Result<(), IllegalMove> {
        if !legal(self.state, to) {
            return Err(IllegalMove {
                runway: runway.to_string(),
                from: self.state,
                to,
            });
        }
        self.state = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_state_once() {
        for state in State::ALL {
            let rows = TABLE.iter().filter(|(f, _)| *f == state).count();
            assert_eq!(rows, 1, "{}", state.name());
        }
    }

    #[test]
    fn final_states_have_no_way_out_and_the_rest_have_one() {
        for state in State::ALL {
            let out = State::ALL.iter().filter(|&&to| legal(state, to)).count();
            assert_eq!(out == 0, state.is_final(), "{}", state.name());
        }
    }

    #[test]
    fn waiting_states_only_go_forward() {
        let order = [
            WaitingDeps,
            WaitingApproval,
            WaitingTime,
            WaitingBreaker,
            WaitingLocks,
        ];
        for (i, from) in order.iter().enumerate() {
            for (j, to) in order.iter().enumerate() {
                assert_eq!(legal(*from, *to), j > i, "{} → {}", from.name(), to.name());
            }
        }
    }

    #[test]
    fn an_illegal_move_is_refused_and_changes_nothing() {
        let mut life = Lifecycle::default();
        life.enter("r", WaitingLocks).unwrap();
        let err = life.enter("r", Running).unwrap_err();
        assert_eq!(
            err.to_string(),
            "illegal move of runway r: WAITING_LOCKS → RUNNING"
        );
        assert_eq!(life.state(), WaitingLocks);
        // Nothing comes back from a final state, not even a retry.
        let mut done = Lifecycle { state: Succeeded };
        assert!(done.enter("r", Queued).is_err());
        // Only a person's rejection ends a runway waiting for approval.
        assert!(!legal(WaitingLocks, Rejected));
        assert!(legal(WaitingApproval, Rejected));
    }

    #[test]
    fn a_retry_goes_round_again() {
        let mut life = Lifecycle::default();
        for to in [
            WaitingLocks,
            Cleared,
            Running,
            TimedOut,
            Queued,
            WaitingLocks,
        ] {
            life.enter("r", to).unwrap();
        }
        assert_eq!(life.state(), WaitingLocks);
    }
}
