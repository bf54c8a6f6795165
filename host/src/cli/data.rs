//! `runway data list | get | export`: what the datasets hold and who wrote
//! it, read-only, beside a host that may be running on the same data root
//! or PostgreSQL database (`--database-file` / RUNWAY_DATABASE_URL, as
//! `runway serve` takes them).
//!
//! A record's provenance ties its value to the audit record of its write:
//! the value's SHA-256, the write's `args` digest recomputed from the
//! dataset, key and value (`digest_parts`, the sandbox's one definition:
//! SHA-256 over each part preceded by its length as a little-endian u64),
//! and that record's own digests read from the audit folder. A value whose
//! recomputed digest differs from its record's is reported (exit 3).

use std::io::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use runway_audit::hex;
use runway_audit::render::escape;
use runway_audit::{Event, Record};
use serde_json::{Value, json};

use super::database::store_config;
use super::{AUDIT_BAD, AuditDir, BAD_INPUT, Failure, HOST_FAULT};
use crate::files::ReadCaps;
use crate::names;
use crate::sandbox::hostcalls::digest_parts;
use crate::store::{DatasetStore, Provenance, StoreConfig};

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
        /// seq), the value's SHA-256, the write's args digest recomputed
        /// from the value beside the one its audit record holds, and the
        /// `runway audit prove` command that proves the write.
        #[arg(long)]
        provenance: bool,
        /// The audit folder holding the write's record (for --provenance).
        #[command(flatten)]
        audit: AuditDir,
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
    /// Read the datasets from PostgreSQL, as `runway serve --database-file`
    /// keeps them: a file holding the connection string (or the
    /// environment variable RUNWAY_DATABASE_URL). Read-only, beside the
    /// running host: no lock taken, nothing migrated or written.
    #[arg(long, value_name = "FILE")]
    database_file: Option<PathBuf>,
}

pub fn run(cmd: DataCommand) -> Result<(), Failure> {
    let open = |root: &DataRoot| {
        let config = store_config(
            root.database_file.as_deref(),
            &ReadCaps::default(),
            crate::controller::LEASE,
        )?;
        match config {
            StoreConfig::Embedded => DatasetStore::open_read_only(&root.data),
            StoreConfig::Postgres { url, .. } => DatasetStore::open_postgres_read_only(&url),
        }
        .map_err(|e| Failure::new(HOST_FAULT, e))
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
            audit,
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
            let args = write_args(&dataset, &key, &value);
            let other = writer.as_ref().and_then(|p| other_shard(&audit.path, p));
            let record = match &writer {
                Some(p) if other.is_none() => write_record(&audit.path, p.audit_seq)?,
                _ => None,
            };
            let recorded = record.as_ref().and_then(recorded_digests);
            let matches = recorded.map(|(a, _)| a == args);
            if json {
                let mut doc =
                    json!({ "dataset": dataset, "key": key, "value": value_json(&value) });
                if let Some(p) = &writer {
                    doc["provenance"] = provenance_json(&dataset, &key, &value, p);
                    doc["provenance"]["record"] = record
                        .as_ref()
                        .map_or(Value::Null, runway_audit::record_json);
                    doc["provenance"]["args_match"] = json!(matches);
                }
                print(doc.to_string())?;
            } else {
                print(escape(&String::from_utf8_lossy(&value)).into_owned())?;
            }
            if let Some(p) = writer.filter(|_| !json) {
                let shard = p.shard.as_ref().map_or(String::new(), |s| {
                    format!(" in the shard of host {}", escape(s))
                });
                print(format!(
                    "written by runway {} (agent {}, plugin {}), attempt {}, token {}, audit record {}{shard}",
                    escape(&p.runway),
                    escape(&p.agent),
                    &hex::encode(&p.plugin)[..12],
                    p.attempt,
                    p.token,
                    p.audit_seq
                ))?;
                print(format!(
                    "value sha256 {} ({} bytes)",
                    hex::encode(&runway_audit::sha256(&value)),
                    value.len()
                ))?;
                print(format!(
                    "write args sha256 {} (recomputed from dataset, key and value)",
                    hex::encode(&args)
                ))?;
                match (&record, recorded) {
                    (Some(r), Some((a, result))) => print(format!(
                        "audit record {}: args {} ({}), result {}",
                        r.seq,
                        hex::encode(&a),
                        if a == args {
                            "matches"
                        } else {
                            "DOES NOT MATCH"
                        },
                        hex::encode(&result)
                    ))?,
                    (Some(r), None) => print(format!("audit record {}: not a host call", r.seq))?,
                    (None, _) => match &other {
                        Some(there) => print(format!(
                            "audit record {}: not read (the folder at {} is shard {}; --audit DIR of host {})",
                            p.audit_seq,
                            audit.path.display(),
                            escape(there),
                            escape(p.shard.as_deref().unwrap_or_default())
                        ))?,
                        None => print(format!(
                            "audit record {}: not read (no audit folder at {}; --audit DIR)",
                            p.audit_seq,
                            audit.path.display()
                        ))?,
                    },
                }
                print(format!(
                    "prove it: runway audit prove --seq {}",
                    p.audit_seq
                ))?;
            }
            if matches == Some(false) {
                return Err(Failure::new(
                    AUDIT_BAD,
                    anyhow::anyhow!(
                        "{dataset}/{key}: the value does not match the args digest of its audit record"
                    ),
                ));
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
                    "provenance": provenance_json(&dataset, &key, &value, &p),
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

fn provenance_json(dataset: &str, key: &str, value: &[u8], p: &Provenance) -> Value {
    json!({
        "runway": p.runway,
        "agent": p.agent,
        "plugin": hex::encode(&p.plugin),
        "attempt": p.attempt,
        "token": p.token,
        "audit_seq": p.audit_seq,
        "shard": p.shard,
        "value_sha256": hex::encode(&runway_audit::sha256(value)),
        "args_sha256": hex::encode(&write_args(dataset, key, value)),
        "prove": format!("runway audit prove --seq {}", p.audit_seq),
    })
}

/// The origin of the audit folder at `dir` when it is not the shard that
/// holds `p`'s write record (hosts sharing a database each keep their own).
fn other_shard(dir: &std::path::Path, p: &Provenance) -> Option<String> {
    let shard = p.shard.as_ref()?;
    let origin = runway_audit::segment::folder_origin(dir)?;
    (&origin != shard).then_some(origin)
}

/// The `args` digest of the host call that wrote `value` at `dataset/key`,
/// computed as the sandbox computes it.
fn write_args(dataset: &str, key: &str, value: &[u8]) -> runway_audit::Hash {
    digest_parts(&[dataset.as_bytes(), key.as_bytes(), value])
}

/// Record `seq` of the audit folder `dir`; `None` when there is no audit
/// folder there.
fn write_record(dir: &std::path::Path, seq: u64) -> Result<Option<Record>, Failure> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut found = None;
    runway_audit::for_each_record(dir, 1, |r| {
        if r.seq == seq {
            found = Some(r);
        }
    })
    .map_err(|e| {
        Failure::new(
            AUDIT_BAD,
            anyhow::Error::new(e).context(dir.display().to_string()),
        )
    })?;
    found.map(Some).ok_or_else(|| {
        Failure::new(
            AUDIT_BAD,
            anyhow::anyhow!("{}: no audit record {seq}", dir.display()),
        )
    })
}

/// A host call record's `args` and `result` digests.
fn recorded_digests(record: &Record) -> Option<(runway_audit::Hash, runway_audit::Hash)> {
    match &record.entry.event {
        Event::Call { args, result, .. } => Some((*args, *result)),
        _ => None,
    }
}
