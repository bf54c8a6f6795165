//! The commit protocol (DESIGN.md, "Datasets"): how a flown run's staged
//! writes reach the store so that the audit trail and the store never
//! disagree, even across a crash — every step here, in one place.
//!
//! **Landing** (`land.rs`, fed by the landing stage of `stage.rs`, which
//! gathers up to [`MAX_BATCH`] flown runs and lands them together):
//! 1. *Announce.* Each run that ended well with staged writes — and is not
//!    cancelled or past its window — gets a COMMITTING record (runway, its
//!    exclusive lock grants with their tokens, SHA-256 of its change set);
//!    **one** durable wait then covers every COMMITTING and every call
//!    record before them. The store is never touched before this.
//! 2. *Apply.* **One** store transaction, each run in a savepoint of its
//!    own: its fences are checked, its writes applied, its fences raised,
//!    and its commits row written (keyed by the sequence number of its
//!    COMMITTING; what it landed, per dataset, as typed columns). A fenced
//!    or failed run lands nothing and never takes the others down.
//! 3. *Record.* COMMITTED per dataset a run landed on; then every run's
//!    COST (fuel, wall time, bytes committed) and its end (SUCCEEDED,
//!    FAILED, TIMED_OUT or CANCELLED); **one** more durable wait
//!    before anything is reported. Locks stay held until the report: the
//!    dispatcher releases them when it hears of the landing.
//!
//! **Recovery** (`recover.rs`), at start-up, for a crash between 1 and 3:
//! 4. *Observe.* The start path (`controller::start`) reads the trail once,
//!    in order, and hands every record to the journal's fold and to
//!    [`Unsettled::observe`], which keeps each
//!    COMMITTING without its run's end after it (with the datasets whose
//!    COMMITTED made it to disk), and each STARTED with nothing after it.
//! 5. *Settle.* Each open COMMITTING is looked up in the commits table by
//!    its sequence number. Found: the transaction committed — RECOVER
//!    (landed), the missing COMMITTED records, SUCCEEDED. Not found: nothing
//!    was applied — RECOVER (not landed), FAILED ("host crashed during the
//!    commit"). A run flying when the host died gets FAILED ("host crashed
//!    during the run"). A commits row that does not read back whole, or
//!    disagrees with its COMMITTING record (another runway, a dataset it
//!    held no exclusive lock on, another token), stops the start with an
//!    error naming the runway and the COMMITTING sequence number: the row
//!    is what recovery trusts, so it is never read as zeros.
//!
//! The crash tests stop the process at each named point of landing with
//! `RUNWAY_CRASH_AT=before-committing|after-committing|after-store-commit|
//! after-committed` (SIGKILL, as a power cut would).

mod land;
mod recover;
mod stage;

pub use land::{execute, land};
pub use recover::{Settled, Unsettled};
pub use stage::{LandingError, LandingStage};

use runway_audit::{AuditError, VerifyError};

use crate::store::StoreError;

/// Why a start-up could not settle what a crash interrupted; the host must
/// not start then.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("reading the audit trail to recover interrupted commits: {0}")]
    Read(#[from] VerifyError),
    #[error("looking up an interrupted commit in the store: {0}")]
    Store(#[from] StoreError),
    #[error("recording a recovered commit: {0}")]
    Audit(#[from] AuditError),
    /// The commits row of COMMITTING record `committing` disagrees with it.
    #[error(
        "the commits row of runway {runway}'s COMMITTING record {committing} disagrees with \
         the record: {why}; the store cannot be trusted to say what landed"
    )]
    Disagrees {
        runway: String,
        committing: u64,
        why: String,
    },
}
