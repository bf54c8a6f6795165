//! `runway serve`: follow a plugins folder and fly the plans dropped into an
//! inbox until Ctrl-C (see `crate::serve`).

use std::path::PathBuf;

use clap::Args;
use runway_audit::render::escape;

use super::host_args::{HostArgs, timeline_printer, tokio};
use super::{Failure, HOST_FAULT};
use crate::watch::PluginFolder;
use crate::{DispatchOptions, Plugins};

#[derive(Args)]
pub struct ServeArgs {
    /// Plugins folder to follow (`NAME.wasm` + `NAME.toml`).
    #[arg(long, value_name = "DIR")]
    plugins: PathBuf,
    /// Drop plan files here; they move to flying/, then done/ (with a
    /// NAME.json report) or rejected/ (with NAME.error.txt).
    #[arg(long, value_name = "DIR", default_value = "runway-inbox")]
    inbox: PathBuf,
    #[command(flatten)]
    host: HostArgs,
}

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let runtime = args.host.runtime()?;
    let audit = args.host.audit()?;
    // The catalog starts empty: the first rescan loads (and audits) the folder.
    let host = args.host.host(&runtime, Plugins::default(), &audit)?;
    let caps = args.host.caps();
    let folder = PluginFolder::new(&args.plugins, runtime.clone())
        .with_policy(args.host.policy()?)
        .with_caps(caps);
    eprintln!(
        "runway: serving {} (plans: {}); Ctrl-C or SIGTERM stops (runs in flight land first)",
        escape(&args.plugins.display().to_string()),
        escape(&args.inbox.display().to_string())
    );
    let opts = DispatchOptions {
        observer: timeline_printer(),
        ..DispatchOptions::default()
    };
    let tokio = tokio()?;
    // SIGTERM (`systemctl stop`, `kill`) stops as Ctrl-C does: no more
    // plans are taken and the runs in flight land before the exit.
    let shutdown = async {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => drop(tokio::signal::ctrl_c().await),
        }
        eprintln!("runway: stopping: no more plans are taken; runs in flight land first");
    };
    tokio
        .block_on(crate::serve::serve(
            host,
            folder,
            &args.inbox,
            caps,
            opts,
            shutdown,
        ))
        .map_err(|e| Failure::new(HOST_FAULT, e))?;
    audit.sync().map_err(|e| Failure::new(HOST_FAULT, e))
}
