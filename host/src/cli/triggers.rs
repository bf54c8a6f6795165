//! `runway triggers list|show|pause|resume|remove`: the server's triggers
//! and schedules, over its API (`/api/triggers`). Triggers are filed in
//! plan files (`[[trigger]]`, see `runway file`).

use clap::{Args, Subcommand};
use runway_audit::render::escape;

use super::Failure;
use super::client::{Client, ServerArgs, act, encode, spend};
use crate::api::triggers::TriggerView;

#[derive(Subcommand)]
pub enum TriggersCommand {
    /// Every trigger: kind, state, firings, next scheduled time.
    List(ListArgs),
    /// One trigger: its `on` table, firings, next five times, runways,
    /// and what the runways it filed spent.
    Show(OneArgs),
    /// Stop firing it (nothing is caught up when it resumes).
    Pause(OneArgs),
    /// Fire it again, from now on.
    Resume(OneArgs),
    /// Remove it for good.
    Remove(OneArgs),
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Args)]
pub struct OneArgs {
    /// The trigger's id.
    id: String,
    #[command(flatten)]
    server: ServerArgs,
}

pub fn run(command: TriggersCommand) -> Result<(), Failure> {
    match command {
        TriggersCommand::List(args) => list(args),
        TriggersCommand::Show(args) => show(args),
        TriggersCommand::Pause(args) => command_on(args, "pause", "paused"),
        TriggersCommand::Resume(args) => command_on(args, "resume", "resumed"),
        TriggersCommand::Remove(args) => command_on(args, "remove", "removed"),
    }
}

fn list(args: ListArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let answer: Vec<TriggerView> = client.call("/api/triggers", None)?;
    client.print(&answer, |list| {
        println!(
            "{:<24} {:<9} {:<7} {:>6}  {:<25} ON",
            "ID", "KIND", "STATE", "FIRED", "NEXT"
        );
        for t in list {
            println!(
                "{:<24} {:<9} {:<7} {:>6}  {:<25} {}",
                escape(&t.id),
                t.kind,
                t.state,
                t.fired,
                t.next.first().map_or("-", String::as_str),
                escape(&t.on.to_string())
            );
        }
        println!("{} trigger(s)", list.len());
    });
    Ok(())
}

fn show(args: OneArgs) -> Result<(), Failure> {
    let client = Client::new(&args.server)?;
    let path = format!("/api/triggers/{}", encode(&args.id));
    let answer: TriggerView = client.call(&path, None)?;
    client.print(&answer, |t| {
        println!("trigger   {}", escape(&t.id));
        println!("on        {}", escape(&t.on.to_string()));
        println!("kind      {}", t.kind);
        println!("state     {}", t.state);
        println!("fired     {}", t.fired);
        let last = t.last_fired.as_deref().unwrap_or("never");
        println!("last      {last}");
        for (i, next) in t.next.iter().enumerate() {
            println!("{:<9} {next}", if i == 0 { "next" } else { "" });
        }
        let runways: Vec<_> = t.runways.iter().map(|r| escape(r)).collect();
        println!("runways   {}", runways.join(", "));
        println!("filed     {} runway(s)", t.filed);
        println!("spent     {}", spend(&t.spent, None));
    });
    Ok(())
}

fn command_on(args: OneArgs, verb: &str, done: &str) -> Result<(), Failure> {
    let path = format!("/api/triggers/{}/{verb}", encode(&args.id));
    let what = format!("trigger {}", args.id);
    act(&args.server, &path, serde_json::json!({}), done, &what)
}
