//! Who may give which command: the one place it is decided, by the
//! controller, whichever door the command came through (the HTTP API, MCP,
//! the plans inbox, the CLI through the API, a program holding the
//! `Controller` handle). A door may refuse earlier — the HTTP API lets a
//! request in only with its route's right — but never instead: what a
//! command may do is checked here, against the runway as it stands when
//! the command is applied, so nothing changes between a check and the move.
//!
//! | command | refused unless, in this order |
//! |---|---|
//! | approve | the caller holds the approve right; the role the runway's manifest names (an admin holds every role); the runway has not ended and waits for approval; the caller did not file it, while four eyes are on |
//! | reject | the approve right; the runway has not ended and waits for approval |
//! | cancel | the control right; the runway has not ended |
//! | pause, resume | the control right |
//! | pause, resume, remove a trigger | the control right; the trigger exists |
//!
//! A runway the command names that does not exist is refused after the
//! right (a caller without it learns nothing of which runways exist).

use super::State;
use super::controls::{Command, ControlError};
use crate::roles::{Caller, Right};

/// What the controller knows of the runway a command names, as it stands.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub state: State,
    /// It will not move again.
    pub ended: bool,
    /// The role whose approval it waits for, if any.
    pub approval: Option<&'a str>,
    /// Who filed it.
    pub filed_by: Option<&'a str>,
}

/// The right `command` needs.
pub fn right(command: &Command) -> Right {
    match command {
        Command::Approve { .. } | Command::Reject { .. } => Right::Approve,
        Command::Cancel { .. }
        | Command::Pause { .. }
        | Command::Resume { .. }
        | Command::PauseTrigger { .. }
        | Command::ResumeTrigger { .. }
        | Command::RemoveTrigger { .. } => Right::Control,
    }
}

/// Whether `by` holds `right`: if not, the refusal says who, with which
/// roles, may not do what (a door that checks a route's right first says
/// it in the same words).
pub fn may(by: &Caller, right: Right) -> Result<(), ControlError> {
    if by.may(right) {
        return Ok(());
    }
    Err(ControlError::Lacks {
        by: by.name.clone(),
        roles: by.roles_shown(),
        right,
    })
}

/// Whether `command` may be applied: `target` is the runway it names
/// (`None` when there is no such runway, or it names none); with
/// `four_eyes`, whoever filed a runway may not approve it.
pub fn decide(
    command: &Command,
    target: Option<Target<'_>>,
    four_eyes: bool,
) -> Result<(), ControlError> {
    let by = command.by();
    may(by, right(command))?;
    let Some(id) = command.runway() else {
        return Ok(());
    };
    let Some(target) = target else {
        return Err(ControlError::Unknown(id.to_string()));
    };
    let runway = || id.to_string();
    if let Command::Approve { .. } = command
        && let Some(role) = target.approval.filter(|role| !by.holds(role))
    {
        return Err(ControlError::NotTheRole {
            runway: runway(),
            by: by.name.clone(),
            roles: by.roles_shown(),
            role: role.to_string(),
        });
    }
    if target.ended {
        return Err(ControlError::Ended {
            runway: runway(),
            state: target.state,
        });
    }
    let deciding = matches!(command, Command::Approve { .. } | Command::Reject { .. });
    if deciding && target.state != State::WaitingApproval {
        return Err(ControlError::NotAwaitingApproval {
            runway: runway(),
            state: target.state,
        });
    }
    if let Command::Approve { .. } = command
        && four_eyes
        && target.filed_by == Some(by.name.as_str())
    {
        return Err(ControlError::OwnFiling {
            runway: runway(),
            by: by.name.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Role;

    fn approve(by: Caller) -> Command {
        Command::Approve {
            runway: "r".into(),
            by,
            note: String::new(),
        }
    }

    fn gated(role: &str, filed_by: &'static str) -> Target<'static> {
        Target {
            state: State::WaitingApproval,
            ended: false,
            approval: Some(if role == "admin" { "admin" } else { "approver" }),
            filed_by: Some(filed_by),
        }
    }

    #[test]
    fn approval_needs_the_right_the_role_and_another_pair_of_eyes() {
        let alice = Caller::new("alice", [Role::Approver]);
        let dave = Caller::new("dave", [Role::Operator]);
        let admin = Caller::new("admin", [Role::Admin]);
        assert_eq!(
            decide(
                &approve(alice.clone()),
                Some(gated("approver", "bob")),
                true
            ),
            Ok(())
        );
        assert!(matches!(
            decide(&approve(dave), Some(gated("approver", "bob")), true),
            Err(ControlError::Lacks {
                right: Right::Approve,
                ..
            })
        ));
        assert_eq!(
            decide(&approve(alice.clone()), Some(gated("admin", "bob")), true)
                .unwrap_err()
                .to_string(),
            "alice (approver) may not approve runway r: it waits for the role admin"
        );
        assert_eq!(
            decide(&approve(admin.clone()), Some(gated("admin", "bob")), true),
            Ok(())
        );
        // Four eyes, unless the operator turned them off.
        assert!(matches!(
            decide(
                &approve(alice.clone()),
                Some(gated("approver", "alice")),
                true
            ),
            Err(ControlError::OwnFiling { .. })
        ));
        assert_eq!(
            decide(
                &approve(alice.clone()),
                Some(gated("approver", "alice")),
                false
            ),
            Ok(())
        );
        // Not waiting, ended, or no such runway.
        let queued = Target {
            state: State::Queued,
            ..gated("approver", "bob")
        };
        assert!(matches!(
            decide(&approve(alice.clone()), Some(queued), true),
            Err(ControlError::NotAwaitingApproval { .. })
        ));
        let ended = Target {
            state: State::Rejected,
            ended: true,
            ..gated("approver", "bob")
        };
        assert!(matches!(
            decide(&approve(alice.clone()), Some(ended), true),
            Err(ControlError::Ended { .. })
        ));
        assert_eq!(
            decide(&approve(alice), None, true),
            Err(ControlError::Unknown("r".into()))
        );
    }

    #[test]
    fn cancel_pause_and_resume_need_the_control_right() {
        let vic = Caller::new("vic", [Role::Viewer]);
        let dave = Caller::new("dave", [Role::Operator]);
        let pause = |by: Caller| Command::Pause { by };
        assert!(matches!(
            decide(&pause(vic.clone()), None, true),
            Err(ControlError::Lacks {
                right: Right::Control,
                ..
            })
        ));
        assert_eq!(decide(&pause(dave.clone()), None, true), Ok(()));
        let cancel = |by: Caller| Command::Cancel {
            runway: "r".into(),
            by,
        };
        let running = Target {
            state: State::Running,
            ended: false,
            approval: None,
            filed_by: Some("dave"),
        };
        assert!(decide(&cancel(vic), Some(running), true).is_err());
        assert_eq!(decide(&cancel(dave), Some(running), true), Ok(()));
    }
}
