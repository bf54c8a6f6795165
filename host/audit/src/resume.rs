//! The resume point: what reopening the log would rebuild by reading it
//! all, kept in a small file beside it (`resume`) so that opening reads
//! only the records after it.
//!
//! A [`ResumePoint`] at size `N` holds the chain after record `N - 1` (its
//! leaf hash and time, the last leaf hash of every dataset), the Merkle
//! frontier over the first `N` records, and where record `N` starts (the
//! segment, by its first sequence number, and a byte offset in it) and
//! where record `N - 1` lies in that segment, and where the entry of
//! `checkpoints` covering it starts (opening reads that file from there).
//! The
//! writer takes one now and then at the end of a batch, and the checkpoint
//! thread writes it once a signed checkpoint covers it (temp file, fsync,
//! rename, folder fsync); so does closing.
//!
//! The file is `MAGIC ‖ version ‖ body length ‖ body ‖ SHA-256 of all
//! before ‖ Ed25519 signature of that hash`, the body postcard-encoded and
//! the signature by one of the log's own signing keys: a damaged file, one
//! of another version or origin, or one no signing key of this log made is
//! refused, and opening then walks the whole log. Nothing is only here:
//! deleting the file costs only speed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::checkpoint::EntryAt;
use crate::frame::{FRAME_HEAD_LEN, FrameHead, MAX_FRAME_LEN};
use crate::keys::PrivateKey;
use crate::merkle::Frontier;
use crate::record::{Hash, leaf_hash, sha256};
use crate::segment::{segment_file_name, sync_dir};

/// The resume point's file in the audit folder.
pub const RESUME_FILE: &str = "resume";
/// Where it is written before it is renamed into place.
const RESUME_TEMP: &str = "resume.tmp";
const MAGIC: &[u8; 8] = b"RWRESUME";
/// The layout this code writes and reads; any other is refused.
const VERSION: u32 = 1;
const SIGNATURE_LEN: usize = 64;

/// The log's state at size `chain.next_seq`.
#[derive(Clone, Debug)]
pub(crate) struct ResumePoint {
    pub chain: Chain,
    pub frontier: Frontier,
    /// First sequence number (file name) of the segment record `N` starts in.
    pub segment: u64,
    /// Byte offset in that segment where record `N` starts.
    pub offset: u64,
    /// Byte offset in that segment of record `N - 1`'s frame.
    pub last_frame: u64,
    /// An entry of `checkpoints` covering the first `N` records: opening
    /// reads that file from there on.
    pub checkpoints_at: EntryAt,
}

impl ResumePoint {
    /// The number of records before it.
    pub fn size(&self) -> u64 {
        self.chain.next_seq
    }

    /// Checks, with one read, that record `N - 1` is where the point says,
    /// whole, and the one its chain ends with (its leaf hash and time): the
    /// frontier is held to a signed root, this holds the chain's end.
    pub fn check_last_record(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(segment_file_name(self.segment));
        let bytes = read_at(&path, self.last_frame, self.offset).map_err(|e| e.to_string())?;
        let (head, payload) = bytes.split_at(FRAME_HEAD_LEN.min(bytes.len()));
        let head: [u8; FRAME_HEAD_LEN] = head.try_into().map_err(|_| "no frame there")?;
        let head = FrameHead::parse(head);
        if head.len as usize != payload.len() || !head.matches(payload) {
            return Err(format!("no whole frame at offset {}", self.last_frame));
        }
        let record = crate::record::Record::decode(payload).map_err(|e| e.to_string())?;
        let same = record.seq + 1 == self.size()
            && leaf_hash(payload) == self.chain.last_hash
            && record.time_ns == self.chain.last_time_ns;
        if !same {
            return Err(format!("record {} is not the one it ends with", record.seq));
        }
        Ok(())
    }
}

/// Bytes `from..to` of the file at `path`.
fn read_at(path: &Path, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(to.saturating_sub(from))
        .ok()
        .filter(|len| *len <= FRAME_HEAD_LEN + MAX_FRAME_LEN as usize)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no frame that long"))?;
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The body as stored.
#[derive(Serialize, Deserialize)]
struct Body {
    origin: String,
    size: u64,
    last_hash: Hash,
    last_time_ns: u64,
    datasets: Vec<(String, Hash)>,
    peaks: Vec<Hash>,
    segment: u64,
    offset: u64,
    last_frame: u64,
    checkpoints_offset: u64,
    checkpoints_index: u64,
}

/// Why a resume file is not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
    #[error("it is not a resume file of this layout")]
    Magic,
    #[error("it is of layout {0}, this host reads {VERSION}")]
    Version(u32),
    #[error("it is cut short or has bytes after its end")]
    Length,
    #[error("its integrity hash does not match")]
    Hash,
    #[error("no signing key of this log signed it")]
    Signature,
    #[error("its body does not decode: {0}")]
    Body(postcard::Error),
    #[error("it belongs to origin {0:?}")]
    Origin(String),
    #[error("its {0} does not hold together")]
    Shape(&'static str),
}

/// The encoded file for `point` of the log `origin`, signed by `key`.
fn encode(point: &ResumePoint, origin: &str, key: &PrivateKey) -> Result<Vec<u8>, postcard::Error> {
    let mut datasets: Vec<(String, Hash)> = point
        .chain
        .datasets()
        .iter()
        .map(|(name, hash)| (name.clone(), *hash))
        .collect();
    datasets.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let body = Body {
        origin: origin.to_owned(),
        size: point.size(),
        last_hash: point.chain.last_hash,
        last_time_ns: point.chain.last_time_ns,
        datasets,
        peaks: point.frontier.peaks().to_vec(),
        segment: point.segment,
        offset: point.offset,
        last_frame: point.last_frame,
        checkpoints_offset: point.checkpoints_at.offset,
        checkpoints_index: point.checkpoints_at.index as u64,
    };
    let body = postcard::to_allocvec(&body)?;
    let body_len = u32::try_from(body.len()).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let mut bytes = Vec::with_capacity(body.len() + 112);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&body_len.to_le_bytes());
    bytes.extend_from_slice(&body);
    let hash = sha256(&bytes);
    bytes.extend_from_slice(&hash);
    bytes.extend_from_slice(&key.sign(&hash));
    Ok(bytes)
}

/// Decodes and checks a resume file: layout, hash, a signature by one of
/// `keys`, `origin`, the frontier's shape.
fn decode(bytes: &[u8], origin: &str, keys: &[PrivateKey]) -> Result<ResumePoint, Refused> {
    let head = MAGIC.len() + 8;
    if bytes.len() < head || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Refused::Magic);
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
    let version = word(MAGIC.len());
    if version != VERSION {
        return Err(Refused::Version(version));
    }
    let body_len = word(MAGIC.len() + 4) as usize;
    let hashed = head + body_len;
    if bytes.len() != hashed + 32 + SIGNATURE_LEN {
        return Err(Refused::Length);
    }
    let hash = sha256(&bytes[..hashed]);
    if bytes[hashed..hashed + 32] != hash {
        return Err(Refused::Hash);
    }
    let signature: [u8; SIGNATURE_LEN] = bytes[hashed + 32..]
        .try_into()
        .map_err(|_| Refused::Length)?;
    if !keys.iter().any(|k| k.public().verifies(&hash, &signature)) {
        return Err(Refused::Signature);
    }
    let body: Body = postcard::from_bytes(&bytes[head..hashed]).map_err(Refused::Body)?;
    if body.origin != origin {
        return Err(Refused::Origin(body.origin));
    }
    let frontier = Frontier::from_peaks(body.size, body.peaks).ok_or(Refused::Shape("frontier"))?;
    let datasets: HashMap<String, Hash> = body.datasets.into_iter().collect();
    Ok(ResumePoint {
        chain: Chain::resume(body.size, body.last_hash, body.last_time_ns, datasets),
        frontier,
        segment: body.segment,
        offset: body.offset,
        last_frame: body.last_frame,
        checkpoints_at: EntryAt {
            offset: body.checkpoints_offset,
            index: usize::try_from(body.checkpoints_index)
                .ok()
                .filter(|i| *i > 0)
                .ok_or(Refused::Shape("checkpoint entry"))?,
        },
    })
}

/// Reads the resume file of `dir`: `Ok(None)` when there is none.
pub(crate) fn read(
    dir: &Path,
    origin: &str,
    keys: &[PrivateKey],
) -> Result<Option<ResumePoint>, Refused> {
    let bytes = match fs::read(dir.join(RESUME_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    decode(&bytes, origin, keys).map(Some)
}

/// Replaces the resume file of `dir` with `point`: temp file, fsync,
/// rename, folder fsync.
pub(crate) fn write(
    dir: &Path,
    point: &ResumePoint,
    origin: &str,
    key: &PrivateKey,
) -> io::Result<()> {
    let bytes = encode(point, origin, key).map_err(io::Error::other)?;
    let temp = dir.join(RESUME_TEMP);
    let mut file = File::create(&temp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(RESUME_FILE))?;
    sync_dir(dir)
}

/// Removes the resume file of `dir`, if any (the next open walks it all).
#[cfg(test)]
pub(crate) fn remove(dir: &Path) {
    let _ = fs::remove_file(dir.join(RESUME_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> ResumePoint {
        let mut chain = Chain::default();
        let mut frontier = Frontier::new();
        for i in 0..5u32 {
            let leaf = leaf_hash(&i.to_le_bytes());
            frontier.push(leaf);
            let record = chain.link(
                u64::from(i),
                crate::record::Entry {
                    dataset: Some(format!("d{}", i % 2)),
                    ..crate::record::Entry::of_host(crate::record::Event::PluginLoaded)
                },
            );
            chain.advance(&record, leaf);
        }
        ResumePoint {
            chain,
            frontier,
            segment: 0,
            offset: 123,
            last_frame: 100,
            checkpoints_at: EntryAt {
                offset: 700,
                index: 3,
            },
        }
    }

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from_seed("resume-test", &[n; 32]).expect("key")
    }

    #[test]
    fn round_trips_and_refuses_what_is_not_its_own() {
        let point = point();
        let bytes = encode(&point, "o", &key(1)).expect("encode");
        let back = decode(&bytes, "o", &[key(2), key(1)]).expect("decode");
        assert_eq!(back.size(), 5);
        assert_eq!(back.frontier, point.frontier);
        assert_eq!(back.chain.last_hash, point.chain.last_hash);
        assert_eq!(back.chain.datasets(), point.chain.datasets());
        assert_eq!((back.segment, back.offset), (0, 123));
        assert_eq!(back.checkpoints_at, point.checkpoints_at);

        assert!(matches!(
            decode(&bytes, "p", &[key(1)]),
            Err(Refused::Origin(_))
        ));
        assert!(matches!(
            decode(&bytes, "o", &[key(2)]),
            Err(Refused::Signature)
        ));
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(matches!(
            decode(&flipped, "o", &[key(1)]),
            Err(Refused::Hash)
        ));
        let mut other = bytes.clone();
        other[8] = 2;
        assert!(matches!(
            decode(&other, "o", &[key(1)]),
            Err(Refused::Version(2))
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1], "o", &[key(1)]),
            Err(Refused::Length)
        ));
        assert!(matches!(
            decode(b"nonsense", "o", &[key(1)]),
            Err(Refused::Magic)
        ));
    }
}
