//! `/api/openapi.json` of a real `runway serve`: it describes every route
//! the server answers (each documented operation is routed, each route a
//! client uses is documented), with bearer tokens, and the schemas of the
//! answers hold exactly the keys the server sends.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::server::{Server, folders};

fn request(server: &Server, method: &str, path: &str, token: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", server.url);
    let auth = format!("Bearer {token}");
    let answer = match method {
        "get" => agent.get(&url).header("Authorization", &auth).call(),
        _ => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send("{}"),
    };
    answer.unwrap().status().as_u16()
}

/// The property names of schema `name`.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_openapi_description_matches_what_the_server_does() {
    let dir = folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    let ids = server.file("[[runway]]\nid = \"one\"\nagent = \"import-applications\"\ndatasets = { test_doc = \"exclusive\" }\ninput = { count = 2, seed = 1 }\n");
    server.client(&["wait", &ids[0]]);

    // Served without a token, like the page.
    let text = ureq::get(&format!("{}/api/openapi.json", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every operation a client uses is there.
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let used = [
        ("get", "/api/runways"),
        ("post", "/api/runways"),
        ("get", "/api/runways/{id}"),
        ("post", "/api/runways/{id}/approve"),
        ("post", "/api/runways/{id}/reject"),
        ("post", "/api/runways/{id}/cancel"),
        ("post", "/api/pause"),
        ("post", "/api/resume"),
        ("post", "/api/wait"),
        ("get", "/api/events"),
        ("get", "/api/locks"),
        ("get", "/api/plugins"),
        ("get", "/api/server"),
        ("get", "/api/audit/proof/{seq}"),
        ("get", "/metrics"),
    ];
    for (method, path) in used {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not described: {documented:?}"
        );
    }

    // Every operation described is routed: with the admin's token it is
    // never "no such route" (404 from a path the router does not know
    // would say "not found" with no JSON error) nor "method not allowed".
    for (method, path) in &documented {
        if path == "/api/events" {
            continue; // a stream: it answers 200 and stays open
        }
        let concrete = path.replace("{id}", &ids[0]).replace("{seq}", "0");
        let status = request(&server, method, &concrete, &admin);
        assert!(
            status != 405 && (status != 404 || path.contains('{')),
            "{method} {path}: {status}"
        );
        assert!(status < 500, "{method} {path}: {status}");
    }

    // The schemas hold exactly what is sent.
    let shown = server.json(&["show", &ids[0]]);
    assert_eq!(keys(&shown), properties(&doc, "RunwayView"), "{shown}");
    assert_eq!(
        keys(&shown["manifest"]),
        properties(&doc, "ManifestView"),
        "{shown}"
    );
    assert_eq!(
        keys(&shown["history"][0]),
        properties(&doc, "TransitionView")
    );
    let get = |path: &str| -> Value {
        let mut answer = ureq::get(&format!("{}{path}", server.url))
            .header("Authorization", &format!("Bearer {admin}"))
            .call()
            .unwrap();
        serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap()
    };
    let me = get("/api/server");
    assert_eq!(keys(&me), properties(&doc, "ServerView"), "{me}");
    let plugins = get("/api/plugins");
    assert_eq!(
        keys(&plugins["plugins"][0]),
        properties(&doc, "PluginView"),
        "{plugins}"
    );
}
