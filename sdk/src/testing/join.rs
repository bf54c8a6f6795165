//! A join, natively: the children joined run one at a time, in the order
//! asked, when a join needs them, and [`next`] says from their states what
//! a join in each mode does next:
//!
//! - `all`: run every child still waiting;
//! - `any`: done once one has ended, else run the first waiting;
//! - `first-success`: run children until one succeeds, then cancel those
//!   still waiting (they never run);
//! - `quorum(n)`: run children until `n` have succeeded, or too few of
//!   those left can make it.
//!
//! Children a join leaves waiting (`any`, `quorum`) run when joined again,
//! or never. A join's timeout is not kept natively: nothing runs
//! concurrently, so every child run to its end.

use crate::{ChildState, JoinMode};

/// What a join does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Run the child at this index of those asked.
    Run(usize),
    /// Cancel every child still waiting: one succeeded (`first-success`).
    CancelWaiting,
    /// Give back every child's state.
    Done,
}

/// The next step of a join in `mode` over children in `states` (in the
/// order asked).
pub(super) fn next(mode: JoinMode, states: &[ChildState]) -> Step {
    let waiting = states.iter().position(|s| *s == ChildState::Waiting);
    let succeeded = states
        .iter()
        .filter(|s| **s == ChildState::Succeeded)
        .count();
    let run_next = || waiting.map_or(Step::Done, Step::Run);
    match mode {
        JoinMode::All => run_next(),
        JoinMode::Any if states.iter().any(ChildState::ended) => Step::Done,
        JoinMode::Any => run_next(),
        JoinMode::FirstSuccess if succeeded == 0 => run_next(),
        JoinMode::FirstSuccess if waiting.is_some() => Step::CancelWaiting,
        JoinMode::FirstSuccess => Step::Done,
        JoinMode::Quorum(n) => {
            let left = states.iter().filter(|s| **s == ChildState::Waiting).count();
            let n = n as usize;
            if succeeded >= n || succeeded + left < n {
                Step::Done
            } else {
                run_next()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChildState::{Cancelled, Failed, Succeeded, Waiting};

    #[test]
    fn all_runs_every_waiting_child_in_order() {
        assert_eq!(
            next(JoinMode::All, &[Failed, Waiting, Waiting]),
            Step::Run(1)
        );
        assert_eq!(next(JoinMode::All, &[Failed, Succeeded]), Step::Done);
        assert_eq!(next(JoinMode::All, &[]), Step::Done);
    }

    #[test]
    fn any_stops_at_the_first_ended() {
        assert_eq!(next(JoinMode::Any, &[Waiting, Waiting]), Step::Run(0));
        assert_eq!(next(JoinMode::Any, &[Waiting, Failed]), Step::Done);
    }

    #[test]
    fn first_success_cancels_the_rest_after_a_win() {
        let mode = JoinMode::FirstSuccess;
        assert_eq!(next(mode, &[Failed, Waiting, Waiting]), Step::Run(1));
        assert_eq!(
            next(mode, &[Failed, Succeeded, Waiting]),
            Step::CancelWaiting
        );
        assert_eq!(next(mode, &[Failed, Succeeded, Cancelled]), Step::Done);
        assert_eq!(next(mode, &[Failed, Failed]), Step::Done);
    }

    #[test]
    fn quorum_stops_when_met_or_out_of_reach() {
        let mode = JoinMode::Quorum(2);
        assert_eq!(next(mode, &[Succeeded, Waiting, Waiting]), Step::Run(1));
        assert_eq!(next(mode, &[Succeeded, Succeeded, Waiting]), Step::Done);
        assert_eq!(
            next(mode, &[Failed, Failed, Waiting]),
            Step::Done,
            "out of reach"
        );
        assert_eq!(next(mode, &[Failed, Waiting, Waiting]), Step::Run(1));
    }
}
