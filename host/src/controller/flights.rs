//! Runs in the air: the channels clearances and landings come back on, and
//! the runs handed to workers. Plain plumbing; take-off and landing are
//! [`super::takeoff`]'s and [`super::landed`]'s.

use std::collections::HashMap;

use runway_audit::AuditError;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::tower::Clearance;
use crate::sandbox::{LandingError, RunReport};

/// How a run landed: (runway, report), from the landing stage.
pub(super) type Landing = (usize, Result<RunReport, LandingError>);

pub(super) struct Flights {
    /// Where the tower sends this controller's clearances.
    pub clear_tx: mpsc::UnboundedSender<Clearance>,
    pub clearances: mpsc::UnboundedReceiver<Clearance>,
    pub landed_tx: mpsc::UnboundedSender<Landing>,
    pub landed: mpsc::UnboundedReceiver<Landing>,
    /// Runs on a worker: each hands its run to the landing stage.
    pub running: JoinSet<Result<(), AuditError>>,
    /// Worker task → its runway.
    pub tasks: HashMap<tokio::task::Id, usize>,
    /// Runways taken off and not yet landed.
    pub airborne: usize,
}

impl Default for Flights {
    fn default() -> Self {
        let (clear_tx, clearances) = mpsc::unbounded_channel();
        let (landed_tx, landed) = mpsc::unbounded_channel();
        Flights {
            clear_tx,
            clearances,
            landed_tx,
            landed,
            running: JoinSet::new(),
            tasks: HashMap::new(),
            airborne: 0,
        }
    }
}
