//! `runway run [PLAN]`: run a plan to its end, printing the timeline.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use runway_audit::{AuditLog, AuditOptions, Entry, Event};
use runway_host::{
    DatasetStore, DispatchOptions, Host, Plan, Plugins, Runtime, RunwayState, bundled,
};

use super::{AuditDir, BAD_INPUT, Failure, HOST_FAULT, RUNWAY_FAILED};

#[derive(Args)]
pub struct RunArgs {
    /// Plan file (TOML). Default: the embedded nightly student-aid plan.
    plan: Option<PathBuf>,
    /// Plugins folder (`NAME.wasm`). Default: the embedded nightly agents.
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Data root holding the datasets.
    #[arg(long, value_name = "DIR", default_value = "runway-data")]
    data: PathBuf,
    #[command(flatten)]
    audit: AuditDir,
    /// Most runs at once (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
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
    let runtime = Runtime::new().map_err(|e| fault(e.into()))?;
    let plugins = match &args.plugins {
        Some(dir) => Plugins::load_dir(&runtime, dir),
        None => Plugins::from_bytes(&runtime, bundled::EMBEDDED_PLUGINS.iter().copied()),
    }
    .map_err(|e| bad(e.into()))?;
    let plan = match &args.plan {
        Some(path) => Plan::load(path, &plugins),
        None => Plan::parse(bundled::NIGHTLY_PLAN, &plugins),
    };
    let audit = AuditLog::open(&args.audit.path, AuditOptions::new("runway"))
        .map_err(|e| fault(anyhow::Error::new(e).context("opening the audit trail")))?;
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            // A refused filing is on the record too.
            let entry = Entry {
                runway: String::new(),
                agent: String::new(),
                plugin: None,
                dataset: None,
                event: Event::Rejected {
                    reason: e.to_string(),
                },
            };
            audit
                .append(entry)
                .and_then(|_| audit.sync())
                .map_err(|e| fault(e.into()))?;
            return Err(bad(e.into()));
        }
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let store = DatasetStore::open(&args.data).map_err(|e| fault(e.into()))?;
    let host = Arc::new(Host::new(
        &runtime,
        Arc::new(plugins),
        Arc::new(store),
        audit.clone(),
        workers,
    ));
    let json = args.json;
    let observer = Arc::new(move |entry: &Entry| {
        if !json {
            println!("{}", runway_audit::timeline_line(now_ns(), entry));
        }
    });
    let runtime_tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fault(e.into()))?;
    let started = std::time::Instant::now();
    let report = runtime_tokio
        .block_on(runway_host::run_plan(
            host.clone(),
            plan,
            DispatchOptions { observer },
        ))
        .map_err(|e| fault(e.into()))?;
    let elapsed = started.elapsed();
    audit.sync().map_err(|e| fault(e.into()))?;

    let verified = if args.no_verify {
        None
    } else {
        Some(
            runway_audit::verify(&args.audit.path)
                .map_err(|e| Failure::new(super::AUDIT_BAD, e))?,
        )
    };
    if json {
        let runways: Vec<_> = report
            .runways
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "agent": r.agent,
                    "state": state_name(&r.state),
                    "reason": match &r.state { RunwayState::Failed(why) => Some(why.as_str()), _ => None },
                    "output": r.output.as_ref().map(|o| String::from_utf8_lossy(o).into_owned()),
                    "locks": r.locks.iter().map(|l| serde_json::json!({"dataset": l.dataset, "mode": l.mode.name(), "token": l.token})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "runways": runways,
            "failed": report.failed(),
            "seconds": elapsed.as_secs_f64(),
            "audit": verified,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!();
        for r in &report.runways {
            let detail = match (&r.state, &r.output) {
                (RunwayState::Failed(why), _) => why.clone(),
                (_, Some(out)) => String::from_utf8_lossy(out).into_owned(),
                _ => String::new(),
            };
            println!("{:<12} {:<10} {}", r.id, state_name(&r.state), detail);
        }
        println!(
            "\n{} runways, {} failed, {:.2} s",
            report.runways.len(),
            report.failed(),
            elapsed.as_secs_f64()
        );
        if let Some(v) = &verified {
            println!("audit {}: {v}", args.audit.path.display());
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

fn state_name(s: &RunwayState) -> &'static str {
    match s {
        RunwayState::Queued => "QUEUED",
        RunwayState::Waiting => "WAITING",
        RunwayState::Running => "RUNNING",
        RunwayState::Succeeded => "SUCCEEDED",
        RunwayState::Failed(_) => "FAILED",
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
