//! Opening an existing audit folder for writing: read it back, verifying
//! every record read and every checkpoint's root, and trim a torn tail left
//! by a crash.
//!
//! What is read: with a usable resume point ([`resume`](crate::resume)) at
//! size `N`, only the records from `N` on; otherwise all of them. A resume
//! point is used only if it is this log's own (its integrity hash, a
//! signature by one of the log's signing keys, its origin), a signed
//! checkpoint at least as large as `N` exists, one of size `N` (if any) has
//! the root of its frontier, record `N - 1` is where it says and is the one
//! its chain ends with (leaf hash, time), and the walk from `N` on links to its chain and
//! reaches every checkpoint beyond it with the right root. Anything else —
//! no file, a damaged one, one of another version, origin or key, one
//! pointing past the log, or any error in the walk from it — is said on the
//! log (`tracing::warn!`) and the whole log is walked instead, whose answer
//! is final. So opening from a resume point no longer re-reads the records
//! before `N`, nor the entries of `checkpoints` before the one covering
//! them (the resume point names it): that signed checkpoint vouches for
//! them, and `runway audit verify` ([`verify`](crate::verify())) still
//! checks everything.
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
use crate::checkpoint::{EntryAt, SignedCheckpoint};
use crate::error::AuditError;
use crate::findings::{CheckpointPlace, TornKind, TornTail, VerifyError, VerifyErrorKind};
use crate::keys::PrivateKey;
use crate::merkle::Frontier;
use crate::reader::{LastSegment, Start, TailMode, WalkEnd, walk, walk_from};
use crate::resume::{self, ResumePoint};
use crate::segment::sync_dir;
use crate::tree_check::{
    CheckpointSources, LoadedCheckpoints, TreeCheck, load_checkpoints, load_checkpoints_from,
};

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
    /// Where its last whole entry starts.
    pub last_checkpoint_at: Option<EntryAt>,
    /// An incomplete last checkpoint entry: (offset, bytes).
    pub torn_checkpoint: Option<(u64, u64)>,
    /// The last entry of `checkpoints` when the `checkpoint` file is missing
    /// or behind it (a crash between the two writes): to be written again.
    pub stale_latest: Option<SignedCheckpoint>,
    /// The size of the resume point the walk began at, if it began at one.
    pub resumed_from: Option<u64>,
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
    let resumed = if keys.is_empty() {
        None
    } else {
        resume_walk(dir, origin, keys)
    };
    let resumed_from = resumed.as_ref().map(|r| r.size);
    // A walk from a resume point has checked its end against the checkpoints.
    let (loaded, end, tree, finished) = match resumed {
        Some(resumed) => (resumed.loaded, resumed.end, resumed.tree, true),
        None => {
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
            (loaded, end, tree, false)
        }
    };
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
    if !finished {
        tree.finish(end.chain.next_seq)?;
    }
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
        last_checkpoint_at: loaded.last_entry_at,
        stale_latest,
        resumed_from,
    })
}

/// What a walk from a resume point found.
struct Resumed {
    /// The checkpoints from the one covering the resume point on.
    loaded: LoadedCheckpoints,
    end: WalkEnd,
    tree: TreeCheck,
    /// The resume point's size.
    size: u64,
}

/// The walk from the resume point of `dir`, if there is one that holds.
/// Says on the log why not otherwise (a log without a resume file and
/// without segments, a new one, has nothing to resume).
fn resume_walk(dir: &Path, origin: &str, keys: &[PrivateKey]) -> Option<Resumed> {
    let why = match resume::read(dir, origin, keys) {
        Ok(None) if crate::segment::folder_origin(dir).is_none() => return None,
        Ok(None) => "there is no resume file".to_owned(),
        Err(refused) => refused.to_string(),
        Ok(Some(point)) => {
            let size = point.size();
            match walk_from_point(dir, origin, keys, point) {
                Ok(resumed) => return Some(resumed),
                Err(why) => format!("resuming at record {size}: {why}"),
            }
        }
    };
    tracing::warn!(
        "audit {}: reading the whole log, not from its resume point: {why}",
        dir.display()
    );
    None
}

/// Walks `dir` from `point` on, held to every checkpoint from the one
/// covering it on.
fn walk_from_point(
    dir: &Path,
    origin: &str,
    keys: &[PrivateKey],
    point: ResumePoint,
) -> Result<Resumed, String> {
    let size = point.size();
    point.check_last_record(dir)?;
    let sources = CheckpointSources {
        trust: None,
        kept: &[],
    };
    let loaded =
        load_checkpoints_from(dir, &sources, point.checkpoints_at).map_err(|e| e.to_string())?;
    if let Some(last) = &loaded.last_entry {
        check_own_signatures(last, keys).map_err(|e| e.to_string())?;
    }
    let mut tree = TreeCheck::resumed(&loaded, point.frontier)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no signed checkpoint covers its {size} records"))?;
    let start = Start::At {
        chain: point.chain,
        segment: point.segment,
        offset: point.offset,
        last_frame: point.last_frame,
    };
    let end = walk_from(
        dir,
        TailMode::Recover { origin },
        1,
        Some(&mut tree),
        start,
        |_, _| Ok(()),
    )
    .map_err(|e| e.to_string())?;
    tree.finish(end.chain.next_seq).map_err(|e| e.to_string())?;
    Ok(Resumed {
        loaded,
        end,
        tree,
        size,
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
