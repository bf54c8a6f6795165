//! Opening an existing audit folder for writing: read it all back, verifying
//! every record and every checkpoint's root, and trim a torn tail left by a
//! crash.
//!
//! A torn tail (an incomplete frame or header, or a last frame failing its
//! CRC, at the very end of the last segment) is the remains of a write that
//! never became durable, so no caller was told it succeeded: it is cut off
//! and reported. But only beyond the last signed checkpoint: a checkpoint is
//! made only after its records were synced, so a torn record it covers, or
//! a log shorter than it, is damage. Damage anywhere is an error and nothing
//! is changed.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use crate::chain::Chain;
use crate::checkpoint::SignedCheckpoint;
use crate::error::AuditError;
use crate::findings::{CheckpointPlace, TornKind, TornTail, VerifyError, VerifyErrorKind};
use crate::keys::PrivateKey;
use crate::merkle::Frontier;
use crate::reader::{LastSegment, TailMode, walk};
use crate::segment::sync_dir;
use crate::tree_check::{CheckpointSources, TreeCheck, load_checkpoints};

/// Where writing continues.
pub(crate) struct Recovered {
    pub chain: Chain,
    pub frontier: Frontier,
    pub last: Option<LastSegment>,
    /// What was trimmed, if anything.
    pub trimmed: Option<TornTail>,
    /// The largest size a checkpoint covers.
    pub signed_size: u64,
    /// Bytes of `checkpoints` up to its last whole entry.
    pub checkpoints_len: u64,
    /// An incomplete last checkpoint entry: (offset, bytes).
    pub torn_checkpoint: Option<(u64, u64)>,
    /// The last entry of `checkpoints` when the `checkpoint` file is missing
    /// or behind it (a crash between the two writes): to be written again.
    pub stale_latest: Option<SignedCheckpoint>,
}

/// Reads `dir` back, checks it belongs to `origin` and agrees with its
/// checkpoints (the latest one's signatures by `keys` included), and trims
/// a torn tail.
pub(crate) fn recover(
    dir: &Path,
    origin: &str,
    keys: &[PrivateKey],
) -> Result<Recovered, AuditError> {
    let sources = CheckpointSources {
        trust: None,
        kept: &[],
    };
    let loaded = load_checkpoints(dir, &sources)?;
    if let Some(last) = &loaded.last_entry {
        check_own_signatures(last, keys)?;
    }
    let mut tree = TreeCheck::new(&loaded);
    tree.check_empty()?;
    let end = walk(
        dir,
        TailMode::Recover { origin },
        1,
        Some(&mut tree),
        |_, _| Ok(()),
    )?;
    if let Some(found) = end.origin.as_deref().or(loaded
        .last_entry
        .as_ref()
        .map(|s| s.checkpoint.origin.as_str()))
        && found != origin
    {
        return Err(AuditError::OriginMismatch {
            dir: dir.to_owned(),
            expected: origin.to_owned(),
            found: found.to_owned(),
        });
    }
    // Before trimming anything: what is torn must not be signed.
    tree.finish(end.chain.next_seq)?;
    let signed_size = loaded.signed_size();
    if let Some(torn) = &end.torn_tail {
        trim(dir, torn)?;
    }
    if end.chain.next_seq > signed_size
        && let Some(last) = &end.last
    {
        // Records beyond the last checkpoint may still be only in the page
        // cache of a writer that died; make them durable before any
        // checkpoint covers them.
        File::open(&last.path)
            .and_then(|f| f.sync_all())
            .map_err(|error| AuditError::Io {
                action: "fsync",
                path: last.path.clone(),
                error,
            })?;
    }
    let stale_latest = match (&loaded.latest, &loaded.last_entry) {
        (Some(latest), Some(last)) if latest.checkpoint.size == last.checkpoint.size => None,
        (_, last) => last.clone(),
    };
    Ok(Recovered {
        chain: end.chain,
        frontier: tree.into_frontier(),
        last: end.last,
        trimmed: end.torn_tail,
        signed_size,
        checkpoints_len: loaded.file_len,
        torn_checkpoint: loaded.torn,
        stale_latest,
    })
}

/// A signature line by one of our own keys must verify.
fn check_own_signatures(signed: &SignedCheckpoint, keys: &[PrivateKey]) -> Result<(), VerifyError> {
    for key in keys {
        let public = key.public();
        for sig in &signed.note.signatures {
            if sig.name != public.name() || sig.id != public.id() {
                continue;
            }
            let good = sig
                .ed25519()
                .is_some_and(|bytes| public.verifies(signed.note.text.as_bytes(), &bytes));
            if !good {
                let place = CheckpointPlace {
                    file: crate::checkpoint::CHECKPOINTS_FILE.into(),
                    index: None,
                    size: Some(signed.checkpoint.size),
                };
                let problem = crate::trust::SignatureProblem::BadSignature { key: sig.label() };
                return Err(VerifyError::at_checkpoint(
                    &place,
                    VerifyErrorKind::Signature(Box::new(problem)),
                ));
            }
        }
    }
    Ok(())
}

/// Removes the torn bytes durably: a segment with a torn header goes away
/// entirely, otherwise the segment is cut back to its last whole record.
fn trim(dir: &Path, torn: &TornTail) -> Result<(), AuditError> {
    let path = dir.join(&torn.segment);
    let io = |action: &'static str| {
        let path = path.clone();
        move |error| AuditError::Io {
            action,
            path,
            error,
        }
    };
    match torn.kind {
        TornKind::IncompleteHeader => {
            fs::remove_file(&path).map_err(io("remove torn segment"))?;
            sync_dir(dir).map_err(io("fsync the folder of"))?;
        }
        TornKind::IncompleteFrame | TornKind::ZeroFill | TornKind::CrcMismatch => {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io("open"))?;
            file.set_len(torn.offset)
                .map_err(io("truncate torn tail of"))?;
            file.sync_all().map_err(io("fsync"))?;
        }
    }
    Ok(())
}
