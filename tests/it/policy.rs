//! Who may give which command is decided by the controller, not at a
//! door: a command sent straight through the `Controller` handle (no HTTP,
//! no MCP, no token check in front of it) meets the same refusals — the
//! right, the role the runway waits for, four eyes — that the HTTP API
//! answers, word for word, with the status and exit code of the refusal
//! table.

use runway_audit::State;
use runway_host::DispatchOptions;
use runway_host::controller::{self, Command, ControlError};
use runway_host::roles::{Caller, Right, Role};
use runway_tests::{Fixture, filing};

use crate::server::{Server, folders};

/// A runway that waits for an admin's approval.
const GATED: &str = "[[runway]]\nid = \"audited\"\nagent = \"probe\"\naction = \"ok\"\napproval = { required = true, role = \"admin\" }\n";

#[test]
fn the_controller_alone_decides_who_may_approve_cancel_and_pause() {
    let f = Fixture::new();
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let plan = f.plan(GATED);
    let (controls, ended) = {
        let _in = tokio.enter();
        controller::start(f.host.clone(), DispatchOptions::default()).unwrap()
    };
    let filed = tokio.block_on(controls.file(filing(plan))).unwrap();
    let id = filed[0].id.clone();
    let send = |command: Command| tokio.block_on(controls.send(command));
    let approve = |by: Caller| Command::Approve {
        runway: id.clone(),
        by,
        note: String::new(),
    };
    let alice = Caller::new("alice", [Role::Approver]);
    let vic = Caller::new("vic", [Role::Viewer]);

    // An approver, but not of the role the runway waits for.
    let refused = send(approve(alice.clone())).unwrap_err();
    assert_eq!(
        refused,
        ControlError::NotTheRole {
            runway: id.clone(),
            by: "alice".into(),
            roles: "approver".into(),
            role: "admin".into(),
        }
    );
    // No approve right at all; no control right to cancel or pause.
    for (command, right) in [
        (approve(vic.clone()), Right::Approve),
        (
            Command::Cancel {
                runway: id.clone(),
                by: vic.clone(),
            },
            Right::Control,
        ),
        (Command::Pause { by: vic.clone() }, Right::Control),
    ] {
        let refused = send(command).unwrap_err();
        assert!(
            matches!(&refused, ControlError::Lacks { by, right: r, .. } if by == "vic" && *r == right),
            "{refused:?}"
        );
    }
    // The right is checked before the runway is looked up.
    let nowhere = Command::Cancel {
        runway: "nowhere".into(),
        by: vic,
    };
    assert!(matches!(send(nowhere), Err(ControlError::Lacks { .. })));
    // Nothing moved.
    let shown = tokio.block_on(controls.show(&id)).unwrap();
    assert_eq!(shown.state, State::WaitingApproval);
    assert_eq!(shown.approved_by, None);

    // Four eyes: whoever filed it may not approve it, admin or not.
    let filer = Caller::new("test", [Role::Admin]);
    assert!(matches!(
        send(approve(filer)),
        Err(ControlError::OwnFiling { .. })
    ));
    // An admin holds every role.
    send(approve(Caller::new("erin", [Role::Admin]))).unwrap();
    let landed = tokio.block_on(controls.wait(vec![id.clone()])).unwrap();
    assert_eq!(landed[0].state, State::Succeeded);
    assert_eq!(landed[0].approved_by.as_deref(), Some("erin"));
    controls.stop(false);
    tokio.block_on(ended).unwrap().unwrap();
}

#[test]
fn the_http_door_answers_the_controllers_refusal_word_for_word() {
    let dir = folders();
    let server = Server::start(dir.path());
    let alice = server.token("alice", &["approver"]);
    let id = server.file(GATED).remove(0);
    let out = server.client_as(&alice, &["approve", &id]);
    // 403, exit 5: the refusal table's row for "not allowed".
    assert_eq!(out.code, 5, "{}", out.stderr);
    let decided = ControlError::NotTheRole {
        runway: id.clone(),
        by: "alice".into(),
        roles: "approver".into(),
        role: "admin".into(),
    };
    assert!(
        out.stderr
            .contains(&format!("the server refused (403): alice: {decided}")),
        "{}",
        out.stderr
    );
    // And it still waits.
    let shown = server.json(&["show", &id]);
    assert_eq!(shown["state"], "WAITING_APPROVAL", "{shown}");
}
