//! What people do to runways in flight: approve or reject one waiting for
//! approval, cancel one. Each command reaches the plan's dispatcher through
//! [`Controls`] and is answered once it was applied (and audited, with who)
//! or refused with a [`ControlError`] naming why. Pausing and resuming
//! clearing act on the whole host ([`super::Host::pause`]).

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::State;

/// A person's command for one runway.
#[derive(Debug, Clone)]
pub enum Command {
    Approve {
        runway: String,
        by: String,
        note: String,
    },
    Reject {
        runway: String,
        by: String,
        reason: String,
    },
    Cancel {
        runway: String,
        by: String,
    },
}

/// Why a command was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    #[error("no runway {0}")]
    Unknown(String),
    #[error("runway {runway} is {}, not waiting for approval", .state.name())]
    NotAwaitingApproval { runway: String, state: State },
    #[error("runway {runway} has already ended ({})", .state.name())]
    Ended { runway: String, state: State },
    #[error("the plan has already landed")]
    Landed,
}

type Sent = (Command, oneshot::Sender<Result<(), ControlError>>);

/// Sends commands to one plan's dispatcher.
#[derive(Clone)]
pub struct Controls {
    tx: mpsc::UnboundedSender<Sent>,
}

/// The dispatcher's end.
pub struct Inbox {
    pub(super) rx: mpsc::UnboundedReceiver<Sent>,
}

/// A connected pair.
pub fn channel() -> (Controls, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Controls { tx }, Inbox { rx })
}

impl Controls {
    /// Sends `command` and waits until it was applied or refused.
    pub async fn send(&self, command: Command) -> Result<(), ControlError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((command, reply))
            .map_err(|_| ControlError::Landed)?;
        answer.await.unwrap_or(Err(ControlError::Landed))
    }
}
