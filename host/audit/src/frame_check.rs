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

use crate::frame::FrameHead;
use crate::merkle::node_hash;
use crate::record::{DecodeError, Hash, Record, leaf_hash};

/// A chunk is handed on once it holds this many frames...
const CHUNK_FRAMES: usize = 4096;
/// ...or its buffer, this large unless one frame needs more, holds no
/// further whole frame.
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
///
/// The segment is read straight into the chunk's buffer ([`fill`](Chunk::fill),
/// big reads) and frames are cut out where they lie, so a record's bytes
/// are copied once, from the kernel; only the start of a frame cut by the
/// end of the buffer moves to the next chunk.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// The buffer, zeroed once; bytes past `filled` are not the file's.
    bytes: Vec<u8>,
    filled: usize,
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
    /// Reads from `file` into the buffer after `from` until `need` bytes
    /// are there or the file (at most `left` more bytes of it) ends, in
    /// reads as large as the buffer allows; grows the buffer if `need`
    /// bytes do not fit after `from`. Returns the bytes there after `from`.
    pub fn fill(
        &mut self,
        file: &mut impl Read,
        (from, need): (usize, usize),
        left: &mut u64,
    ) -> io::Result<usize> {
        let size = (from + need).max(CHUNK_BYTES);
        if self.bytes.len() < size {
            self.bytes.resize(size, 0);
        }
        while self.filled - from < need {
            let room = (self.bytes.len() - self.filled) as u64;
            let want = usize::try_from(room.min(*left)).unwrap_or(usize::MAX);
            if want == 0 {
                break;
            }
            match file.read(&mut self.bytes[self.filled..self.filled + want]) {
                Ok(0) => break,
                Ok(n) => {
                    self.filled += n;
                    *left -= n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.filled - from)
    }

    /// The bytes read after `from` and not cut into frames.
    pub fn unread(&self, from: usize) -> &[u8] {
        &self.bytes[from.min(self.filled)..self.filled]
    }

    /// Whether `need` bytes from `from` fit in the buffer as it is.
    pub fn fits(&self, from: usize, need: usize) -> bool {
        from + need <= self.bytes.len().max(CHUNK_BYTES)
    }

    /// Takes the frame with `head` whose head starts at `at` in the
    /// buffer and at `offset` in its segment (all its bytes read).
    pub fn push_frame(&mut self, at: usize, offset: u64, head: FrameHead) {
        let end = offset + crate::frame::FRAME_HEAD_LEN as u64 + u64::from(head.len);
        self.frames.push(FrameAt {
            offset,
            end,
            head,
            start: at + crate::frame::FRAME_HEAD_LEN,
        });
    }

    /// Starts this (empty) chunk with the bytes `from` on that `previous`
    /// read and did not cut into frames.
    pub fn carry_from(&mut self, previous: &Chunk, from: usize) {
        let rest = previous.unread(from);
        if self.bytes.len() < rest.len().max(CHUNK_BYTES) {
            self.bytes.resize(rest.len().max(CHUNK_BYTES), 0);
        }
        self.bytes[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// Whether the chunk should be handed on before taking another frame.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= CHUNK_FRAMES
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
        self.filled = 0;
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
