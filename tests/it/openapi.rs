//! `/api/openapi.json` of a real `runway serve`: it describes every route
//! the server answers (each documented operation is routed, each route a
//! client uses is documented), with bearer tokens, and the schemas of the
//! answers hold exactly the keys the server sends; a real OpenAPI validator
//! (`openapi-spec-validator`) accepts it and a property-based fuzzer driven
//! by it (Schemathesis) finds nothing the server does that it does not say;
//! every refusal, the framework's own included, is JSON with its text
//! escaped, and a 401 names the Bearer scheme (RFC 6750).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use runway_host::api::Kind;
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

/// `openapi-spec-validator`, pinned.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";
/// Schemathesis, pinned.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// A venv under the target folder holding the validator and the fuzzer
/// from PyPI, made on first use (as `runway build` installs its Python
/// tools); Debian's `python3-venv` is installed when `venv` is missing.
fn python_tools() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-tools-0.9.0-4.32.5");
    let bin = venv.join("bin");
    let ready = || bin.join("st").is_file() && bin.join("openapi-spec-validator").is_file();
    if ready() {
        return bin;
    }
    eprintln!(
        "installing {VALIDATOR} and {SCHEMATHESIS} into {}",
        venv.display()
    );
    let run = |command: &mut Command| command.status().is_ok_and(|s| s.success());
    if !bin.join("pip").is_file() && !run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
    {
        let apt = |args: &[&str]| {
            run(Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if !apt(&["install", "-y", "-qq", "python3-venv"]) {
            apt(&["update", "-qq"]);
            apt(&["install", "-y", "-qq", "python3-venv"]);
        }
        let _ = std::fs::remove_dir_all(&venv);
        assert!(
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv)),
            "python3 -m venv {} failed: install python3 and python3-venv",
            venv.display()
        );
    }
    assert!(
        run(Command::new(bin.join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            VALIDATOR,
            SCHEMATHESIS
        ])),
        "pip could not install {VALIDATOR} {SCHEMATHESIS} into {}",
        venv.display()
    );
    assert!(
        ready(),
        "{} lacks st or openapi-spec-validator",
        bin.display()
    );
    bin
}

/// What Schemathesis is told beyond the description: a plan's checks
/// (agents known, datasets granted, no cycles) go beyond what a schema can
/// say, so a filing that fits the schema may still be refused, with 400.
const FUZZ_CONFIG: &str = r#"
[[operations]]
include-path = "/api/runways"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"#;

/// What a tool printed, stdout then stderr.
fn printed(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_description_validates_and_the_fuzzer_finds_no_mismatch() {
    let tools = python_tools();
    let dir = folders();
    // The fuzzer probes every operation without a token, hundreds of
    // times: each probe must meet the 401 it checks for, not the 429 a
    // stranger meets past its bucket (the flood test's subject).
    let server = Server::start_with(dir.path(), &["--refusal-burst", "1000000"]);
    let admin = server.admin();
    let url = format!("{}/api/openapi.json", server.url);
    let text = ureq::get(&url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let described = dir.path().join("openapi.json");
    std::fs::write(&described, &text).unwrap();

    // A real validator accepts it as OpenAPI 3.1.
    let out = Command::new(tools.join("openapi-spec-validator"))
        .arg(&described)
        .output()
        .unwrap();
    let said = printed(&out);
    assert!(out.status.success(), "openapi-spec-validator: {said}");
    assert!(said.contains("OK"), "{said}");

    // The fuzzer: every operation but the endless event stream, a few
    // examples each, with the admin's token; bounded in examples and time.
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, FUZZ_CONFIG).unwrap();
    let out = Command::new(tools.join("st"))
        .arg("--config-file")
        .arg(&config)
        .args(["run", &url, "--header"])
        .arg(format!("Authorization: Bearer {admin}"))
        .args([
            "--exclude-path",
            "/api/events",
            "--max-examples",
            "6",
            "--max-time",
            "30",
            "--workers",
            "1",
            "--seed",
            "1",
            "--request-timeout",
            "70",
            "--no-color",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = printed(&out);
    assert!(
        out.status.success(),
        "schemathesis found mismatches:\n{said}"
    );
    assert!(!said.contains("FAILED"), "{said}");
}

/// An answer's status, content type, `WWW-Authenticate` and body.
struct Answer {
    status: u16,
    content_type: String,
    challenge: Option<String>,
    body: String,
}

fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", server.url);
    let auth = token.map(|t| format!("Bearer {t}"));
    let answer = match (method, body) {
        ("GET", _) => {
            let mut get = agent.get(&url);
            if let Some(auth) = &auth {
                get = get.header("Authorization", auth);
            }
            get.call()
        }
        (_, body) => {
            let mut post = agent.post(&url);
            if let Some(auth) = &auth {
                post = post.header("Authorization", auth);
            }
            match body {
                Some((kind, text)) => post.header("Content-Type", kind).send(text),
                None => post.send_empty(),
            }
        }
    };
    let mut answer = answer.unwrap();
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let challenge = header("www-authenticate");
    Answer {
        status: answer.status().as_u16(),
        content_type,
        challenge,
        body: answer.body_mut().read_to_string().unwrap(),
    }
}

#[test]
fn every_refusal_is_json_escaped_and_a_401_names_the_bearer_scheme() {
    let dir = folders();
    let server = Server::start(dir.path());
    let admin = server.admin();
    let json = "application/json";
    let refused = |answer: &Answer, status: u16, says: &str| {
        assert_eq!(answer.status, status, "{}", answer.body);
        assert!(
            answer.content_type.starts_with(json),
            "{}: {}",
            answer.content_type,
            answer.body
        );
        let body: Value =
            serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body));
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
        assert!(error.contains(says), "{error} should say {says}");
        // Its kind, whose status the refusal table gives.
        let kind: Kind = serde_json::from_value(body["kind"].clone()).unwrap();
        assert_eq!(kind.row().http.as_u16(), status, "{body}");
        assert_eq!(body["status"], status, "{body}");
    };

    // No token, or one nobody holds: 401 naming the Bearer scheme.
    for token in [None, Some("0".repeat(64))] {
        let answer = send(&server, "GET", "/api/runways", token.as_deref(), None);
        refused(&answer, 401, "bearer token");
        let challenge = answer.challenge.unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "WWW-Authenticate: {challenge:?}"
        );
    }

    // The framework's own refusals: bad JSON, a wrong content type, JSON
    // of the wrong shape, a query or path that does not parse, no route.
    let wait = "/api/wait";
    let admin = Some(admin.as_str());
    refused(
        &send(
            &server,
            "POST",
            wait,
            admin,
            Some((json, "{\"runways\": [")),
        ),
        400,
        "not JSON",
    );
    refused(
        &send(&server, "POST", wait, admin, Some(("text/plain", "{}"))),
        415,
        "application/json",
    );
    refused(
        &send(&server, "POST", wait, admin, Some((json, "{}"))),
        422,
        "runways",
    );
    refused(
        &send(&server, "POST", "/api/resume", admin, Some((json, "[]"))),
        422,
        "object",
    );
    refused(
        &send(
            &server,
            "POST",
            "/api/runways",
            admin,
            Some(("image/png", "x")),
        ),
        415,
        "application/toml",
    );
    refused(
        &send(&server, "GET", "/api/runways?state=NOPE", admin, None),
        400,
        "NOPE",
    );
    refused(
        &send(&server, "GET", "/api/audit/proof/minus-one", admin, None),
        400,
        "",
    );
    refused(
        &send(&server, "GET", "/api/nowhere", admin, None),
        404,
        "no such route",
    );
    // Bounds the description states are enforced.
    let long = format!("{{\"runways\": [], \"timeout_secs\": {}}}", u32::MAX);
    refused(
        &send(&server, "POST", wait, admin, Some((json, &long))),
        400,
        "timeout_secs",
    );
    refused(
        &send(
            &server,
            "POST",
            "/api/runways/x/reject",
            admin,
            Some((json, "{}")),
        ),
        422,
        "reason",
    );

    // What the description allows is taken: a move's body may be null or
    // left out.
    for body in [Some((json, "null")), None] {
        let answer = send(&server, "POST", "/api/pause", admin, body);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(
        send(&server, "POST", "/api/resume", admin, Some((json, "{}"))).status,
        200
    );

    // A caller's text is escaped where it is echoed: the id's U+202E
    // comes back as `\u{202e}`, never as the character itself.
    let answer = send(
        &server,
        "GET",
        "/api/runways/abc%E2%80%AEgpj.exe",
        admin,
        None,
    );
    refused(&answer, 404, "abc\\u{202e}gpj.exe");
    assert!(!answer.body.contains('\u{202e}'), "{}", answer.body);
}
