//! People's commands: approve, reject, cancel, pause, resume — applied
//! once [`super::policy`] allows them against the runway as it stands, or
//! refused with a [`ControlError`] saying why (nothing changed).

use runway_audit::State;

use super::DispatchError;
use super::controls::{Command, ControlError};
use super::dispatch::Dispatch;
use super::policy;

impl Dispatch {
    pub(super) fn command(
        &mut self,
        command: Command,
    ) -> Result<Result<(), ControlError>, DispatchError> {
        let i = command
            .runway()
            .and_then(|id| self.book.index.get(id).copied());
        let target = i.map(|i| {
            let r = &self.book.runways[i];
            policy::Target {
                state: r.state(),
                ended: r.ended(),
                approval: r.manifest.approval.as_deref(),
                filed_by: r.course.filed_by(),
            }
        });
        if let Err(refused) = policy::decide(&command, target, self.four_eyes) {
            return Ok(Err(refused));
        }
        match (command, i) {
            (Command::Pause { by }, _) => {
                self.flush()?;
                self.host.pause(&by.name)?;
            }
            (Command::Resume { by }, _) => {
                if !self.stopping {
                    self.flush()?;
                    self.host.resume(&by.name)?;
                }
            }
            (Command::Approve { by, note, .. }, Some(i)) => {
                self.book.runways[i].approval = Some((by.name, note));
                self.schedule.dirty.insert(i);
            }
            (Command::Reject { by, reason, .. }, Some(i)) => {
                self.moved_by(i, State::Rejected, format!("rejected: {reason}"), by.name)?;
            }
            (Command::Cancel { by, .. }, Some(i)) => match self.book.runways[i].state() {
                // In the air: it stops at its next epoch tick, or before
                // its commit, and lands as CANCELLED.
                State::Cleared | State::Running => {
                    self.book.runways[i].cancel.cancel(&by.name);
                    self.cancel_remote(i, &by.name);
                    self.stop_waiting(i);
                }
                _ => {
                    self.take_back(i);
                    self.moved_by(i, State::Cancelled, "cancelled".into(), by.name)?;
                }
            },
            (
                command @ (Command::PauseTrigger { .. }
                | Command::ResumeTrigger { .. }
                | Command::RemoveTrigger { .. }),
                _,
            ) => return self.trigger_command(command),
            // `decide` refuses a runway that does not exist; said again
            // rather than trusted with a panic.
            (command, None) => {
                let runway = command.runway().unwrap_or_default().to_string();
                return Ok(Err(ControlError::Unknown(runway)));
            }
        }
        Ok(Ok(()))
    }
}
