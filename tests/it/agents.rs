//! Agent authors' side: the SDK's native test harness and the real host
//! agree on the same agent (`plugins/summary`): same output, same record
//! written, same log, same denials.

use runway_host::State;
use runway_sdk::LockMode::{Exclusive, Shared};
use runway_sdk::testing::{Run, TestHost};
use runway_tests::{Fixture, output};

use crate::cli::runway_with;
use summary::Summary;

/// A host whose `test_apps` holds 25 imported applications.
fn seeded() -> Fixture {
    let f = Fixture::new();
    let report = f.run(
        r#"
        [[runway]]
        id = "seed"
        agent = "import-applications"
        datasets = { test_apps = "exclusive" }
        input = { count = 25 }
        "#,
    );
    assert_eq!(report.get("seed").unwrap().state, State::Succeeded);
    f
}

/// The same runway, natively: runway id, input, locks and `test_apps`'s
/// records as the real host has them.
fn native(f: &Fixture, id: &str, locks: &[(&str, runway_sdk::LockMode)]) -> (TestHost, Run) {
    let mut host = TestHost::new()
        .runway(id)
        .input(serde_json::json!({ "source": "test_apps", "target": "test_stats" }));
    for (key, value) in f.snapshot("test_apps") {
        host = host.raw_record("test_apps", &key, &value);
    }
    for &(dataset, mode) in locks {
        host = host.lock(dataset, mode);
    }
    let run = host.run::<Summary>();
    (host, run)
}

fn plan(locks: &str) -> String {
    format!(
        "[[runway]]\nid = \"sum\"\nagent = \"summary\"\ndatasets = {{ {locks} }}\n\
         input = {{ source = \"test_apps\", target = \"test_stats\" }}\n"
    )
}

#[test]
fn the_harness_and_the_host_agree_on_a_run() {
    let f = seeded();
    let report = f.run(&plan(r#"test_apps = "shared", test_stats = "exclusive""#));
    let real = report.get("sum").unwrap();
    assert_eq!(real.state, State::Succeeded, "{:?}", real.reason);

    let (host, run) = native(
        &f,
        &real.id,
        &[("test_apps", Shared), ("test_stats", Exclusive)],
    );
    let counts: serde_json::Value = run.json();
    assert_eq!(counts["records"], 25);
    assert_eq!(output(&report, "sum"), counts, "same output");
    assert_eq!(
        real.output.as_deref(),
        run.output.as_deref().ok(),
        "same bytes"
    );
    assert_eq!(
        f.snapshot("test_stats"),
        [(
            "summary".to_string(),
            host.read("test_stats", "summary").unwrap().to_vec()
        )],
        "same record written"
    );
    let real_log = &real.run.as_ref().expect("its run's report").log.lines;
    let native_log: Vec<String> = run
        .logs
        .iter()
        .map(|(level, m)| format!("{level:?} {m}"))
        .collect();
    assert_eq!(real_log, &native_log, "same log");
}

#[test]
fn the_harness_and_the_host_deny_alike() {
    let f = seeded();
    let cases: [(&str, &[(&str, runway_sdk::LockMode)]); 2] = [
        // No lock on the source: reading it is denied.
        (r#"test_stats = "exclusive""#, &[("test_stats", Exclusive)]),
        // The target held shared: writing it is denied.
        (
            r#"test_apps = "shared", test_stats = "shared""#,
            &[("test_apps", Shared), ("test_stats", Shared)],
        ),
    ];
    for (real_locks, native_locks) in cases {
        let report = f.run(&plan(real_locks));
        let real = report.get("sum").unwrap();
        assert_eq!(real.state, State::Failed, "{real_locks}");
        let (host, run) = native(&f, &real.id, native_locks);
        let denied = run.error();
        assert!(matches!(denied, runway_sdk::Error::Denied(_)), "{denied}");
        assert_eq!(
            real.reason.as_deref(),
            Some(format!("agent returned error: {denied}").as_str()),
            "{real_locks}: the same denial, word for word"
        );
        assert!(
            f.snapshot("test_stats").is_empty(),
            "{real_locks}: nothing landed"
        );
        assert!(
            host.keys("test_stats").is_empty(),
            "{real_locks}: nothing landed natively"
        );
    }
}

/// Where `runway build` installs the guest toolchains: kept across runs.
pub(crate) const TOOLS: &[(&str, &str)] = &[(
    "RUNWAY_TOOLS",
    concat!(env!("CARGO_TARGET_TMPDIR"), "/guest-tools"),
)];

/// `runway build` of the Python and JavaScript summaries (their toolchains
/// installed on first use into a cache kept across runs) into `plugins`,
/// beside the Rust summary and the importer.
pub(crate) fn polyglot_plugins(dir: &std::path::Path) -> std::path::PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    runway_tests::drop_plugin("import-applications", &plugins);
    runway_tests::drop_plugin("summary", &plugins);
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins");
    for agent in ["summary-py", "summary-js"] {
        let (source, out) = (format!("{repo}/{agent}"), plugins.display().to_string());
        let built = runway_with(dir, &["build", &source, "--out", &out], TOOLS);
        assert_eq!(built.code, 0, "{agent}: {}{}", built.stdout, built.stderr);
        assert!(
            built.stdout.contains(&format!("{agent}.wasm")),
            "{}",
            built.stdout
        );
        assert!(
            !std::path::Path::new(&source).join("__pycache__").exists(),
            "{agent}: the build leaves its sources as they were"
        );
    }
    plugins
}

/// `runway run PLAN --json`: each runway's state and its output or reason,
/// by plan-local name.
fn run_json(dir: &std::path::Path, plan: &str) -> Vec<(String, String, String)> {
    std::fs::write(dir.join("plan.toml"), plan).unwrap();
    let out = crate::cli::runway(dir, &["run", "plan.toml", "--plugins", "plugins", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    let runways = report["runways"].as_array().expect("runways").iter();
    runways
        .map(|r| {
            let said = r["output"].as_str().or(r["reason"].as_str()).unwrap_or("");
            // Runway ids differ; what the host says of each must not.
            let said = said.replace(r["id"].as_str().unwrap(), "ID");
            let state = r["state"].as_str().unwrap().to_string();
            (r["name"].as_str().unwrap().to_string(), state, said)
        })
        .collect()
}

#[test]
fn the_python_and_javascript_summaries_agree_with_the_rust_one() {
    let dir = tempfile::tempdir().unwrap();
    polyglot_plugins(dir.path());
    let agents = ["summary", "summary-py", "summary-js"];
    let mut plan = String::from(
        "[[runway]]\nid = \"seed\"\nagent = \"import-applications\"\n\
         datasets = { test_apps = \"exclusive\" }\ninput = { count = 40 }\n",
    );
    for agent in agents {
        plan += &format!(
            "[[runway]]\nid = \"{agent}\"\nagent = \"{agent}\"\nafter = [\"seed\"]\n\
             datasets = {{ test_apps = \"shared\", test_{agent}_out = \"exclusive\" }}\n\
             input = {{ source = \"test_apps\", target = \"test_{agent}_out\" }}\n"
        );
    }
    let ran = run_json(dir.path(), &plan);
    let summaries: Vec<&(String, String, String)> = ran.iter().skip(1).collect();
    assert!(
        summaries.iter().all(|(_, state, _)| state == "SUCCEEDED"),
        "{ran:?}"
    );
    let rust = &summaries[0].2;
    assert!(rust.starts_with(r#"{"records":40,"bytes":"#), "{rust}");
    for (agent, _, output) in &summaries {
        assert_eq!(
            output, rust,
            "{agent}: the same summary as the Rust agent's"
        );
    }

    // The same denials, word for word: no lock on the source; the target
    // held shared; a missing input field.
    let cases = [
        "datasets = { test_out = \"exclusive\" }\ninput = { source = \"test_apps\", target = \"test_out\" }",
        "datasets = { test_apps = \"shared\", test_out = \"shared\" }\ninput = { source = \"test_apps\", target = \"test_out\" }",
        "datasets = { test_apps = \"shared\" }\ninput = { source = \"test_apps\" }",
    ];
    for case in cases {
        let plan: String = agents
            .iter()
            .map(|a| format!("[[runway]]\nid = \"{a}\"\nagent = \"{a}\"\n{case}\n"))
            .collect();
        let ran = run_json(dir.path(), &plan);
        assert!(
            ran.iter().all(|(_, state, _)| state == "FAILED"),
            "{case}: {ran:?}"
        );
        let said = &ran[0].2;
        assert!(
            said.starts_with("agent returned error: denied: ")
                || said == "agent returned error: invalid: input: missing field `target`",
            "{said}"
        );
        for (agent, _, reason) in &ran {
            assert_eq!(
                reason, &ran[0].2,
                "{agent} is told as the Rust agent is: {case}"
            );
        }
    }

    // `runway new agent --lang python|js`: ready to build and run too.
    for (name, lang) in [("hello-py", "python"), ("hello-js", "js")] {
        let made = crate::cli::runway(dir.path(), &["new", "agent", name, "--lang", lang]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        let agent_dir = dir.path().join(name);
        let built = runway_with(&agent_dir, &["build"], TOOLS);
        assert_eq!(built.code, 0, "{lang}: {}", built.stderr);
        let ran = crate::cli::runway(&agent_dir, &["run", "plan.toml", "--plugins", "plugins"]);
        assert_eq!(ran.code, 0, "{lang}: {}\n{}", ran.stdout, ran.stderr);
        assert!(
            ran.stdout.contains(r#"SUCCEEDED  {"count":1}"#),
            "{lang}: {}",
            ran.stdout
        );
    }
}

#[test]
fn a_missing_toolchain_stops_the_build_with_the_command_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools");
    let tools = tools.to_str().unwrap();
    for (lang, command) in [
        ("python", "python3 -m venv "),
        ("js", "npm install --prefix "),
    ] {
        let name = format!("hello-{lang}");
        let made = crate::cli::runway(dir.path(), &["new", "agent", &name, "--lang", lang]);
        assert_eq!(made.code, 0, "{}", made.stderr);
        // No Python, no Node.js on the PATH.
        let env = [("RUNWAY_TOOLS", tools), ("PATH", "/nonexistent")];
        let built = runway_with(&dir.path().join(&name), &["build"], &env);
        assert_eq!(built.code, 2, "{}", built.stderr);
        let errors: Vec<&str> = built
            .stderr
            .lines()
            .filter(|l| l.starts_with("runway: "))
            .collect();
        assert_eq!(errors.len(), 1, "{}", built.stderr);
        assert!(
            errors[0].contains("could not be installed; run: ") && errors[0].contains(command),
            "{lang}: {}",
            errors[0]
        );
    }
}
