//! Who may do what, endpoint by endpoint: every operation the OpenAPI
//! description lists, called by no one, a stranger, and each role. Each
//! answer is either let through or refused as the role table says (401
//! without a known token, 403 without the right, each body saying why),
//! and every refusal is on the audit trail naming the request.

use serde_json::Value;

use crate::server::{Server, folders};

/// The right each operation needs (this table is the specification; an
/// operation missing from it fails the test).
fn right_of(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("post", "/api/runways") => "file",
        ("post", "/api/runways/{id}/approve" | "/api/runways/{id}/reject") => "approve",
        ("post", "/api/runways/{id}/cancel" | "/api/pause" | "/api/resume") => "control",
        ("post", "/api/triggers/{id}/pause" | "/api/triggers/{id}/resume") => "control",
        ("post", "/api/triggers/{id}/remove") => "control",
        ("get", "/api/audit/proof/{seq}") => "audit",
        (
            "get",
            "/api/runways" | "/api/runways/{id}" | "/api/locks" | "/api/plugins" | "/api/agents",
        )
        | ("get", "/api/server" | "/api/events" | "/metrics")
        | ("get", "/api/triggers" | "/api/triggers/{id}")
        | ("post", "/api/wait") => "view",
        ("post", "/api/runways/{id}/refile") => "control",
        ("get", "/api/filings") => "view",
        _ => panic!("no right known for {method} {path}: add it to this table"),
    }
}

/// What each role may do.
fn may(role: &str, right: &str) -> bool {
    match role {
        "admin" => true,
        "viewer" => right == "view",
        "operator" => matches!(right, "view" | "file" | "control"),
        "approver" => matches!(right, "view" | "approve"),
        "auditor" => matches!(right, "view" | "audit"),
        _ => false,
    }
}

/// `method path` with `token`: the status and the body.
fn call(server: &Server, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", server.url);
    let auth = token.map(|t| format!("Bearer {t}"));
    let answer = if method == "get" {
        let mut request = agent.get(&url);
        if let Some(auth) = &auth {
            request = request.header("Authorization", auth);
        }
        request.call()
    } else {
        let mut request = agent.post(&url).header("Content-Type", "application/json");
        if let Some(auth) = &auth {
            request = request.header("Authorization", auth);
        }
        request.send("{}")
    };
    let mut answer = answer.unwrap();
    let status = answer.status().as_u16();
    // A stream answers 200 and stays open: its status is enough.
    let body = if path.starts_with("/api/events") && status == 200 {
        String::new()
    } else {
        answer.body_mut().read_to_string().unwrap_or_default()
    };
    (status, body)
}

#[test]
fn every_endpoint_with_every_role_is_let_through_or_refused_and_audited() {
    let dir = folders();
    // Every refusal audited in full: nobody's and a stranger's requests
    // here outnumber a peer's bucket (the flood test's subject).
    let server = Server::start_with(dir.path(), &["--refusal-burst", "1000"]);
    let admin = server.admin();
    let roles = ["viewer", "operator", "approver", "auditor"];
    let mut callers: Vec<(String, Option<String>)> = vec![
        ("nobody".into(), None),
        ("stranger".into(), Some("0".repeat(64))),
        ("admin".into(), Some(admin.clone())),
    ];
    for role in roles {
        callers.push((
            role.into(),
            Some(server.token(&format!("{role}-1"), &[role])),
        ));
    }

    let doc: Value = ureq::get(&format!("{}/api/openapi.json", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let mut operations: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push((method.clone(), path.clone()));
        }
    }
    assert!(operations.len() >= 15, "{operations:?}");

    let mut refused = 0;
    for (method, path) in &operations {
        let right = right_of(method, path);
        let concrete = path.replace("{id}", "nope").replace("{seq}", "0");
        for (who, token) in &callers {
            let (status, body) = call(&server, method, &concrete, token.as_deref());
            let said: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let why = said["error"].as_str().unwrap_or_default();
            match who.as_str() {
                "nobody" => {
                    assert_eq!(status, 401, "{who} {method} {path}: {body}");
                    assert_eq!(why, "no bearer token", "{who} {method} {path}");
                    refused += 1;
                }
                "stranger" => {
                    assert_eq!(status, 401, "{who} {method} {path}: {body}");
                    assert_eq!(why, "unknown bearer token", "{who} {method} {path}");
                    refused += 1;
                }
                role if may(role, right) => {
                    assert!(
                        status != 401 && status != 403,
                        "{role} may {right}: {method} {path} answered {status} {body}"
                    );
                }
                role => {
                    assert_eq!(
                        status, 403,
                        "{role} may not {right}: {method} {path}: {body}"
                    );
                    let named = format!("{role}-1 ({role}) may not");
                    assert!(why.starts_with(&named), "{method} {path}: {why}");
                    refused += 1;
                }
            }
        }
    }
    // The operator's pause above must not outlive the test's own checks.
    let (status, _) = call(&server, "post", "/api/resume", Some(&admin));
    assert_eq!(status, 200);

    // Every refusal is on the record, naming the request.
    let audited = server
        .trail()
        .iter()
        .filter(|r| {
            let reason = r["reason"].as_str().unwrap_or_default();
            reason.starts_with("API request refused: ")
                && (reason.contains(" (GET /") || reason.contains(" (POST /"))
        })
        .count();
    assert_eq!(audited, refused, "refusals audited vs refusals answered");
}
