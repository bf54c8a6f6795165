//! `runway audit show | verify | prove | check-proof | export`: offline,
//! with nothing but the audit folder and a public key or trust file
//! (`show --tree` draws a delegation tree: [`super::tree`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args, Subcommand};
use runway_audit::proof_file::{Claim, ProofFile};
use runway_audit::{Event, Record, Shard, SignedCheckpoint, Together, VerifyOptions, VerifyReport};

use super::keygen::{auditor_trust, default_origin};
use super::tree;
use super::{AUDIT_BAD, AuditDir, BAD_INPUT, Failure, HOST_FAULT};
use crate::files::{self, FileKind, ReadCaps};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Print the timeline, optionally filtered; records no checkpoint
    /// covers yet end in `(unsigned)` (`"signed": false` in JSON).
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
        /// The delegation tree below this runway instead: each runway under
        /// its parent with its agent, final state, start, end and
        /// duration, and its joins' outcomes.
        #[arg(long, value_name = "ROOT", conflicts_with_all = ["dataset", "runway", "agent", "calls"])]
        tree: Option<String>,
        /// One JSON object per line (with --tree: the tree as one object).
        #[arg(long)]
        json: bool,
    },
    /// Check every frame, sequence number, hash chain, Merkle root and
    /// checkpoint signature; exit 0 when intact, 3 naming the first bad
    /// record or checkpoint otherwise. Given the shards of hosts sharing
    /// a database (`--audit` once per host), verify each, then check them
    /// together: records of deposed terms the shared history never took
    /// are set aside, and each term is led once, each runway filed once
    /// and succeeding at most once, each fencing token granted once, no
    /// two holders of a dataset overlap while one holds it exclusively,
    /// and every COMMITTED has its COMMITTING.
    Verify {
        /// Audit folder; once per shard to check several together.
        #[arg(long = "audit", value_name = "DIR", default_value = "runway-audit")]
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        /// A signed checkpoint you kept from earlier: the log must still
        /// hold everything it covers (catches a rollback). Repeatable.
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
        /// Most records accepted after the last signed checkpoint (a log no
        /// checkpoint covers never verifies). Default: the most the writer
        /// ever leaves durable but unsigned, so the most a crash leaves.
        #[arg(long, value_name = "N", default_value_t = runway_audit::DEFAULT_MAX_UNSIGNED)]
        allow_unsigned_tail: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a proof, with the signed checkpoint it is against: that record
    /// SEQ is in the log (--seq), or that the log of SIZE records is a prefix
    /// of the log now (--from).
    #[command(group(ArgGroup::new("what").required(true).args(["seq", "from"])))]
    Prove {
        #[command(flatten)]
        dir: AuditDir,
        /// Prove that this record is in the log.
        #[arg(long)]
        seq: Option<u64>,
        /// Prove that the log of this many records is a prefix of the log.
        #[arg(long, value_name = "SIZE")]
        from: Option<u64>,
        /// Against the checkpoint of this tree size (default: the latest).
        #[arg(long, value_name = "SIZE")]
        size: Option<u64>,
        /// Write the proof to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check a proof file against its signed checkpoint alone; exit 0 when it
    /// holds, 3 otherwise.
    CheckProof {
        /// The proof file `runway audit prove` wrote.
        proof: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// Check against this signed checkpoint instead of the one in the proof.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// For a consistency proof: a signed checkpoint of the old size you
        /// kept, which the proof's old root must match.
        #[arg(long, value_name = "FILE")]
        old_checkpoint: Option<PathBuf>,
    },
    /// Print every record, verified, for other tools.
    Export {
        #[command(flatten)]
        dir: AuditDir,
        /// One JSON object per line (the only format).
        #[arg(long, required = true)]
        jsonl: bool,
    },
}

/// Which keys to trust.
#[derive(Args)]
pub struct TrustArgs {
    /// Trust file: public keys with the tree sizes each may sign.
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    trust: Option<PathBuf>,
    /// One public key file (NAME.pub), valid at every size.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
}

pub fn run(cmd: AuditCommand) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Show {
            dir,
            tree: Some(root),
            json,
            ..
        } => {
            let (records, signed_size) = signed_records(&dir.path)?;
            show_tree(&records, signed_size, &root, json)
        }
        AuditCommand::Show {
            dir,
            dataset,
            runway,
            agent,
            calls,
            tree: None,
            json,
        } => {
            let (records, signed_size) = signed_records(&dir.path)?;
            let keep = |r: &Record| {
                let e = &r.entry;
                dataset.as_ref().is_none_or(|d| e.dataset.as_ref() == Some(d))
                    && runway.as_ref().is_none_or(|w| &e.runway == w)
                    && agent.as_ref().is_none_or(|a| &e.agent == a)
                    // A dataset's timeline includes the calls on it.
                    && (calls || dataset.is_some() || !matches!(e.event, Event::Call { .. }))
            };
            print_lines(records.iter().filter(|r| keep(r)).map(|r| {
                let signed = r.seq < signed_size;
                match (json, signed) {
                    (true, _) => signed_json(r, signed),
                    (false, true) => runway_audit::record_line(r),
                    (false, false) => format!("{}  (unsigned)", runway_audit::record_line(r)),
                }
            }))
        }
        AuditCommand::Verify {
            dirs,
            trust,
            checkpoint,
            allow_unsigned_tail,
            json,
        } => {
            let kept = checkpoint
                .iter()
                .map(|path| read(path).map(|bytes| (path.display().to_string(), bytes)))
                .collect::<Result<Vec<_>, _>>()?;
            let how = Verifying {
                trust,
                kept,
                allow_unsigned_tail,
                json,
            };
            match &dirs[..] {
                [dir] => {
                    let (_, report, trust_line) = how.one(dir, &how.kept)?;
                    if how.json {
                        let out = serde_json::json!({ "trust": trust_line, "report": report });
                        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                    }
                    Ok(())
                }
                _ => how.together(&dirs),
            }
        }
        AuditCommand::Prove {
            dir,
            seq,
            from,
            size,
            out,
        } => prove(&dir.path, seq, from, size, out.as_deref()),
        AuditCommand::CheckProof {
            proof,
            trust,
            checkpoint,
            old_checkpoint,
        } => check_proof(
            &proof,
            &trust,
            checkpoint.as_deref(),
            old_checkpoint.as_deref(),
        ),
        AuditCommand::Export { dir, jsonl: _ } => export(&dir.path),
    }
}

/// The tree below `root`: as lines, or as one JSON object; a last line
/// says when records of it are not signed yet.
fn show_tree(records: &[Record], signed_size: u64, root: &str, json: bool) -> Result<(), Failure> {
    let tree = tree::build(records, root)?;
    if json {
        let out = serde_json::json!({ "root": root, "runways": tree });
        return print_lines(std::iter::once(out.to_string()));
    }
    let ids: std::collections::HashSet<&str> = tree.iter().map(|r| r.id.as_str()).collect();
    let unsigned = records
        .iter()
        .filter(|r| r.seq >= signed_size && ids.contains(r.entry.runway.as_str()))
        .count();
    let mut lines = tree::lines(&tree);
    if unsigned > 0 {
        lines.push(format!(
            "(unsigned: {unsigned} of its records, from #{signed_size} on, no checkpoint covers yet)"
        ));
    }
    print_lines(lines.into_iter())
}

/// How `audit verify` checks: the keys, the checkpoints kept (name and
/// bytes, read once), the unsigned tail allowed, and whether it answers
/// in JSON.
struct Verifying {
    trust: TrustArgs,
    kept: Vec<(String, Vec<u8>)>,
    allow_unsigned_tail: u64,
    json: bool,
}

impl Verifying {
    /// Verifies the folder `dir` against the checkpoints `kept`, says so
    /// unless in JSON, and gives back its origin, report and trust line.
    fn one(
        &self,
        dir: &Path,
        kept: &[(String, Vec<u8>)],
    ) -> Result<(String, VerifyReport, String), Failure> {
        let origin = runway_audit::segment::folder_origin(dir).unwrap_or_else(default_origin);
        let (trust, trust_line) = auditor_trust(
            self.trust.trust.as_deref(),
            self.trust.key.as_deref(),
            dir,
            &origin,
        )?;
        if !self.json {
            println!("trusting {trust_line}");
        }
        let options = VerifyOptions {
            trust: Some(trust),
            kept_checkpoints: kept.to_vec(),
            allow_unsigned_tail: self.allow_unsigned_tail,
            ..VerifyOptions::default()
        };
        let report = runway_audit::verify_with(dir, &options).map_err(|e| {
            Failure::new(
                AUDIT_BAD,
                anyhow::Error::new(e).context(format!("audit {} does not verify", dir.display())),
            )
        })?;
        if !self.json {
            print_report(dir, &report);
        }
        Ok((origin, report, trust_line))
    }

    /// Verifies each shard in `dirs` against the kept checkpoints of its
    /// origin, then checks them together. A kept checkpoint of no shard
    /// given is refused, naming it: it would vouch for nothing.
    fn together(&self, dirs: &[PathBuf]) -> Result<(), Failure> {
        let origins: Vec<Option<String>> = self
            .kept
            .iter()
            .map(|(_, bytes)| {
                SignedCheckpoint::parse_bytes(bytes)
                    .ok()
                    .map(|c| c.checkpoint.origin)
            })
            .collect();
        let mut vouched = vec![false; self.kept.len()];
        let mut shards = Vec::new();
        let mut reports = Vec::new();
        for dir in dirs {
            // A host that never led wrote no record, nor its folder. Were
            // it withheld instead, the LEADING records naming it say so.
            if runway_audit::segment::folder_origin(dir).is_none() {
                let why = "no audit records here (a host that never led writes none)";
                if !self.json {
                    println!("skipped {}: {why}", dir.display());
                }
                reports.push(serde_json::json!({
                    "audit": dir.display().to_string(), "skipped": why,
                }));
                continue;
            }
            let origin = runway_audit::segment::folder_origin(dir).unwrap_or_else(default_origin);
            // A checkpoint that does not parse goes to every shard, whose
            // verification names it.
            let mine: Vec<(String, Vec<u8>)> = (0..self.kept.len())
                .filter(|&k| origins[k].as_ref().is_none_or(|o| *o == origin))
                .inspect(|&k| vouched[k] = true)
                .map(|k| self.kept[k].clone())
                .collect();
            let (origin, report, trust_line) = self.one(dir, &mine)?;
            if let Some(twice) = shards.iter().find(|s: &&Shard| s.origin == origin) {
                return Err(Failure::new(
                    BAD_INPUT,
                    anyhow::anyhow!(
                        "{} and another folder are both shard {}: give each host's shard once",
                        dir.display(),
                        twice.origin
                    ),
                ));
            }
            let records =
                runway_audit::read_records(dir).map_err(|e| Failure::new(AUDIT_BAD, e))?;
            shards.push(Shard { origin, records });
            reports.push(serde_json::json!({
                "audit": dir.display().to_string(), "trust": trust_line, "report": report,
            }));
        }
        let names: Vec<&str> = shards.iter().map(|s| s.origin.as_str()).collect();
        if let Some(k) = vouched.iter().position(|v| !v) {
            let origin = origins[k].as_deref().unwrap_or_default();
            return Err(Failure::new(
                BAD_INPUT,
                anyhow::anyhow!(
                    "checkpoint {} is of shard {origin}, and no folder given is (shards: {})",
                    self.kept[k].0,
                    names.join(", ")
                ),
            ));
        }
        let together = runway_audit::check_together(&shards).map_err(|e| {
            Failure::new(
                AUDIT_BAD,
                anyhow::Error::new(e).context(format!("shards {} do not agree", names.join(", "))),
            )
        })?;
        if self.json {
            let out = serde_json::json!({ "shards": reports, "together": together });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            return Ok(());
        }
        print_together(&names, &together);
        Ok(())
    }
}

/// The human form of shards checked together.
fn print_together(names: &[&str], t: &Together) {
    let terms = match (t.terms.first(), t.terms.last()) {
        (Some(first), Some(last)) if first != last => format!("terms {first}..{last}"),
        (Some(only), _) => format!("term {only}"),
        _ => "no term".into(),
    };
    println!(
        "ok: shards {} agree: {} records, {terms}; {} runways, {} grants, {} commits",
        names.join(", "),
        t.records,
        t.runways,
        t.grants,
        t.commits
    );
    if t.set_aside > 0 {
        println!(
            "set aside: {} records of deposed terms the shared history never took (each happened on its host alone)",
            t.set_aside
        );
    }
}

/// The human form of a verification report.
pub fn print_report(dir: &Path, report: &VerifyReport) {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "ok: {} verifies: {} in {}, {}",
        dir.display(),
        plural(report.records, "record", "records"),
        plural(report.segments as u64, "segment", "segments"),
        plural(report.datasets as u64, "dataset", "datasets"),
    );
    if report.checkpoints == 0 {
        println!("signed: nothing; there is no checkpoint in this folder");
    } else {
        println!(
            "signed: {} up to size {}, by {}",
            plural(report.checkpoints as u64, "checkpoint", "checkpoints"),
            report.signed_size,
            report.signers.join(", ")
        );
    }
    println!("root: {}", report.root);
    if report.unsigned_records > 0 {
        println!(
            "unsigned tail: {} after the latest checkpoint (seq {}..{}), not covered by any signature",
            plural(report.unsigned_records, "record", "records"),
            report.signed_size,
            report.records
        );
    }
    if let Some(torn) = &report.torn_tail {
        println!("torn tail (a write cut short, not tampering): {torn}");
    }
    if let Some((offset, bytes)) = report.torn_checkpoint {
        println!("torn checkpoint entry (a write cut short): {bytes} bytes at offset {offset}");
    }
}

fn prove(
    dir: &Path,
    seq: Option<u64>,
    from: Option<u64>,
    size: Option<u64>,
    out: Option<&Path>,
) -> Result<(), Failure> {
    let proof = match (seq, from) {
        (Some(seq), _) => ProofFile::inclusion(dir, seq, size),
        (None, Some(from)) => ProofFile::consistency(dir, from, size),
        (None, None) => unreachable!("clap requires --seq or --from"),
    }
    .map_err(|e| Failure::new(AUDIT_BAD, e))?;
    let what = match &proof.claim {
        Claim::Inclusion { seq, .. } => format!("inclusion proof of record {seq}"),
        Claim::Consistency { old_size, .. } => {
            format!("consistency proof from size {old_size}")
        }
    };
    let text = proof.to_text();
    match out {
        Some(path) => {
            fs::write(path, &text).map_err(|e| {
                Failure::new(
                    HOST_FAULT,
                    anyhow::Error::new(e).context(format!("writing {}", path.display())),
                )
            })?;
            eprintln!(
                "wrote {what} against the checkpoint of size {} to {}",
                proof.size,
                path.display()
            );
        }
        None => {
            eprintln!("{what} against the checkpoint of size {}:", proof.size);
            print!("{text}");
        }
    }
    Ok(())
}

fn check_proof(
    path: &Path,
    trust: &TrustArgs,
    checkpoint: Option<&Path>,
    old: Option<&Path>,
) -> Result<(), Failure> {
    let text = String::from_utf8(read(path)?).map_err(|e| Failure::new(AUDIT_BAD, e))?;
    let proof = ProofFile::parse(&text).map_err(|e| Failure::new(AUDIT_BAD, e))?;
    // Without --trust or --key: the default key of the proof's log beside
    // an audit folder here.
    let (trust, trust_line) = auditor_trust(
        trust.trust.as_deref(),
        trust.key.as_deref(),
        Path::new("."),
        &proof.checkpoint.checkpoint.origin,
    )?;
    println!("trusting {trust_line}");
    let signed = |path: Option<&Path>| -> Result<Option<SignedCheckpoint>, Failure> {
        path.map(|path| {
            SignedCheckpoint::parse_bytes(&read(path)?).map_err(|e| {
                Failure::new(
                    AUDIT_BAD,
                    anyhow::Error::new(e).context(path.display().to_string()),
                )
            })
        })
        .transpose()
    };
    let (checkpoint, old) = (signed(checkpoint)?, signed(old)?);
    let checked = proof
        .check(&trust, checkpoint.as_ref(), old.as_ref())
        .map_err(|e| {
            Failure::new(
                AUDIT_BAD,
                anyhow::Error::new(e).context(format!("{} does not hold", path.display())),
            )
        })?;
    let signers = checked.signers.join(", ");
    match (&proof.claim, &checked.record) {
        (Claim::Inclusion { seq, .. }, Some(record)) => {
            println!(
                "ok: record {seq} is in the log at tree size {}, checkpoint signed by {signers}",
                proof.size
            );
            println!("{}", runway_audit::record_line(record));
        }
        (Claim::Consistency { old_size, old_root }, _) => {
            println!(
                "ok: the log of {old_size} records (root {}) is a prefix of the log at tree size {}, checkpoint signed by {signers}",
                runway_audit::hex::encode(old_root),
                proof.size
            );
        }
        (Claim::Inclusion { .. }, None) => {}
    }
    Ok(())
}

fn export(dir: &Path) -> Result<(), Failure> {
    let (records, signed_size) = signed_records(dir)?;
    print_lines(
        records
            .iter()
            .map(|record| signed_json(record, record.seq < signed_size)),
    )
}

/// Every record of the verified folder `dir` (signatures not checked), and
/// how many of them a checkpoint covers.
fn signed_records(dir: &Path) -> Result<(Vec<Record>, u64), Failure> {
    let report = runway_audit::verify(dir).map_err(|e| Failure::new(AUDIT_BAD, e))?;
    let records = runway_audit::read_records(dir).map_err(|e| Failure::new(AUDIT_BAD, e))?;
    Ok((records, report.signed_size))
}

/// A record as JSON, with `"signed"` saying whether a checkpoint covers it.
fn signed_json(record: &Record, signed: bool) -> String {
    let mut json = runway_audit::record_json(record);
    json["signed"] = serde_json::Value::Bool(signed);
    json.to_string()
}

/// Writes `lines` to stdout, buffered; a reader that went away (`| head`)
/// ends the output quietly.
fn print_lines(lines: impl Iterator<Item = String>) -> Result<(), Failure> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let write_all = || -> io::Result<()> {
        for line in lines {
            writeln!(out, "{line}")?;
        }
        out.flush()
    };
    let written = write_all();
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Failure::new(HOST_FAULT, e)),
        _ => Ok(()),
    }
}

/// A checkpoint or proof file, read through [`crate::files`].
fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    files::read(path, FileKind::Key, &ReadCaps::default()).map_err(|e| Failure::new(BAD_INPUT, e))
}
