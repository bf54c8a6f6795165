//! The controller as a run's orchestration calls see it: a [`Liaison`]
//! implements the sandbox's [`Delegator`] by sending each call to the
//! controller's inbox, where it is answered in the controller's own step
//! (so a child is filed, and a join looked at, between two events like any
//! other change). It holds the inbox weakly: a run in the air does not
//! keep a stopped controller's inbox open.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::controls::{Orchestration as Asked, Request};
use crate::sandbox::hostcalls::{
    Child, ChildResult, Delegation, Delegator, GuestError, HandoffRequest, JoinMode, Returned,
};

pub(super) struct Liaison {
    pub inbox: mpsc::WeakUnboundedSender<Request>,
    /// The run's runway's [`Returned`], shared with the controller.
    pub returned: Returned,
}

impl Liaison {
    /// Sends `asked`; dropped (its reply with it) when the controller is
    /// gone, which the waiting run hears as its controller stopping.
    fn send(&self, asked: Asked) {
        if let Some(inbox) = self.inbox.upgrade() {
            let _ = inbox.send(Request::Orchestration(asked));
        }
    }
}

impl Delegator for Liaison {
    fn delegate(
        &self,
        parent: &str,
        attempt: u32,
        position: u32,
        request: Delegation,
    ) -> oneshot::Receiver<Result<Child, GuestError>> {
        let (reply, answer) = oneshot::channel();
        self.send(Asked::Delegate {
            parent: parent.to_string(),
            attempt,
            position,
            request: Box::new(request),
            reply,
        });
        answer
    }

    fn join(
        &self,
        parent: &str,
        children: Vec<Child>,
        mode: JoinMode,
        until: Instant,
    ) -> oneshot::Receiver<Result<Vec<ChildResult>, GuestError>> {
        let (reply, answer) = oneshot::channel();
        self.send(Asked::Join {
            parent: parent.to_string(),
            children,
            mode,
            until: tokio::time::Instant::from_std(until),
            reply,
        });
        answer
    }

    fn cancel(
        &self,
        parent: &str,
        children: Vec<Child>,
    ) -> oneshot::Receiver<Result<(), GuestError>> {
        let (reply, answer) = oneshot::channel();
        self.send(Asked::Cancel {
            parent: parent.to_string(),
            children,
            reply,
        });
        answer
    }

    fn handoff(
        &self,
        parent: &str,
        attempt: u32,
        to: &HandoffRequest,
    ) -> oneshot::Receiver<Result<(), GuestError>> {
        let (reply, answer) = oneshot::channel();
        self.send(Asked::Handoff {
            parent: parent.to_string(),
            attempt,
            to: Box::new(to.clone()),
            reply,
        });
        answer
    }

    fn returned(&self) -> Returned {
        self.returned.clone()
    }

    fn progress(&self, runway: &str, done: u64, total: u64, message: String) {
        self.send(Asked::Progress {
            runway: runway.to_string(),
            done,
            total,
            message,
        });
    }
}
