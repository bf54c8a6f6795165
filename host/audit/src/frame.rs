//! On-disk framing: the segment header and the `length ‖ CRC32C ‖ bytes`
//! frame around each encoded record.
//!
//! Segment header, all integers little-endian:
//!
//! ```text
//! "RUNWAYAL" ‖ version u16 ‖ origin length u16 ‖ origin (UTF-8)
//!            ‖ first seq u64 ‖ previous segment's last leaf hash [32]
//!            ‖ CRC32C of everything before it, u32
//! ```
//!
//! Frame: `length u32 ‖ CRC32C(bytes) u32 ‖ bytes`, where `bytes` is one
//! canonical postcard [`Record`](crate::Record). Lengths above
//! [`MAX_FRAME_LEN`] are corruption and are rejected before allocating.

use std::io::{self, Read};

use crate::record::Hash;

/// First eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"RUNWAYAL";
/// The segment format this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before a frame's payload: length and CRC32C.
pub const FRAME_HEAD_LEN: usize = 8;
/// Largest payload a frame may carry (16 MiB).
pub const MAX_FRAME_LEN: u32 = 16 << 20;

/// Bytes of the header before the origin: magic, version, origin length.
const HEADER_PREFIX_LEN: usize = 8 + 2 + 2;
/// Bytes of the header after the origin: first seq, previous hash, CRC.
const HEADER_SUFFIX_LEN: usize = 8 + 32 + 4;

/// The header at the start of each segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The log's origin line (as in a C2SP checkpoint), the same in every segment.
    pub origin: String,
    /// Sequence number of the segment's first record.
    pub first_seq: u64,
    /// Leaf hash of the last record of the previous segment; zeros for the first.
    pub prev_segment: Hash,
}

/// Why a segment header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The file ends inside the header.
    #[error("file ends inside the segment header")]
    Incomplete,
    #[error("wrong magic (not a Runway audit segment)")]
    BadMagic,
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
    #[error("origin is not UTF-8")]
    OriginNotUtf8,
    #[error("header CRC mismatch")]
    CrcMismatch,
    #[error("origin is {0} bytes, more than a header can hold")]
    OriginTooLong(usize),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl SegmentHeader {
    /// The encoded header, CRC included.
    pub fn encode(&self) -> Result<Vec<u8>, HeaderError> {
        let origin_len = u16::try_from(self.origin.len())
            .map_err(|_| HeaderError::OriginTooLong(self.origin.len()))?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&origin_len.to_le_bytes());
        out.extend_from_slice(self.origin.as_bytes());
        out.extend_from_slice(&self.first_seq.to_le_bytes());
        out.extend_from_slice(&self.prev_segment);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Length of the encoded header.
    pub fn encoded_len(&self) -> usize {
        HEADER_PREFIX_LEN + self.origin.len() + HEADER_SUFFIX_LEN
    }

    /// Reads and checks a header from the start of a segment.
    pub fn read_from(reader: &mut impl Read) -> Result<SegmentHeader, HeaderError> {
        let mut prefix = [0u8; HEADER_PREFIX_LEN];
        read_all(reader, &mut prefix)?;
        if prefix[..8] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u16::from_le_bytes([prefix[8], prefix[9]]);
        let origin_len = usize::from(u16::from_le_bytes([prefix[10], prefix[11]]));
        let mut rest = vec![0u8; origin_len + HEADER_SUFFIX_LEN];
        read_all(reader, &mut rest)?;

        let (covered, crc) = rest.split_at(rest.len() - 4);
        let mut digest = crc32c::crc32c(&prefix);
        digest = crc32c::crc32c_append(digest, covered);
        if digest.to_le_bytes() != crc {
            return Err(HeaderError::CrcMismatch);
        }
        // Only a CRC-checked version is trusted enough to be reported.
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let (origin, fixed) = covered.split_at(origin_len);
        let origin = std::str::from_utf8(origin).map_err(|_| HeaderError::OriginNotUtf8)?;
        let (seq, prev) = fixed.split_at(8);
        let mut first_seq = [0u8; 8];
        first_seq.copy_from_slice(seq);
        let mut prev_segment = [0u8; 32];
        prev_segment.copy_from_slice(prev);
        Ok(SegmentHeader {
            origin: origin.to_owned(),
            first_seq: u64::from_le_bytes(first_seq),
            prev_segment,
        })
    }
}

/// Reads exactly `buf.len()` bytes, calling an early end of file [`HeaderError::Incomplete`].
fn read_all(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), HeaderError> {
    if read_full(reader, buf)? < buf.len() {
        return Err(HeaderError::Incomplete);
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
pub fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The length and CRC in front of a frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    pub len: u32,
    pub crc: u32,
}

impl FrameHead {
    pub fn parse(bytes: [u8; FRAME_HEAD_LEN]) -> FrameHead {
        let [l0, l1, l2, l3, c0, c1, c2, c3] = bytes;
        FrameHead {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        }
    }

    /// Whether `payload` matches this head's CRC.
    pub fn matches(&self, payload: &[u8]) -> bool {
        crc32c::crc32c(payload) == self.crc
    }
}

/// A payload too large to frame.
#[derive(Debug, thiserror::Error)]
#[error("record of {0} bytes exceeds the {MAX_FRAME_LEN}-byte frame limit")]
pub struct FrameTooLong(pub usize);

/// Starts a frame in `buf`: reserves room for its head and returns where the
/// frame starts. Write the payload after it, then call [`seal_frame`].
pub fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEAD_LEN]);
    start
}

/// Fills in the head of the frame begun at `start`, covering everything after it.
pub fn seal_frame(buf: &mut [u8], start: usize) -> Result<(), FrameTooLong> {
    let payload_len = buf.len() - start - FRAME_HEAD_LEN;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|&len| len <= MAX_FRAME_LEN)
        .ok_or(FrameTooLong(payload_len))?;
    let (head, payload) = buf[start..].split_at_mut(FRAME_HEAD_LEN);
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    Ok(())
}

/// `payload` framed on its own.
pub fn frame(payload: &[u8]) -> Result<Vec<u8>, FrameTooLong> {
    let mut buf = Vec::with_capacity(FRAME_HEAD_LEN + payload.len());
    let start = begin_frame(&mut buf);
    buf.extend_from_slice(payload);
    seal_frame(&mut buf, start)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SegmentHeader {
        SegmentHeader {
            origin: "runway.example/audit".into(),
            first_seq: 42,
            prev_segment: [3; 32],
        }
    }

    #[test]
    fn header_round_trips() {
        let bytes = header().encode().expect("encode");
        assert_eq!(bytes.len(), header().encoded_len());
        assert_eq!(&bytes[..8], b"RUNWAYAL");
        let read = SegmentHeader::read_from(&mut bytes.as_slice()).expect("read");
        assert_eq!(read, header());
    }

    #[test]
    fn header_damage_is_caught() {
        let bytes = header().encode().expect("encode");
        for i in 8..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let err = SegmentHeader::read_from(&mut bad.as_slice());
            assert!(err.is_err(), "flip at {i} not caught");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            SegmentHeader::read_from(&mut bad.as_slice()),
            Err(HeaderError::BadMagic)
        ));
        assert!(matches!(
            SegmentHeader::read_from(&mut &bytes[..bytes.len() - 1]),
            Err(HeaderError::Incomplete)
        ));
    }

    #[test]
    fn frame_head_covers_payload() {
        let framed = frame(b"hello").expect("frame");
        let mut head = [0u8; FRAME_HEAD_LEN];
        head.copy_from_slice(&framed[..FRAME_HEAD_LEN]);
        let head = FrameHead::parse(head);
        assert_eq!(head.len, 5);
        assert!(head.matches(b"hello"));
        assert!(!head.matches(b"hellp"));
    }
}
