//! `runway audit show | verify`: offline, with nothing but the audit folder.

use clap::Subcommand;
use runway_audit::{Event, Record, VerifyReport};

use super::{AUDIT_BAD, AuditDir, Failure};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the timeline, optionally filtered.
    Show {
        #[command(flatten)]
        dir: AuditDir,
        /// Only records about this dataset.
        #[arg(long)]
        dataset: Option<String>,
        /// Only records of this runway.
        #[arg(long)]
        runway: Option<String>,
        /// Only records of this agent.
        #[arg(long)]
        agent: Option<String>,
        /// Host calls too, not only state changes.
        #[arg(long)]
        calls: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Check every frame, sequence number and hash chain; exit 0 when intact,
    /// 3 naming the first bad record otherwise.
    Verify {
        #[command(flatten)]
        dir: AuditDir,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: AuditCommand) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Show {
            dir,
            dataset,
            runway,
            agent,
            calls,
            json,
        } => {
            let records =
                runway_audit::read_records(&dir.path).map_err(|e| Failure::new(AUDIT_BAD, e))?;
            let keep = |r: &Record| {
                let e = &r.entry;
                dataset.as_ref().is_none_or(|d| e.dataset.as_ref() == Some(d))
                    && runway.as_ref().is_none_or(|w| &e.runway == w)
                    && agent.as_ref().is_none_or(|a| &e.agent == a)
                    // A dataset's timeline includes the calls on it.
                    && (calls || dataset.is_some() || !matches!(e.event, Event::Call { .. }))
            };
            for r in records.iter().filter(|r| keep(r)) {
                if json {
                    println!("{}", runway_audit::record_json(r));
                } else {
                    println!("{}", runway_audit::record_line(r));
                }
            }
            Ok(())
        }
        AuditCommand::Verify { dir, json } => {
            let report = runway_audit::verify(&dir.path).map_err(|e| Failure::new(AUDIT_BAD, e))?;
            print_report(&report, json);
            Ok(())
        }
    }
}

pub fn print_report(report: &VerifyReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    } else {
        println!("{report}");
    }
}
