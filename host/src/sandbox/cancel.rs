//! A run's cancel switch: set once, by a person, and seen by the run at its
//! next epoch tick (it traps), or by the landing stage before it commits
//! (nothing lands).

use std::sync::{Arc, OnceLock};

/// Shared between the dispatcher, the run's store and the landing stage.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<OnceLock<String>>);

impl Cancel {
    /// Cancels the run in the name of `by`; the first name given stays.
    pub fn cancel(&self, by: &str) {
        let _ = self.0.set(by.to_string());
    }

    /// Who cancelled it, if anyone did.
    pub fn by(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// The error a cancelled run traps with.
#[derive(Debug, thiserror::Error)]
#[error("cancelled by {0}")]
pub struct Cancelled(pub String);
