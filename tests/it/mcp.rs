//! The MCP door of a real `runway serve` on loopback, spoken as an agent
//! platform speaks it (JSON-RPC over streamable HTTP): each role is
//! offered exactly its tools and never approve or reject, a manifest filed
//! over MCP runs and is on the record in the caller's name, a tool called
//! without its right is refused and audited, the audit timeline shows
//! viewers transitions only and auditors everything, the trail verifies
//! with its signatures, runways are resources (listed and read as JSON,
//! and offered as the template `runway://{id}`), tool schemas use no
//! format a strict JSON-Schema validator refuses, and requests without a
//! token or with a foreign `Host` are turned away.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::server::{Server, folders};

const VERSION: &str = "2025-06-18";

/// One MCP call: the HTTP status and the JSON-RPC answer.
pub fn rpc(server: &Server, token: &str, method: &str, params: Value) -> (u16, Value) {
    rpc_at(&server.url, token, method, params)
}

/// One MCP call to the host at `url` (a standby relays it).
pub fn rpc_at(url: &str, token: &str, method: &str, params: Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    let mut answer = agent
        .post(&format!("{url}/mcp"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", VERSION)
        .send_json(&body)
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// A tool's result (`structuredContent`, and whether it is an error).
pub fn call(server: &Server, token: &str, tool: &str, args: Value) -> (Value, bool) {
    let (status, answer) = rpc(
        server,
        token,
        "tools/call",
        json!({ "name": tool, "arguments": args }),
    );
    assert_eq!(status, 200, "{tool}: {answer}");
    let result = &answer["result"];
    assert!(result.is_object(), "{tool}: {answer}");
    (
        result["structuredContent"].clone(),
        result["isError"] == json!(true),
    )
}

fn tools(server: &Server, token: &str) -> BTreeSet<String> {
    let (status, answer) = rpc(server, token, "tools/list", json!({}));
    assert_eq!(status, 200, "{answer}");
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A raw HTTP/1.1 POST to `/mcp` with the given `Host` and token: the
/// status code.
fn raw_status(server: &Server, host: &str, token: Option<&str>) -> u16 {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {VERSION}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer}"))
}

#[test]
fn the_mcp_door_gives_each_role_its_tools_and_never_approval() {
    let dir = folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    let olga = server.token("olga", &["operator"]);
    let vic = server.token("vic", &["viewer"]);
    let aud = server.token("aud", &["auditor"]);

    // The handshake names the server and what it offers.
    let (status, hello) = rpc(
        &server,
        &vic,
        "initialize",
        json!({
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": { "name": "orchestrator", "version": "1" },
        }),
    );
    assert_eq!(status, 200, "{hello}");
    assert_eq!(hello["result"]["serverInfo"]["name"], "runway", "{hello}");
    assert!(
        hello["result"]["capabilities"]["tools"].is_object(),
        "{hello}"
    );
    assert!(
        hello["result"]["capabilities"]["resources"].is_object(),
        "{hello}"
    );

    // Each role is offered its tools; nobody is offered approval.
    let viewing = [
        "audit_timeline",
        "list_agents",
        "list_runways",
        "list_triggers",
        "show_runway",
        "show_trigger",
        "wait_runway",
    ];
    assert_eq!(tools(&server, &vic), names(&viewing));
    let mut operating = viewing.to_vec();
    operating.extend(["cancel_runway", "file_manifest"]);
    assert_eq!(tools(&server, &olga), names(&operating));
    let mut auditing = viewing.to_vec();
    auditing.push("verify_audit");
    assert_eq!(tools(&server, &aud), names(&auditing));
    let everything = tools(&server, &admin);
    assert_eq!(everything.len(), 10, "{everything:?}");
    assert!(
        everything
            .iter()
            .all(|t| !t.contains("approv") && !t.contains("reject")),
        "{everything:?}"
    );
    let (_, approve) = rpc(
        &server,
        &admin,
        "tools/call",
        json!({ "name": "approve_runway", "arguments": { "id": "x" } }),
    );
    assert!(approve["error"]["message"].as_str().is_some(), "{approve}");

    // A manifest filed over MCP runs, in the operator's name.
    let manifest = "agent = \"import-applications\"\ndatasets = { test_mcp = \"exclusive\" }\ninput = { count = 3, seed = 1 }\n";
    let (filed, failed) = call(
        &server,
        &olga,
        "file_manifest",
        json!({ "manifest": manifest }),
    );
    assert!(!failed, "{filed}");
    let id = filed["runways"][0]["id"].as_str().unwrap().to_string();
    let (waited, _) = call(
        &server,
        &vic,
        "wait_runway",
        json!({ "runways": [id], "timeout_secs": 30 }),
    );
    assert_eq!(waited["done"], true, "{waited}");
    assert_eq!(waited["runways"][0]["state"], "SUCCEEDED", "{waited}");
    // Each agent's health, read-only, for whoever may view.
    let (health, failed) = call(&server, &vic, "list_agents", json!({}));
    assert!(!failed, "{health}");
    let agents = health["agents"].as_array().unwrap();
    let import = agents.iter().find(|a| a["agent"] == "import-applications");
    let import = import.unwrap_or_else(|| panic!("{health}"));
    assert_eq!(
        (import["runs"].as_u64(), import["breaker"].as_str()),
        (Some(1), Some("closed"))
    );
    let (shown, _) = call(&server, &vic, "show_runway", json!({ "id": id }));
    assert_eq!(shown["history"][0]["by"], "olga", "{shown}");
    let (listed, _) = call(
        &server,
        &vic,
        "list_runways",
        json!({ "state": "SUCCEEDED" }),
    );
    assert!(listed["runways"].to_string().contains(&id), "{listed}");
    let (bad, failed) = call(
        &server,
        &olga,
        "file_manifest",
        json!({ "manifest": "agent = \"probe\"\nspeed = 3\n" }),
    );
    assert!(failed, "{bad}");
    // The refusal's body, as the HTTP API answers it: its kind and the
    // kind's status in the refusal table.
    assert_eq!(
        (&bad["kind"], &bad["status"]),
        (&json!("bad_input"), &json!(400)),
        "{bad}"
    );
    assert!(bad["error"].as_str().unwrap().contains("speed"), "{bad}");

    // A viewer may not file: refused, and on the record.
    let (refused, failed) = call(
        &server,
        &vic,
        "file_manifest",
        json!({ "manifest": manifest }),
    );
    assert!(failed, "{refused}");
    assert_eq!(
        (&refused["kind"], &refused["status"]),
        (&json!("not_allowed"), &json!(403)),
        "{refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("vic (viewer) may not file"),
        "{refused}"
    );

    // The timeline: transitions for a viewer, everything for an auditor.
    let (seen, _) = call(&server, &vic, "audit_timeline", json!({ "runway": id }));
    let seen = seen["records"].as_array().unwrap().clone();
    assert!(seen.len() >= 4, "{seen:?}");
    assert!(seen.iter().all(|r| r["kind"] == "transition"), "{seen:?}");
    let (all, _) = call(
        &server,
        &aud,
        "audit_timeline",
        json!({ "dataset": "test_mcp" }),
    );
    let all = all["records"].as_array().unwrap().clone();
    assert!(all.iter().any(|r| r["kind"] == "record"), "{all:?}");
    assert!(all.len() > seen.len(), "{} vs {}", all.len(), seen.len());
    // A refusal is answered once appended; the timeline shows what is
    // durable, a group commit later (long on a loaded machine).
    let refusal = "vic (viewer) may not file (MCP tool file_manifest)";
    let started = std::time::Instant::now();
    loop {
        let (trail, _) = call(&server, &aud, "audit_timeline", json!({}));
        if trail.to_string().contains(refusal) {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the refusal is not on the record: {trail}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Cancel, in the operator's name.
    let (gated, _) = call(
        &server,
        &olga,
        "file_manifest",
        json!({ "manifest": "agent = \"probe\"\naction = \"ok\"\napproval = { required = true }\n" }),
    );
    let gated = gated["runways"][0]["id"].as_str().unwrap().to_string();
    let (cancelled, failed) = call(&server, &olga, "cancel_runway", json!({ "id": gated }));
    assert!(!failed, "{cancelled}");
    let (shown, _) = call(&server, &vic, "show_runway", json!({ "id": gated }));
    assert_eq!(shown["state"], "CANCELLED", "{shown}");
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["by"], "olga", "{shown}");
    let (again, failed) = call(&server, &olga, "cancel_runway", json!({ "id": gated }));
    assert!(failed, "{again}");
    assert_eq!(
        (&again["kind"], &again["status"]),
        (&json!("conflict"), &json!(409)),
        "{again}"
    );

    // The trail verifies, signatures included.
    let (verified, failed) = call(&server, &aud, "verify_audit", json!({}));
    assert!(!failed, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(
        verified["report"]["records"].as_u64().unwrap() > 10,
        "{verified}"
    );

    // Runways are resources.
    let (status, listed) = rpc(&server, &vic, "resources/list", json!({}));
    assert_eq!(status, 200, "{listed}");
    let uri = format!("runway://{id}");
    assert!(
        listed["result"]["resources"].to_string().contains(&uri),
        "{listed}"
    );
    let (_, read) = rpc(&server, &vic, "resources/read", json!({ "uri": uri }));
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    let runway: Value = serde_json::from_str(text).unwrap();
    assert_eq!(runway["state"], "SUCCEEDED", "{runway}");
    let (_, missing) = rpc(
        &server,
        &vic,
        "resources/read",
        json!({ "uri": "runway://nope" }),
    );
    // Not a tool's result: a JSON-RPC error, the refusal's body its data.
    assert_eq!(missing["error"]["data"]["kind"], "not_found", "{missing}");

    // No token, a stranger's token, a foreign Host: turned away.
    let host = server.url.trim_start_matches("http://").to_string();
    assert_eq!(raw_status(&server, &host, Some(&vic)), 200);
    assert_eq!(raw_status(&server, &host, None), 401);
    assert_eq!(raw_status(&server, &host, Some(&"0".repeat(64))), 401);
    assert_eq!(raw_status(&server, "attacker.example", Some(&vic)), 403);
}

#[test]
fn rmcp_s_own_client_files_and_waits_and_cannot_approve() {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let dir = folders();
    let server = Server::start(dir.path());
    let olga = server.token("olga", &["operator"]);
    let url = format!("{}/mcp", server.url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = rt.block_on(async {
        let mut config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(olga);
        config.allow_stateless = true;
        let client =
            ().serve(StreamableHttpClientTransport::from_config(config))
                .await
                .expect("initialize");
        let info = client.peer_info().expect("the server introduced itself");
        let name = info.server_info.as_ref().map(|i| i.name.as_str());
        assert_eq!(name, Some("runway"));

        let tools: Vec<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(tools.contains(&"file_manifest".to_string()), "{tools:?}");
        assert!(
            tools
                .iter()
                .all(|t| !t.contains("approv") && !t.contains("reject")),
            "{tools:?}"
        );

        let args = |v: Value| v.as_object().unwrap().clone();
        let manifest = "agent = \"probe\"\naction = \"ok\"\n";
        let filed = client
            .call_tool(
                CallToolRequestParams::new("file_manifest")
                    .with_arguments(args(json!({ "manifest": manifest }))),
            )
            .await
            .unwrap();
        let filed = filed.structured_content.expect("a structured answer");
        let id = filed["runways"][0]["id"].as_str().unwrap().to_string();
        let waited = client
            .call_tool(
                CallToolRequestParams::new("wait_runway")
                    .with_arguments(args(json!({ "runways": [id] }))),
            )
            .await
            .unwrap();
        let waited = waited.structured_content.unwrap();
        assert_eq!(waited["runways"][0]["state"], "SUCCEEDED", "{waited}");

        // Approval is not a tool here, whatever it is called.
        for name in ["approve", "approve_runway", "reject_runway"] {
            let tried = client
                .call_tool(
                    CallToolRequestParams::new(name).with_arguments(args(json!({ "id": id }))),
                )
                .await;
            assert!(tried.is_err(), "{name}: {tried:?}");
        }
        client.cancel().await.unwrap();
        id
    });
    // On the record: filed by olga, through the MCP door.
    let shown = server.json(&["show", &id]);
    assert_eq!(shown["history"][0]["by"], "olga", "{shown}");
    let trail = server.trail();
    let filed = trail
        .iter()
        .find(|r| r["event"] == "plan_filed" && r["source"] == "mcp")
        .unwrap_or_else(|| panic!("no filing through MCP in the trail: {trail:?}"));
    assert_eq!(filed["by"], "olga", "{filed}");
}

/// Every `format` in `schema`, at any depth.
fn formats(schema: &Value) -> Vec<String> {
    match schema {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, value)| {
                let own = (key == "format").then(|| value.to_string());
                own.into_iter().chain(formats(value))
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(formats).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn resources_and_tool_schemas_suit_strict_clients() {
    use rmcp::ServiceExt;
    use rmcp::model::{ReadResourceRequestParams, ResourceContents};
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let dir = folders();
    let server = Server::start(dir.path());
    let id =
        server.file("[[runway]]\nid = \"one\"\nagent = \"probe\"\naction = \"ok\"\n")[0].clone();
    server.client(&["wait", &id]);
    let admin = server.admin();
    let url = format!("{}/mcp", server.url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(admin);
        config.allow_stateless = true;
        let client =
            ().serve(StreamableHttpClientTransport::from_config(config))
                .await
                .expect("initialize");

        // Listed and read as the same type: JSON.
        let uri = format!("runway://{id}");
        let listed = client.list_all_resources().await.unwrap();
        let resource = listed
            .iter()
            .find(|r| r.uri == uri)
            .unwrap_or_else(|| panic!("{uri} is not listed: {listed:?}"));
        assert_eq!(resource.mime_type.as_deref(), Some("application/json"));
        let read = client
            .read_resource(ReadResourceRequestParams::new(uri.clone()))
            .await
            .unwrap();
        let ResourceContents::TextResourceContents {
            mime_type, text, ..
        } = &read.contents[0]
        else {
            panic!("not text: {read:?}");
        };
        assert_eq!(mime_type.as_deref(), Some("application/json"), "{read:?}");
        let runway: Value = serde_json::from_str(text).unwrap();
        assert_eq!(runway["id"], id.as_str(), "{runway}");

        // Any runway by its id: a template.
        let templates = client.list_all_resource_templates().await.unwrap();
        let template = templates
            .iter()
            .find(|t| t.uri_template == "runway://{id}")
            .unwrap_or_else(|| panic!("no runway://{{id}}: {templates:?}"));
        assert_eq!(template.mime_type.as_deref(), Some("application/json"));

        // An unknown id is refused with the id escaped.
        let missing = client
            .read_resource(ReadResourceRequestParams::new("runway://x\u{202e}y"))
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("x\\u{202e}y"), "{missing}");
        assert!(!missing.contains('\u{202e}'), "{missing}");

        // Integers are bounded, never given a format Ajv refuses.
        let tools = client.list_all_tools().await.unwrap();
        for tool in &tools {
            let schema = Value::Object((*tool.input_schema).clone());
            let found = formats(&schema);
            assert!(
                found.iter().all(|f| !f.contains("int")),
                "{}: {found:?} in {schema}",
                tool.name
            );
        }
        let wait = tools.iter().find(|t| t.name == "wait_runway").unwrap();
        let timeout = &wait.input_schema["properties"]["timeout_secs"];
        assert_eq!(timeout["maximum"], 60, "{timeout}");
        assert_eq!(timeout["minimum"], 0, "{timeout}");
        client.cancel().await.unwrap();
    });
}
