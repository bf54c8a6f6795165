//! `runway agents`: each agent's health on a running server (`GET
//! /api/agents`): runs, success ratio, p50/p95 run time, fuel per run,
//! what its runs spent (fuel, wall time, bytes committed, since the trail
//! began), runs in the air, its circuit breaker and its last failure.
//! `--json` prints the API's answer.

use clap::Args;
use runway_audit::render::{escape, excerpt};

use super::Failure;
use super::client::{Client, ServerArgs};
use crate::api::agents::AgentList;
use crate::controller::AgentHealth;

#[derive(Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(args: AgentsArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let answer: AgentList = client.call("/api/agents", None)?;
    client.print(&answer, |list| {
        println!(
            "{:<24} {:>6} {:>6} {:>8} {:>8} {:>14} {:>16} {:>10} {:>12} {:>6}  BREAKER",
            "AGENT",
            "RUNS",
            "OK %",
            "P50 MS",
            "P95 MS",
            "FUEL/RUN",
            "FUEL",
            "WALL MS",
            "BYTES",
            "IN AIR"
        );
        for a in &list.agents {
            println!("{}", line(a));
            if let Some(f) = &a.last_failure {
                println!(
                    "{:<24} last failure {} at {}: {}",
                    "",
                    escape(&f.runway),
                    escape(&f.at),
                    excerpt(&f.reason, 80)
                );
            }
        }
        println!("{} agent(s)", list.agents.len());
    });
    Ok(())
}

/// One agent's row.
fn line(a: &AgentHealth) -> String {
    let or_dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let ratio = a
        .success_ratio
        .map_or("-".to_string(), |r| format!("{:.1}", r * 100.0));
    let breaker = match &a.breaker_until {
        Some(until) => format!("{} until {}", escape(&a.breaker), escape(until)),
        None => escape(&a.breaker).into_owned(),
    };
    format!(
        "{:<24} {:>6} {:>6} {:>8} {:>8} {:>14} {:>16} {:>10} {:>12} {:>6}  {breaker}",
        escape(&a.agent),
        a.runs,
        ratio,
        or_dash(a.p50_ms),
        or_dash(a.p95_ms),
        or_dash(a.fuel_per_run),
        a.spent.fuel,
        a.spent.wall_ms,
        a.spent.bytes,
        a.in_flight,
    )
}
