//! Runs in the air: the channels clearances, runs leaving their workers
//! and landings come back on. Plain plumbing; take-off and landing are
//! [`super::takeoff`]'s and [`super::landed`]'s.

use std::collections::HashMap;

use runway_audit::AuditError;
use tokio::sync::mpsc;

use super::commit::LandingError;
use super::tower::Clearance;
use super::yard::{Remote, Yard};
use crate::sandbox::RunReport;

/// How a run landed: (runway, report), from the landing stage.
pub(super) type Landing = (usize, Result<RunReport, LandingError>);

/// A run left its worker: (runway, handed to the landing stage, or why
/// the trail or host code failed it; `Err` when the job panicked).
pub(super) type Handed = (usize, Result<Result<(), AuditError>, String>);

pub(super) struct Flights {
    /// Where the tower sends this controller's clearances.
    pub clear_tx: mpsc::UnboundedSender<Clearance>,
    pub clearances: mpsc::UnboundedReceiver<Clearance>,
    pub landed_tx: mpsc::UnboundedSender<Landing>,
    pub landed: mpsc::UnboundedReceiver<Landing>,
    /// Runs leaving their workers (each handed to the landing stage).
    pub handed_tx: mpsc::UnboundedSender<Handed>,
    pub handed: mpsc::UnboundedReceiver<Handed>,
    /// Runways taken off and not yet landed.
    pub airborne: usize,
    /// Runs given to a worker that has not handed them back yet (it may
    /// still hold the host a moment after its run landed).
    pub on_workers: usize,
    /// Runs flying on crews: runway by work id.
    pub remote: HashMap<u64, usize>,
    pub remote_tx: mpsc::UnboundedSender<Remote>,
    pub remotes: mpsc::UnboundedReceiver<Remote>,
    /// On a shared database: hears of the crews and their runs.
    pub yard: Option<Yard>,
}

impl Default for Flights {
    fn default() -> Self {
        let (clear_tx, clearances) = mpsc::unbounded_channel();
        let (landed_tx, landed) = mpsc::unbounded_channel();
        let (handed_tx, handed) = mpsc::unbounded_channel();
        let (remote_tx, remotes) = mpsc::unbounded_channel();
        Flights {
            clear_tx,
            clearances,
            landed_tx,
            landed,
            handed_tx,
            handed,
            airborne: 0,
            on_workers: 0,
            remote: HashMap::new(),
            remote_tx,
            remotes,
            yard: None,
        }
    }
}
