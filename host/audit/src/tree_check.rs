//! The checkpoints a walk of the log is held to: loading them from the
//! audit folder (and from the auditor), checking them against each other and
//! against trusted keys, then checking the log's Merkle tree at each of
//! their sizes as the walk grows it.
//!
//! Used by the verifier and by opening the log for writing, so both hold
//! the log to the same signed state.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::checkpoint::{
    CHECKPOINTS_FILE, EntryAt, LATEST_FILE, SignedCheckpoint, check_line_ends,
    read_checkpoint_file_from, read_latest,
};
use crate::findings::{CheckpointPlace, VerifyError, VerifyErrorKind};
use crate::merkle::{Frontier, empty_root};
use crate::record::Hash;
use crate::trust::Trust;

/// Where checkpoints come from besides the audit folder, and who must sign them.
pub(crate) struct CheckpointSources<'a> {
    /// Trusted keys; `None` leaves signatures unchecked.
    pub trust: Option<&'a Trust>,
    /// Checkpoints the auditor kept, as (name, bytes).
    pub kept: &'a [(String, Vec<u8>)],
}

/// Every checkpoint found, checked against each other (and signatures
/// against trusted keys, when given).
#[derive(Debug, Default)]
pub(crate) struct LoadedCheckpoints {
    all: Vec<(CheckpointPlace, SignedCheckpoint)>,
    /// How many of them are entries of `checkpoints`.
    entries: usize,
    signers: BTreeSet<String>,
    /// An incomplete last entry of `checkpoints`: (offset, bytes).
    pub torn: Option<(u64, u64)>,
    /// Bytes of `checkpoints` up to its last whole entry.
    pub file_len: u64,
    /// The last whole entry of `checkpoints`, and where it starts.
    pub last_entry: Option<SignedCheckpoint>,
    pub last_entry_at: Option<EntryAt>,
    /// The `checkpoint` file, if there is one.
    pub latest: Option<SignedCheckpoint>,
}

impl LoadedCheckpoints {
    /// Entries in `checkpoints`.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// The largest size any checkpoint covers.
    pub fn signed_size(&self) -> u64 {
        self.all
            .iter()
            .map(|(_, s)| s.checkpoint.size)
            .max()
            .unwrap_or(0)
    }

    /// A checkpoint of `size`, preferring the `checkpoints` file's.
    pub fn with_size(&self, size: u64) -> Option<SignedCheckpoint> {
        self.all
            .iter()
            .find(|(_, s)| s.checkpoint.size == size)
            .map(|(_, s)| s.clone())
    }

    /// Labels of the keys whose signatures were accepted.
    pub fn signers(&self) -> Vec<String> {
        self.signers.iter().cloned().collect()
    }

    /// Checks every checkpoint names the log's `origin`.
    pub fn check_origin(&self, origin: &str) -> Result<(), VerifyError> {
        for (place, signed) in &self.all {
            if signed.checkpoint.origin != origin {
                let kind = VerifyErrorKind::CheckpointOrigin {
                    expected: origin.to_owned(),
                    found: signed.checkpoint.origin.clone(),
                };
                return Err(VerifyError::at_checkpoint(place, kind));
            }
        }
        Ok(())
    }
}

/// Reads and cross-checks the checkpoints of `dir` and `sources`.
pub(crate) fn load_checkpoints(
    dir: &Path,
    sources: &CheckpointSources<'_>,
) -> Result<LoadedCheckpoints, VerifyError> {
    load_checkpoints_from(dir, sources, EntryAt::FIRST)
}

/// [`load_checkpoints`], the entries of `checkpoints` before `from` left
/// unread (and so unchecked: a walk from a resume point needs only those
/// from the one covering it on).
pub(crate) fn load_checkpoints_from(
    dir: &Path,
    sources: &CheckpointSources<'_>,
    from: EntryAt,
) -> Result<LoadedCheckpoints, VerifyError> {
    let unreadable = |e| VerifyError::folder(VerifyErrorKind::CheckpointFile(e));
    let file = read_checkpoint_file_from(dir, from).map_err(unreadable)?;
    let mut loaded = LoadedCheckpoints {
        torn: file.torn,
        file_len: file.len,
        entries: from.index - 1,
        ..LoadedCheckpoints::default()
    };
    for entry in file.entries {
        let place = CheckpointPlace {
            file: CHECKPOINTS_FILE.into(),
            index: Some(entry.index),
            size: entry.parsed.as_ref().ok().map(|s| s.checkpoint.size),
        };
        let signed = entry
            .parsed
            .map_err(|e| VerifyError::at_checkpoint(&place, VerifyErrorKind::BadCheckpoint(e)))?;
        if let Some(previous) = &loaded.last_entry
            && signed.checkpoint.size < previous.checkpoint.size
        {
            let kind = VerifyErrorKind::SizeDecreased {
                previous: previous.checkpoint.size,
                found: signed.checkpoint.size,
            };
            return Err(VerifyError::at_checkpoint(&place, kind));
        }
        loaded.add(place, signed.clone(), sources.trust)?;
        loaded.entries += 1;
        loaded.last_entry = Some(signed);
        loaded.last_entry_at = Some(EntryAt {
            offset: entry.offset,
            index: entry.index,
        });
    }
    if let Some(bytes) =
        read_latest(dir).map_err(|e| VerifyError::folder(VerifyErrorKind::Io(e)))?
    {
        let signed = parse(LATEST_FILE, &bytes)?;
        let place = place_of(LATEST_FILE, &signed);
        let last = loaded.last_entry.as_ref().map_or(0, |s| s.checkpoint.size);
        if loaded.last_entry.is_none() || signed.checkpoint.size > last {
            return Err(VerifyError::at_checkpoint(
                &place,
                VerifyErrorKind::LatestAhead { last },
            ));
        }
        loaded.add(place, signed.clone(), sources.trust)?;
        loaded.latest = Some(signed);
    }
    for (name, bytes) in sources.kept {
        let signed = parse(name, bytes)?;
        loaded.add(place_of(name, &signed), signed, sources.trust)?;
    }
    loaded.check_agreement()?;
    Ok(loaded)
}

fn parse(file: &str, bytes: &[u8]) -> Result<SignedCheckpoint, VerifyError> {
    check_line_ends(file, bytes)
        .map_err(|e| VerifyError::folder(VerifyErrorKind::CheckpointFile(e)))?;
    SignedCheckpoint::parse_bytes(bytes).map_err(|e| {
        let place = CheckpointPlace {
            file: file.to_owned(),
            index: None,
            size: None,
        };
        VerifyError::at_checkpoint(&place, VerifyErrorKind::BadCheckpoint(e))
    })
}

fn place_of(file: &str, signed: &SignedCheckpoint) -> CheckpointPlace {
    CheckpointPlace {
        file: file.to_owned(),
        index: None,
        size: Some(signed.checkpoint.size),
    }
}

impl LoadedCheckpoints {
    /// Adds a checkpoint after checking its signatures, if there is a trust.
    fn add(
        &mut self,
        place: CheckpointPlace,
        signed: SignedCheckpoint,
        trust: Option<&Trust>,
    ) -> Result<(), VerifyError> {
        if let Some(trust) = trust {
            let signers = trust.check(&signed).map_err(|p| {
                VerifyError::at_checkpoint(&place, VerifyErrorKind::Signature(Box::new(p)))
            })?;
            self.signers.extend(signers);
        }
        self.all.push((place, signed));
        Ok(())
    }

    /// One origin for all, one root per size.
    fn check_agreement(&self) -> Result<(), VerifyError> {
        let mut roots: HashMap<u64, (&Hash, &CheckpointPlace)> = HashMap::new();
        let first_origin = self.all.first().map(|(_, s)| &s.checkpoint.origin);
        for (place, signed) in &self.all {
            let checkpoint = &signed.checkpoint;
            if let Some(origin) = first_origin
                && checkpoint.origin != *origin
            {
                let kind = VerifyErrorKind::CheckpointOrigin {
                    expected: origin.clone(),
                    found: checkpoint.origin.clone(),
                };
                return Err(VerifyError::at_checkpoint(place, kind));
            }
            match roots.get(&checkpoint.size) {
                Some((root, other)) if **root != checkpoint.root => {
                    let kind = VerifyErrorKind::ConflictingRoots {
                        size: checkpoint.size,
                        other: other.to_string(),
                    };
                    return Err(VerifyError::at_checkpoint(place, kind));
                }
                Some(_) => {}
                None => {
                    roots.insert(checkpoint.size, (&checkpoint.root, place));
                }
            }
        }
        Ok(())
    }
}

/// The log's tree as a walk grows it, held to the checkpoints' roots.
pub(crate) struct TreeCheck {
    frontier: Frontier,
    /// (size, root, where from), by size.
    expected: Vec<(u64, Hash, CheckpointPlace)>,
    next: usize,
    /// The largest size whose root matched.
    matched: u64,
}

impl TreeCheck {
    pub fn new(loaded: &LoadedCheckpoints) -> TreeCheck {
        let mut expected: Vec<_> = loaded
            .all
            .iter()
            .map(|(place, s)| (s.checkpoint.size, s.checkpoint.root, place.clone()))
            .collect();
        expected.sort_by_key(|(size, _, _)| *size);
        TreeCheck {
            frontier: Frontier::new(),
            expected,
            next: 0,
            matched: 0,
        }
    }

    /// The check of a walk that continues from `frontier`, a resume
    /// point's tree: checkpoints of smaller sizes are not checked again, one
    /// of its very size must have its root. `None` when no checkpoint is as
    /// large as it: no signed root would hold the frontier.
    pub fn resumed(
        loaded: &LoadedCheckpoints,
        frontier: Frontier,
    ) -> Result<Option<TreeCheck>, VerifyError> {
        let mut tree = TreeCheck::new(loaded);
        let size = frontier.size();
        if tree.expected.last().is_none_or(|e| e.0 < size) {
            return Ok(None);
        }
        tree.next = tree.expected.partition_point(|e| e.0 < size);
        tree.matched = tree.next.checked_sub(1).map_or(0, |i| tree.expected[i].0);
        let root = frontier.root();
        tree.frontier = frontier;
        tree.check_at(size, &root)?;
        Ok(Some(tree))
    }

    /// Checks checkpoints of the empty tree.
    pub fn check_empty(&mut self) -> Result<(), VerifyError> {
        self.check_at(0, &empty_root())
    }

    /// Adds the next record's leaf hash, checking any checkpoint of the new size.
    pub fn push(&mut self, leaf: Hash) -> Result<(), VerifyError> {
        self.frontier.push(leaf);
        let size = self.frontier.size();
        if self.expected.get(self.next).is_some_and(|e| e.0 == size) {
            let root = self.frontier.root();
            self.check_at(size, &root)?;
        }
        Ok(())
    }

    /// Leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Whether a subtree of `1 << height` leaves can be pushed whole: no
    /// checkpoint's size falls strictly inside it.
    pub fn fits(&self, height: u32) -> bool {
        let end = self.size() + (1 << height);
        self.expected
            .get(self.next)
            .is_none_or(|(size, _, _)| *size >= end)
    }

    /// Adds a perfect subtree that [`fits`](Self::fits) whole, checking a
    /// checkpoint of the new size.
    pub fn push_subtree(&mut self, height: u32, root: Hash) -> Result<(), VerifyError> {
        debug_assert!(self.fits(height));
        self.frontier.push_subtree(height, root);
        let size = self.frontier.size();
        if self.expected.get(self.next).is_some_and(|e| e.0 == size) {
            let root = self.frontier.root();
            self.check_at(size, &root)?;
        }
        Ok(())
    }

    fn check_at(&mut self, size: u64, root: &Hash) -> Result<(), VerifyError> {
        while let Some((expected_size, expected_root, place)) = self.expected.get(self.next) {
            if *expected_size != size {
                break;
            }
            if expected_root != root {
                let kind = VerifyErrorKind::RootMismatch {
                    size,
                    from: self.matched,
                };
                return Err(VerifyError::at_checkpoint(place, kind));
            }
            self.matched = size;
            self.next += 1;
        }
        Ok(())
    }

    /// After the last of `records`: every checkpoint must have been reached.
    pub fn finish(&self, records: u64) -> Result<(), VerifyError> {
        // The largest size, named by the first checkpoint that has it:
        // the `checkpoints` file's before the latest file's.
        let largest = self.expected.last().map(|e| e.0);
        if let Some((size, _, place)) = self.expected.iter().find(|e| Some(e.0) == largest)
            && *size > records
        {
            let mut err = VerifyError::at_checkpoint(
                place,
                VerifyErrorKind::MissingRecords {
                    records,
                    size: *size,
                },
            );
            err.seq = Some(records);
            return Err(err);
        }
        Ok(())
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The tree so far.
    pub fn into_frontier(self) -> Frontier {
        self.frontier
    }
}
