//! `runway run [PLAN]`: run a plan to its end, printing the timeline.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use runway_audit::render::{escape, excerpt};
use runway_audit::{Entry, Trust, VerifyOptions};

use super::host_args::{HostArgs, timeline_line, timeline_printer, tokio};
use super::progress::Progress;
use super::{AUDIT_BAD, BAD_INPUT, Failure, HOST_FAULT, RUNWAY_FAILED};
use crate::controller::plan::rejection;
use crate::controller::start::PluginSource;
use crate::controller::{self, Filing};
use crate::sandbox::Observer;
use crate::{DispatchOptions, Plan, Plugins, State, bundled};

/// Most characters of a runway's output on the summary
/// line (escaped; a cut one ends in `…`).
const SUMMARY_CHARS: usize = 200;
/// Most lines of a failed run's stderr shown after the summary.
const STDERR_LINES: usize = 20;

#[derive(Args)]
pub struct RunArgs {
    /// Plan file (TOML). Default: the embedded nightly student-aid plan.
    plan: Option<PathBuf>,
    /// Plugins folder (`NAME.wasm` + `NAME.toml`). Default: the embedded
    /// nightly agents.
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
    /// Print the final report as JSON instead of the timeline.
    #[arg(long)]
    json: bool,
    /// Skip verifying the audit trail at the end.
    #[arg(long)]
    no_verify: bool,
}

pub fn run(args: RunArgs) -> Result<(), Failure> {
    let fault = |e: anyhow::Error| Failure::new(HOST_FAULT, e);
    let bad = |e: anyhow::Error| Failure::new(BAD_INPUT, e);
    let runtime = args.host.runtime()?;
    let caps = args.host.caps();
    let plugins = match &args.plugins {
        Some(dir) => Plugins::load_dir_with(&runtime, dir, &args.host.policy()?, &caps),
        None => Plugins::from_bytes(&runtime, bundled::EMBEDDED_PLUGINS.iter().copied()),
    }
    .map_err(|e| bad(e.into()))?;
    let plugins = Arc::new(plugins);
    let (opened, signer) = args.host.open(
        &runtime,
        PluginSource::Loaded(plugins.clone()),
        0,
        &crate::store::StoreConfig::Embedded,
    )?;
    let (host, audit) = (opened.host.clone(), opened.host.audit.clone());
    let (plan, source) = match &args.plan {
        Some(path) => (
            Plan::read(path, &*plugins, &caps),
            format!("runway run {}", path.display()),
        ),
        None => (
            Plan::parse(bundled::NIGHTLY_PLAN, &*plugins)
                .map(|p| (p, runway_audit::sha256(bundled::NIGHTLY_PLAN.as_bytes()))),
            "runway run (the embedded nightly plan)".to_string(),
        ),
    };
    let (plan, digest) = match plan {
        Ok(read) => read,
        Err(e) => {
            // A refused filing is on the record too.
            let entry = rejection(&e.to_string());
            audit
                .append(entry)
                .and_then(|_| audit.sync())
                .map_err(|e| fault(e.into()))?;
            return Err(bad(e.into()));
        }
    };
    let progress = Progress::when_watched(plan.manifests.len(), args.json).map(Arc::new);
    let observer: Observer = match &progress {
        _ if args.json => Arc::new(|_: &Entry| {}),
        // The timeline scrolls above the bars.
        Some(progress) => {
            let progress = progress.clone();
            Arc::new(move |entry: &Entry| {
                progress.println(&timeline_line(entry));
                progress.follow(entry);
            })
        }
        None => timeline_printer(),
    };
    let started = std::time::Instant::now();
    let opts = DispatchOptions {
        observer,
        ..DispatchOptions::default()
    };
    let filing = Filing {
        plan,
        by: "runway run".into(),
        source,
        digest,
        once: false,
    };
    // The controller `serve` runs, embedded for this one plan.
    let report = tokio()?
        .block_on(controller::run_embedded(host, opts, filing))
        .map_err(|e| fault(e.into()))?;
    let elapsed = started.elapsed();
    if let Some(progress) = &progress {
        progress.finish();
    }
    audit.sync().map_err(|e| fault(e.into()))?;

    let audit_dir = &args.host.audit.path;
    let verified = if args.no_verify {
        None
    } else {
        // Signatures included, against the key that signed them here.
        let options = match signer {
            Some(key) => VerifyOptions::from(Trust::single(key)),
            None => VerifyOptions::default(),
        };
        let verified = runway_audit::verify_with(audit_dir, &options);
        Some(verified.map_err(|e| Failure::new(AUDIT_BAD, e))?)
    };
    if args.json {
        let mut out = crate::api::views::plan(&report);
        out["seconds"] = serde_json::json!(elapsed.as_secs_f64());
        out["audit"] = serde_json::json!(verified);
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!();
        // One column of ids: 12 wide, or as wide as the longest id.
        let ids: Vec<_> = report.runways.iter().map(|r| escape(&r.id)).collect();
        let width = ids.iter().map(|id| id.chars().count()).fold(12, usize::max);
        for (r, id) in report.runways.iter().zip(&ids) {
            // Guest text: escaped and cut, so it cannot drive the terminal.
            // A runway that did not succeed says why (the timeline above
            // may have scrolled away).
            let detail = match (&r.reason, &r.output) {
                (Some(why), _) => excerpt(why, SUMMARY_CHARS),
                (None, Some(out)) => excerpt(&String::from_utf8_lossy(out), SUMMARY_CHARS),
                (None, None) => String::new(),
            };
            println!("{id:<width$} {:<10} {detail}", r.state.name());
        }
        // What a failed run printed (a Python traceback, a Rust panic
        // message) is how its author finds out why: its last lines, escaped.
        for r in report
            .runways
            .iter()
            .filter(|r| r.state != State::Succeeded)
        {
            let Some(run) = &r.run else { continue };
            let stderr = String::from_utf8_lossy(&run.stderr);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = &lines[lines.len().saturating_sub(STDERR_LINES)..];
            if !tail.is_empty() {
                println!(
                    "\n{} wrote to stderr (last {} lines):",
                    escape(&r.id),
                    tail.len()
                );
                for line in tail {
                    println!("  {}", excerpt(line, SUMMARY_CHARS));
                }
            }
        }
        println!(
            "\n{} runways, {} failed, {:.2} s",
            report.runways.len(),
            report.failed(),
            elapsed.as_secs_f64()
        );
        if let Some(v) = &verified {
            println!("audit {}: {v}", audit_dir.display());
        }
    }
    if report.failed() > 0 {
        return Err(Failure::new(
            RUNWAY_FAILED,
            anyhow::anyhow!(
                "{} of {} runways failed",
                report.failed(),
                report.runways.len()
            ),
        ));
    }
    Ok(())
}
