//! People's commands: approve, reject, cancel, pause, resume — applied, or
//! refused with a [`ControlError`] saying why (nothing changed).

use runway_audit::State;

use super::DispatchError;
use super::controls::{Command, ControlError};
use super::dispatch::Dispatch;

impl Dispatch {
    pub(super) fn command(
        &mut self,
        command: Command,
    ) -> Result<Result<(), ControlError>, DispatchError> {
        let runway = match &command {
            Command::Approve { runway, .. }
            | Command::Reject { runway, .. }
            | Command::Cancel { runway, .. } => runway.clone(),
            Command::Pause { by } => {
                self.flush()?;
                self.host.pause(by)?;
                return Ok(Ok(()));
            }
            Command::Resume { by } => {
                if !self.stopping {
                    self.flush()?;
                    self.host.resume(by)?;
                }
                return Ok(Ok(()));
            }
        };
        let Some(&i) = self.book.index.get(&runway) else {
            return Ok(Err(ControlError::Unknown(runway)));
        };
        let r = &self.book.runways[i];
        let state = r.state();
        if r.ended() {
            return Ok(Err(ControlError::Ended { runway, state }));
        }
        match command {
            Command::Approve { .. } | Command::Reject { .. } if state != State::WaitingApproval => {
                return Ok(Err(ControlError::NotAwaitingApproval { runway, state }));
            }
            Command::Approve { by, .. }
                if self.four_eyes && r.course.filed_by() == Some(by.as_str()) =>
            {
                return Ok(Err(ControlError::OwnFiling { runway, by }));
            }
            Command::Approve { by, note, .. } => {
                self.book.runways[i].approval = Some((by, note));
                self.schedule.dirty.insert(i);
            }
            Command::Reject { by, reason, .. } => {
                self.moved_by(i, State::Rejected, format!("rejected: {reason}"), by)?;
            }
            Command::Cancel { by, .. } => match state {
                // In the air: it stops at its next epoch tick, or before
                // its commit, and lands as CANCELLED.
                State::Cleared | State::Running => self.book.runways[i].cancel.cancel(&by),
                _ => {
                    self.take_back(i);
                    self.moved_by(i, State::Cancelled, "cancelled".into(), by)?;
                }
            },
            Command::Pause { .. } | Command::Resume { .. } => unreachable!("answered above"),
        }
        Ok(Ok(()))
    }
}
