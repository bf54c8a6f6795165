//! Checking frames on their own: a frame's CRC32C, the strict decoding of
//! its record and the record's leaf hash. This is the part of a walk that
//! needs no other record, so a [`Chunk`] of frames, already read, can be
//! checked on any thread; what links records to each other (sequence, both
//! chains, time, the tree) is checked afterwards, in log order, by the walk.
//!
//! So that the walk's own thread does little per record, a check also
//! hashes the chunk's leaves into the [`Block`]s its records would fill in
//! the tree (aligned perfect subtrees, placed by the first record's
//! sequence number, which the walk checks before using one), and drops the
//! records the chunk held before (a record is freed on the thread that
//! checked it, not on the walk's).

use std::io::{self, Read};

use crate::frame::{FrameHead, read_full};
use crate::merkle::node_hash;
use crate::record::{DecodeError, Hash, Record, leaf_hash};

/// A chunk is handed on once it holds this many frames...
const CHUNK_FRAMES: usize = 1024;
/// ...or this many payload bytes.
const CHUNK_BYTES: usize = 256 << 10;

/// One frame read whole: where it lies in its segment and in its chunk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameAt {
    /// Offset of the frame (its head) in the segment file.
    pub offset: u64,
    /// Offset just past its payload.
    pub end: u64,
    pub head: FrameHead,
    /// Where its payload starts in [`Chunk::bytes`].
    start: usize,
}

/// What checking one frame on its own found: a canonical record and its
/// leaf hash, or what is wrong with the frame.
pub(crate) type Checked = Result<(Record, Hash), FrameFault>;

/// Why a frame, on its own, holds no record.
#[derive(Debug)]
pub(crate) enum FrameFault {
    /// The payload does not match the CRC in the frame's head.
    CrcMismatch,
    /// The CRC matches but the payload is not a canonical record.
    Undecodable(DecodeError),
}

/// Consecutive frames of one segment, their payloads and, once
/// [`check`](Chunk::check)ed, what each holds.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    bytes: Vec<u8>,
    pub frames: Vec<FrameAt>,
    /// One per frame after [`Chunk::check`].
    pub checked: Vec<Checked>,
    /// Whether [`Chunk::check`] fills in [`Chunk::blocks`] (the walk grows a tree).
    pub with_blocks: bool,
    /// The tree's perfect subtrees over the leading good records, in order.
    pub blocks: Vec<Block>,
    /// Room for hashing a block.
    scratch: Vec<Hash>,
}

/// A perfect subtree of the log's tree: `1 << height` leaves from `start`
/// (a multiple of its size), and its root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub start: u64,
    pub height: u32,
    pub root: Hash,
}

impl Block {
    /// One past its last leaf.
    pub fn end(&self) -> u64 {
        self.start + (1 << self.height)
    }
}

impl Chunk {
    /// Reads the payload of the frame at `offset` with `head` from `reader`
    /// into the chunk; `false` (and nothing added) if the input ends first.
    pub fn read_frame(
        &mut self,
        reader: &mut impl Read,
        offset: u64,
        head: FrameHead,
    ) -> io::Result<bool> {
        let start = self.bytes.len();
        let len = head.len as usize;
        self.bytes.resize(start + len, 0);
        if read_full(reader, &mut self.bytes[start..])? < len {
            self.bytes.truncate(start);
            return Ok(false);
        }
        let end = offset + crate::frame::FRAME_HEAD_LEN as u64 + u64::from(head.len);
        self.frames.push(FrameAt {
            offset,
            end,
            head,
            start,
        });
        Ok(true)
    }

    /// Whether the chunk should be handed on before taking another frame.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= CHUNK_FRAMES || self.bytes.len() >= CHUNK_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The payload of `frame`, one of this chunk's.
    pub fn payload(&self, frame: &FrameAt) -> &[u8] {
        &self.bytes[frame.start..frame.start + frame.head.len as usize]
    }

    /// Checks every frame on its own, filling in [`Chunk::checked`] and
    /// [`Chunk::blocks`] (the records checked before are dropped here).
    pub fn check(&mut self) {
        self.checked.clear();
        let Chunk {
            bytes,
            frames,
            checked,
            ..
        } = self;
        checked.extend(frames.iter().map(|frame| {
            check_frame(
                frame.head,
                &bytes[frame.start..frame.start + frame.head.len as usize],
            )
        }));
        self.fill_blocks();
    }

    /// Hashes the leaves of the leading good records into blocks: from the
    /// first record's sequence number on, each block the largest aligned
    /// one that fits.
    fn fill_blocks(&mut self) {
        self.blocks.clear();
        let Some(Ok((first, _))) = self.checked.first().filter(|_| self.with_blocks) else {
            return;
        };
        let start = first.seq;
        let good = self.checked.iter().take_while(|c| c.is_ok()).count() as u64;
        let Some(end) = start.checked_add(good) else {
            return;
        };
        let mut at = start;
        while at < end {
            let fits = 63 - (end - at).leading_zeros();
            let height = at.trailing_zeros().min(fits);
            let from = (at - start) as usize;
            self.scratch.clear();
            self.scratch.extend(
                self.checked[from..from + (1 << height)]
                    .iter()
                    .filter_map(|c| c.as_ref().ok().map(|(_, leaf)| *leaf)),
            );
            let mut width = self.scratch.len();
            while width > 1 {
                for i in 0..width / 2 {
                    self.scratch[i] = node_hash(&self.scratch[2 * i], &self.scratch[2 * i + 1]);
                }
                width /= 2;
            }
            self.blocks.push(Block {
                start: at,
                height,
                root: self.scratch[0],
            });
            at += 1 << height;
        }
    }

    /// Empties the chunk for reuse, keeping its allocations (and its
    /// records, until the next check drops them on its own thread).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
    }
}

/// CRC, then strict decoding, then the leaf hash, as a walk checks them.
fn check_frame(head: FrameHead, payload: &[u8]) -> Checked {
    if !head.matches(payload) {
        return Err(FrameFault::CrcMismatch);
    }
    let record = Record::decode(payload).map_err(FrameFault::Undecodable)?;
    Ok((record, leaf_hash(payload)))
}
