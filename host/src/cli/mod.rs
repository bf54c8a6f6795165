//! Command line: `runway run`, `runway serve`, the client verbs of a
//! running server (`file`, `list`, `show`, `approve`, `reject`, `cancel`,
//! `pause`, `resume`, `wait`, `triggers …`), `runway data …`, `runway audit …`,
//! `runway hosts`, `runway keygen`, `runway sign`; for agent authors `runway new agent`
//! and `runway build`.
//!
//! Exit codes (the README's table; `tests/it/exit_codes.rs` checks each):
//! 0 all went well; 1 a runway failed; 2 bad usage or a bad or missing file
//! (plan, plugin, grants, token file), or a request the server refused as
//! bad; 3 the audit trail failed verification; 4 a host fault (I/O, the
//! audit writer stopped, the server unreachable); 5 the server refused the
//! token or what it asked for (401, 403). Every error is printed once.

mod agents;
mod attempts;
mod audit;
mod build;
mod client;
mod data;
mod database;
mod guest_tools;
mod host_args;
mod hosts;
mod keygen;
mod new;
mod plugins;
mod progress;
mod run;
mod serve;
mod sign;
mod token;
mod toolchain;
mod tree;
mod triggers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::api::refusal::Kind;

#[derive(Parser)]
#[command(
    name = "runway",
    version,
    about = "A WebAssembly plugin host for sandboxed agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a plan: file its runways, clear them as dependencies and locks
    /// allow, print the timeline, verify the audit trail.
    Run(run::RunArgs),
    /// Inspect or verify an audit folder (offline).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// What the datasets hold and who wrote it (read-only).
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Run the controller as a server: the HTTP API, a plugins folder
    /// followed, a plans inbox.
    Serve(serve::ServeArgs),
    /// The hosts sharing a PostgreSQL database: role (leader or standby),
    /// term, pid, lease or heartbeat age, runs in flight.
    Hosts(hosts::HostsArgs),
    /// File a plan or manifest with the server; prints the runway ids.
    File(client::FileArgs),
    /// List the server's runways.
    List(client::ListArgs),
    /// One runway: state, history, locks, attempts, output, reason.
    Show(client::ShowArgs),
    /// Approve a runway waiting for approval.
    Approve(client::ApproveArgs),
    /// Reject a runway waiting for approval (its dependents fail).
    Reject(client::RejectArgs),
    /// Cancel a runway (a running one stops within an epoch tick).
    Cancel(client::CancelArgs),
    /// Stop clearing runways (those in the air land).
    Pause(client::ByArgs),
    /// Clear runways again.
    Resume(client::ByArgs),
    /// Wait until runways have ended; exit 1 unless all succeeded.
    Wait(client::WaitArgs),
    /// Each agent's health on the server: runs, success ratio, p50/p95
    /// run time, fuel per run, in flight, last failure, circuit breaker.
    Agents(agents::AgentsArgs),
    /// The server's triggers and schedules: list, show, pause, resume, remove.
    #[command(subcommand)]
    Triggers(triggers::TriggersCommand),
    /// The agents built into this binary, as a plugins folder.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Make a new agent (Rust, Python or JavaScript), ready to build and test.
    #[command(subcommand)]
    New(new::NewCommand),
    /// Build every agent under a folder into a plugins folder.
    Build(build::BuildArgs),
    /// Sign a plugin component as its author (writes NAME.wasm.sig).
    Sign(sign::SignArgs),
    /// The API's tokens: add one (printed once), list, remove.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Make a key pair for signing audit checkpoints.
    Keygen(keygen::KeygenArgs),
    /// Internal: compile a component from stdin to stdout, as the capped
    /// compiler process the host starts (see `runway_host::sandbox::compiler`).
    #[command(name = "__compile", hide = true)]
    Compile,
}

/// Where the audit folder is, with the same default everywhere.
#[derive(clap::Args, Clone)]
pub struct AuditDir {
    /// Audit folder.
    #[arg(long = "audit", value_name = "DIR", default_value = "runway-audit")]
    pub path: PathBuf,
}

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }
}

pub const RUNWAY_FAILED: u8 = 1;
// The codes a refused request also exits with: the refusal table's
// (`crate::api::refusal`), so the table and this list cannot part.
pub const BAD_INPUT: u8 = Kind::BadInput.row().exit;
pub const AUDIT_BAD: u8 = 3;
pub const HOST_FAULT: u8 = Kind::HostFault.row().exit;

/// An error and its causes on one line, each cause once: error types that
/// already quote their source are not followed by it again.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Commands that only print what they read (no agents, no child
/// processes), so a closed pipe may end them.
fn prints_and_ends(command: &Command) -> bool {
    !matches!(
        command,
        Command::Compile
            | Command::Run(_)
            | Command::Serve(_)
            | Command::Build(_)
            | Command::New(_)
    )
}

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: `serve 2> serve.log` stays text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if prints_and_ends(&cli.command) {
        // Like every Unix filter: a reader that goes away (`runway show
        // --json | head`) ends the process quietly. Not for the commands
        // that run agents or children (a compiler dying would take the
        // host with it).
        // SAFETY: SIG_DFL for SIGPIPE, before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Compile => return crate::sandbox::compiler::compile_child(),
        Command::Run(args) => run::run(args),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Data(cmd) => data::run(cmd),
        Command::Serve(args) => serve::run(args),
        Command::Hosts(args) => hosts::run(args),
        Command::File(args) => client::file(args),
        Command::List(args) => client::list(args),
        Command::Show(args) => client::show(args),
        Command::Approve(args) => client::approve(args),
        Command::Reject(args) => client::reject(args),
        Command::Cancel(args) => client::cancel(args),
        Command::Pause(args) => client::pause(args),
        Command::Resume(args) => client::resume(args),
        Command::Wait(args) => client::wait(args),
        Command::Triggers(cmd) => triggers::run(cmd),
        Command::Plugins(cmd) => plugins::run(cmd),
        Command::Agents(args) => agents::run(args),
        Command::New(cmd) => new::run(cmd),
        Command::Build(args) => build::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Token(command) => token::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            // Errors name files and quote names: shown escaped.
            eprintln!(
                "runway: {}",
                runway_audit::render::escape(&describe(&error))
            );
            ExitCode::from(code)
        }
    }
}
