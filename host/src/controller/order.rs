//! What a leader hands a crew with a posted run (`remote.rs` writes it,
//! `crew.rs` reads it): all the crew's own copy of the agent (the same
//! component, by digest) needs to fly the run as the leader would have.

use runway_audit::LockGrant;
use serde::{Deserialize, Serialize};

use crate::limits::Limits;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Order {
    pub action: String,
    pub input: Vec<u8>,
    /// Its grants, each with its fencing token.
    pub locks: Vec<LockGrant>,
    /// The agent's limits, narrowed by the manifest's window and the
    /// plan's budget.
    pub limits: Limits,
    /// Its output is kept on the trail (a RETURNED record).
    pub keep_output: bool,
}

impl Order {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an order always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Order, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}
