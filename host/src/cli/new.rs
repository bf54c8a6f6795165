//! `runway new agent NAME [--lang rust|python|js]`: a ready agent folder —
//! the agent, its grants (`grants.toml`), a plan that runs it (`plan.toml`),
//! a native unit test, a README — that `runway build` turns into a plugin.
//!
//! A Rust agent gets the SDK and the WIT vendored under `vendor/`, so it
//! builds offline and outside this repository. Python and JavaScript agents
//! get the WIT (`wit/agent.wit`), the contract their toolchains bind to.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::{BAD_INPUT, Failure};
use crate::{bundled, files, names};

#[derive(Subcommand)]
pub enum NewCommand {
    /// Make a new agent folder NAME (in --dir) ready to build, test and run.
    Agent(NewAgentArgs),
}

#[derive(Args)]
pub struct NewAgentArgs {
    /// The agent's name: its folder, its plugin file stem, what plans call it.
    name: String,
    /// The language it is written in.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// The folder to make it in.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

/// The languages an agent can be written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// One file of a template: its path in the new folder and its text, with
/// `{{name}}`, `{{type}}`, `{{dataset}}`, `{{memory_mib}}` and `{{fuel}}` to
/// fill in.
type Template = &'static [(&'static str, &'static str)];

const RUST: Template = &[
    ("Cargo.toml", include_str!("scaffold/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("scaffold/rust/src/lib.rs")),
    ("README.md", include_str!("scaffold/rust/README.md")),
    (".gitignore", "target/\nplugins/\nrunway-*/\n"),
];

const PYTHON: Template = &[
    ("app.py", include_str!("scaffold/python/app.py")),
    ("README.md", include_str!("scaffold/python/README.md")),
    (".gitignore", "plugins/\nrunway-*/\n__pycache__/\n"),
];

const JS: Template = &[
    ("agent.js", include_str!("scaffold/js/agent.js")),
    ("README.md", include_str!("scaffold/js/README.md")),
    (".gitignore", "plugins/\nrunway-*/\nnode_modules/\n"),
];

/// Every language's grants and plan.
const COMMON: Template = &[
    ("grants.toml", include_str!("scaffold/grants.toml")),
    ("plan.toml", include_str!("scaffold/plan.toml")),
];

pub fn run(cmd: NewCommand) -> Result<(), Failure> {
    match cmd {
        NewCommand::Agent(args) => new_agent(&args),
    }
}

fn new_agent(args: &NewAgentArgs) -> Result<(), Failure> {
    let bad = |e: String| Failure::new(BAD_INPUT, anyhow::anyhow!(e));
    let name = &args.name;
    names::check_agent(name).map_err(|e| bad(e.to_string()))?;
    if args.lang == Lang::Rust && !is_crate_name(name) {
        return Err(bad(format!(
            "agent name {name:?} is not a Rust crate name: start with a letter; letters, digits, '_' and '-' only"
        )));
    }
    let root = args.dir.join(name);
    // Made here, never reused: nothing of an author's is overwritten.
    std::fs::create_dir(&root).map_err(|e| {
        bad(match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} exists; choose another name or --dir", root.display())
            }
            _ => format!("cannot make {}: {e}", root.display()),
        })
    })?;
    // Limits from the summary agent's measured needs (README, "Python and
    // JavaScript"): an interpreter or engine lives in the linear memory of
    // its component (13 MiB at least for Python, 10–24 for JavaScript), and
    // SpiderMonkey interprets, burning about 250,000 fuel per record read.
    let (template, memory_mib, fuel) = match args.lang {
        Lang::Rust => (RUST, 16, "10_000_000_000"),
        Lang::Python => (PYTHON, 64, "10_000_000_000"),
        Lang::Js => (JS, 64, "100_000_000_000"),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("{{dataset}}", &format!("{}_data", name.replace('-', "_")))
            .replace("{{memory_mib}}", &memory_mib.to_string())
            .replace("{{fuel}}", fuel)
    };
    let mut written = Vec::new();
    for (path, text) in template.iter().chain(COMMON) {
        write(&root, path, fill(text).as_bytes()).map_err(&bad)?;
        written.push(*path);
    }
    // The contract, and for Rust the SDK that binds it.
    for (path, text) in bundled::SDK_FILES {
        let path = match args.lang {
            Lang::Rust => format!("vendor/{path}"),
            _ if path.starts_with("wit/") => path.to_string(),
            _ => continue,
        };
        write(&root, &path, text.as_bytes()).map_err(&bad)?;
    }
    println!(
        "made {} ({:?}): {}",
        root.display(),
        args.lang,
        written.join(", ")
    );
    println!("next:");
    println!("  cd {}", root.display());
    if args.lang == Lang::Rust {
        println!("  cargo test                              # unit tests, natively");
    }
    println!(
        "  runway build                            # plugins/{name}.wasm + plugins/{name}.toml"
    );
    println!("  runway run plan.toml --plugins plugins  # run it, verify the audit");
    Ok(())
}

/// Writes `text` at `root/path`, making folders on the way.
fn write(root: &Path, path: &str, text: &[u8]) -> Result<(), String> {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot make {}: {e}", parent.display()))?;
    }
    files::replace(&full, text, 0o644).map_err(|e| e.to_string())
}

fn is_crate_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `my-agent` → `MyAgent`: the agent's Rust type.
fn type_name(name: &str) -> String {
    name.split(['-', '_', '.'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("demo"), "Demo");
        assert_eq!(type_name("my-agent_2"), "MyAgent2");
    }

    #[test]
    fn crate_names_start_with_a_letter() {
        assert!(is_crate_name("demo-2"));
        assert!(!is_crate_name("2demo"));
        assert!(!is_crate_name("a.b"));
    }
}
