//! The roles a caller can hold, the rights each grants, and the
//! [`Caller`]: who asks, by name and roles (`api::access` gives roles to
//! tokens; a manifest's `approval.role` names one of them; every command
//! to the controller carries its caller, and the controller decides).

use serde::{Deserialize, Serialize};

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees runways, locks, plugins.
    Viewer,
    /// Files, cancels, pauses and resumes.
    Operator,
    /// Approves and rejects.
    Approver,
    /// Reads the audit trail, its exports and proofs.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Approver,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role grants `right`. Every role may view.
    pub fn grants(self, right: Right) -> bool {
        match self {
            Role::Admin => true,
            Role::Viewer => right == Right::View,
            Role::Operator => matches!(right, Right::View | Right::File | Right::Control),
            Role::Approver => matches!(right, Right::View | Right::Approve),
            Role::Auditor => matches!(right, Right::View | Right::Audit),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                format!("no role {s:?} (one of {})", known.join(", "))
            })
    }
}

/// Who asks: a name (as the audit trail records it) and the roles held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn new(name: impl Into<String>, roles: impl Into<Vec<Role>>) -> Caller {
        Caller {
            name: name.into(),
            roles: roles.into(),
        }
    }

    pub fn may(&self, right: Right) -> bool {
        self.roles.iter().any(|r| r.grants(right))
    }

    /// Whether it holds the role called `role` (an admin holds every role).
    pub fn holds(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|r| *r == Role::Admin || r.name() == role)
    }

    /// Its roles, comma-separated.
    pub fn roles_shown(&self) -> String {
        let names: Vec<&str> = self.roles.iter().map(|r| r.name()).collect();
        names.join(",")
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Read runways, locks, plugins, metrics.
    View,
    /// File plans and manifests.
    File,
    /// Cancel, pause, resume.
    Control,
    /// Approve, reject.
    Approve,
    /// Read audit records and proofs.
    Audit,
}

impl Right {
    pub const ALL: [Right; 5] = [
        Right::View,
        Right::File,
        Right::Control,
        Right::Approve,
        Right::Audit,
    ];

    /// Its name, as the API lists a caller's rights.
    pub fn name(self) -> &'static str {
        match self {
            Right::View => "view",
            Right::File => "file",
            Right::Control => "control",
            Right::Approve => "approve",
            Right::Audit => "audit",
        }
    }

    /// As refusals say it: "may not {verb}".
    pub fn verb(self) -> &'static str {
        match self {
            Right::View => "view",
            Right::File => "file",
            Right::Control => "cancel, pause or resume",
            Right::Approve => "approve or reject",
            Right::Audit => "read the audit trail",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_grants_only_its_rights() {
        use Right::*;
        let rights = [View, File, Control, Approve, Audit];
        let granted =
            |role: Role| -> Vec<Right> { rights.into_iter().filter(|&r| role.grants(r)).collect() };
        assert_eq!(granted(Role::Viewer), [View]);
        assert_eq!(granted(Role::Operator), [View, File, Control]);
        assert_eq!(granted(Role::Approver), [View, Approve]);
        assert_eq!(granted(Role::Auditor), [View, Audit]);
        assert_eq!(granted(Role::Admin), rights);
    }
}
