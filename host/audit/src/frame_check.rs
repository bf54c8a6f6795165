//! Checking frames on their own: a frame's CRC32C, the strict decoding of
//! its record and the record's leaf hash. This is the part of a walk that
//! needs no other record, so a [`Chunk`] of frames, already read, can be
//! checked on any thread; what links records to each other (sequence, both
//! chains, time, the tree) is checked afterwards, in log order, by the walk.

use std::io::{self, Read};

use crate::frame::{FrameHead, read_full};
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

    /// Checks every frame on its own, filling in [`Chunk::checked`].
    pub fn check(&mut self) {
        let checked = self
            .frames
            .iter()
            .map(|frame| check_frame(frame.head, self.payload(frame)))
            .collect();
        self.checked = checked;
    }

    /// Empties the chunk for reuse, keeping its allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.frames.clear();
        self.checked.clear();
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
