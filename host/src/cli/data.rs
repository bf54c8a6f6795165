//! `runway data list | get | export`: what the datasets hold and who wrote
//! it, read-only, beside a host that may be running on the same data root.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use runway_audit::hex;
use runway_audit::render::escape;
use serde_json::{Value, json};

use super::{BAD_INPUT, Failure, HOST_FAULT};
use crate::names;
use crate::store::{DatasetStore, Provenance};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Datasets with their record counts and fences.
    List {
        #[command(flatten)]
        root: DataRoot,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One record's value; with --provenance, who wrote it and how to prove it.
    Get {
        dataset: String,
        key: String,
        #[command(flatten)]
        root: DataRoot,
        /// Also print the writer (runway, agent, plugin digest, token, audit
        /// seq) and the `runway audit prove` command that proves the write.
        #[arg(long)]
        provenance: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every record of a dataset, one JSON object per line.
    Export {
        dataset: String,
        #[command(flatten)]
        root: DataRoot,
        /// One JSON object per line (the only format; accepted for scripts
        /// that say so).
        #[arg(long)]
        jsonl: bool,
    },
}

#[derive(clap::Args)]
pub struct DataRoot {
    /// Data root holding the datasets.
    #[arg(long, value_name = "DIR", default_value = "runway-data")]
    data: PathBuf,
}

pub fn run(cmd: DataCommand) -> Result<(), Failure> {
    let open = |root: &DataRoot| {
        DatasetStore::open_read_only(&root.data).map_err(|e| Failure::new(HOST_FAULT, e))
    };
    let fault = |e: crate::store::StoreError| Failure::new(HOST_FAULT, e);
    let mut out = std::io::stdout().lock();
    let mut print = |line: String| writeln!(out, "{line}").map_err(|e| Failure::new(HOST_FAULT, e));
    match cmd {
        DataCommand::List { root, json } => {
            let datasets = open(&root)?.datasets().map_err(fault)?;
            if json {
                return print(json!(datasets).to_string());
            }
            print(format!(
                "{:<32} {:>10} {:>8}",
                "dataset", "records", "fence"
            ))?;
            for d in datasets {
                print(format!("{:<32} {:>10} {:>8}", d.name, d.records, d.fence))?;
            }
            Ok(())
        }
        DataCommand::Get {
            dataset,
            key,
            root,
            provenance,
            json,
        } => {
            check(&dataset, &key)?;
            let store = open(&root)?;
            let Some(value) = store.read(&dataset, &key).map_err(fault)? else {
                return Err(Failure::new(
                    BAD_INPUT,
                    anyhow::anyhow!("{dataset}/{key}: no such record"),
                ));
            };
            let writer = if provenance {
                store.provenance(&dataset, &key).map_err(fault)?
            } else {
                None
            };
            if json {
                let mut doc =
                    json!({ "dataset": dataset, "key": key, "value": value_json(&value) });
                if let Some(p) = &writer {
                    doc["provenance"] = provenance_json(p);
                }
                return print(doc.to_string());
            }
            print(escape(&String::from_utf8_lossy(&value)).into_owned())?;
            if let Some(p) = writer {
                print(format!(
                    "written by runway {} (agent {}, plugin {}), attempt {}, token {}, audit record {}",
                    escape(&p.runway),
                    escape(&p.agent),
                    &hex::encode(&p.plugin)[..12],
                    p.attempt,
                    p.token,
                    p.audit_seq
                ))?;
                print(format!(
                    "prove it: runway audit prove --seq {}",
                    p.audit_seq
                ))?;
            }
            Ok(())
        }
        DataCommand::Export { dataset, root, .. } => {
            names::check_dataset(&dataset).map_err(|e| Failure::new(BAD_INPUT, e))?;
            let store = open(&root)?;
            for (key, value, p) in store.records(&dataset).map_err(fault)? {
                let doc = json!({
                    "key": key,
                    "value": value_json(&value),
                    "provenance": provenance_json(&p),
                });
                print(doc.to_string())?;
            }
            Ok(())
        }
    }
}

fn check(dataset: &str, key: &str) -> Result<(), Failure> {
    names::check_dataset(dataset).map_err(|e| Failure::new(BAD_INPUT, e))?;
    names::check_key(key).map_err(|e| Failure::new(BAD_INPUT, e))
}

/// A value as JSON: itself when it is JSON, else its text, else hex.
fn value_json(value: &[u8]) -> Value {
    if let Ok(v) = serde_json::from_slice::<Value>(value) {
        return v;
    }
    match std::str::from_utf8(value) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => json!({ "hex": hex::encode(value) }),
    }
}

fn provenance_json(p: &Provenance) -> Value {
    json!({
        "runway": p.runway,
        "agent": p.agent,
        "plugin": hex::encode(&p.plugin),
        "attempt": p.attempt,
        "token": p.token,
        "audit_seq": p.audit_seq,
        "prove": format!("runway audit prove --seq {}", p.audit_seq),
    })
}
