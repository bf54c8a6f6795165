//! Delegation trees as the controller keeps them: the joins parents wait
//! in, the delegations asked so far by key (a delegation asked again gets
//! its first child back), the runways of each tree, the waiting places
//! parents hold, the progress runs report — and when a join is over
//! ([`Join::over`]), a pure function of its children's states. Plain data;
//! filing a child is [`super::delegation`]'s, answering joins
//! [`super::joins`]'.
//!
//! Rules kept here and documented once:
//! - a join is over when its mode is met (`all`: every child ended; `any`:
//!   one ended; `first-success`: one succeeded, or all ended; `quorum(n)`:
//!   n succeeded, or too few are left to reach n), or at its deadline;
//! - a child never outlives the attempt of its parent that filed it: when
//!   that attempt ends, however it ends, its children still going are
//!   cancelled.

use std::collections::{HashMap, HashSet};

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::sandbox::hostcalls::{ChildResult, GuestError, JoinMode};

/// A parent's wait on its children.
pub(super) struct Join {
    pub children: Vec<usize>,
    pub mode: JoinMode,
    /// Answered then at the latest, with what the children have so far.
    pub until: Instant,
    pub reply: oneshot::Sender<Result<Vec<ChildResult>, GuestError>>,
}

/// How far a child got, as a join counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Going,
    Succeeded,
    /// Ended otherwise, with no retry coming.
    EndedBadly,
}

impl Join {
    /// Whether the join's mode is met by children standing as `standing`
    /// says (in the join's order).
    pub fn over(mode: JoinMode, standing: &[Standing]) -> bool {
        let succeeded = standing
            .iter()
            .filter(|s| **s == Standing::Succeeded)
            .count();
        let going = standing.iter().filter(|s| **s == Standing::Going).count();
        match mode {
            JoinMode::All => going == 0,
            JoinMode::Any => going < standing.len(),
            JoinMode::FirstSuccess => succeeded > 0 || going == 0,
            JoinMode::Quorum(n) => {
                let n = n as usize;
                succeeded >= n || succeeded + going < n
            }
        }
    }
}

/// What is left of a tree's budget (its root's `[delegate] tree_fuel`,
/// `tree_wall_secs`): every run below the root draws on it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    pub fuel_left: Option<u64>,
    pub until: Option<Instant>,
}

impl Budget {
    /// Why the tree may start nothing more, if it may not.
    pub fn spent(&self, now: Instant) -> Option<&'static str> {
        if self.fuel_left == Some(0) {
            return Some("its tree_fuel is used up");
        }
        if self.until.is_some_and(|t| t <= now) {
            return Some("its tree_wall_secs are over");
        }
        None
    }
}

/// A run's last progress report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub message: String,
}

#[derive(Default)]
pub(super) struct Families {
    /// Joins waiting, by parent.
    pub joins: HashMap<usize, Join>,
    /// (parent, key) → the child that delegation filed.
    pub keys: HashMap<(usize, String), usize>,
    /// Runways in each tree below its root, by root.
    pub descendants: HashMap<usize, u32>,
    /// Parents holding one of the host's waiting places (from their first
    /// delegation to their landing).
    pub places: HashSet<usize>,
    /// Children that ended since the joins were last looked at.
    pub ended: Vec<usize>,
    /// Runways whose attempt ended since their children were last looked
    /// at.
    pub landed: Vec<usize>,
    /// The last progress each run reported.
    pub progress: HashMap<usize, Progress>,
    /// Runway → the runway that took over from it (a hand-off).
    pub successors: HashMap<usize, usize>,
    /// Runs on a worker whose manifest has a heartbeat: when each last
    /// reported progress (or took off, or came back from a join).
    pub beats: HashMap<usize, Instant>,
    /// The budgets of trees whose root's grants set one, by root.
    pub budgets: HashMap<usize, Budget>,
    /// Fuel each run in the air took from its tree's budget.
    pub reserved: HashMap<usize, u64>,
}

impl Families {
    /// The earliest moment a join must be answered.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.joins.values().map(|j| j.until).min()
    }

    /// The mode as the WIT and the JOINED record name it.
    pub fn mode_name(mode: JoinMode) -> String {
        match mode {
            JoinMode::All => "all".into(),
            JoinMode::Any => "any".into(),
            JoinMode::FirstSuccess => "first-success".into(),
            JoinMode::Quorum(n) => format!("quorum({n})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Standing::{EndedBadly as Bad, Going, Succeeded as Ok};
    use super::*;

    #[test]
    fn joins_are_over_as_their_modes_say() {
        let cases: &[(JoinMode, &[Standing], bool)] = &[
            (JoinMode::All, &[Ok, Going], false),
            (JoinMode::All, &[Ok, Bad], true),
            (JoinMode::Any, &[Going, Going], false),
            (JoinMode::Any, &[Going, Bad], true),
            (JoinMode::FirstSuccess, &[Bad, Going], false),
            (JoinMode::FirstSuccess, &[Bad, Ok, Going], true),
            (JoinMode::FirstSuccess, &[Bad, Bad], true),
            (JoinMode::Quorum(2), &[Ok, Going, Going], false),
            (JoinMode::Quorum(2), &[Ok, Ok, Going], true),
            (JoinMode::Quorum(2), &[Ok, Bad, Bad], true),
            (JoinMode::Quorum(2), &[Ok, Bad, Going], false),
            (JoinMode::Quorum(0), &[Going], true),
        ];
        for (mode, standing, over) in cases {
            assert_eq!(Join::over(*mode, standing), *over, "{mode:?} {standing:?}");
        }
    }
}
