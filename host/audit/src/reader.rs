//! Walking the audit folder: every segment in order, every frame in each,
//! every record decoded strictly and checked against the chain.
//!
//! One walk serves both the verifier (which reports an incomplete last frame
//! as a torn tail) and opening the log for writing (which also treats a last
//! frame failing its CRC as torn, then trims it).
//!
//! Since recovery cuts off whatever is called torn, "torn" is decided
//! narrowly: only at the end of the last segment; never when a whole record
//! is found in a frame whose length points past the end of the file (that
//! length was altered); a last frame failing its CRC only if its bytes are
//! not a record that links in place; and a short segment header only if its
//! bytes are the start of the header the log expects there.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::findings::{TornKind, TornTail, VerifyError, VerifyErrorKind};
use crate::frame::{
    FRAME_HEAD_LEN, FrameHead, HeaderError, MAX_FRAME_LEN, SegmentHeader, read_full,
};
use crate::record::{Hash, Record, leaf_hash};
use crate::segment::{SegmentFile, list_segments};

/// How to treat the end of the last segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TailMode<'a> {
    /// An incomplete frame or header, or zeros, are torn; a CRC mismatch is damage.
    Verify,
    /// Also a last frame that fails its CRC is torn (a write cut short);
    /// `origin` is the one the log is opened with, used to recognise the
    /// start of a torn segment header.
    Recover { origin: &'a str },
}

/// The last segment with an intact header, where appending continues.
#[derive(Clone, Debug)]
pub(crate) struct LastSegment {
    pub path: PathBuf,
    /// Bytes up to the end of its last whole record.
    pub len: u64,
    /// Length of its header; `len > header_len` when it holds records.
    pub header_len: u64,
}

/// What a walk found after the last good record.
#[derive(Debug, Default)]
pub(crate) struct WalkEnd {
    pub chain: Chain,
    pub origin: Option<String>,
    /// Segments with an intact header.
    pub segments: usize,
    pub last: Option<LastSegment>,
    pub torn_tail: Option<TornTail>,
}

/// Reads every record of the audit folder `dir`, verified as by
/// [`verify`](crate::verify()). A torn tail is left out.
pub fn read_records(dir: &Path) -> Result<Vec<Record>, VerifyError> {
    let mut records = Vec::new();
    walk(dir, TailMode::Verify, |record, _| {
        records.push(record);
        Ok(())
    })?;
    Ok(records)
}

/// Walks all segments of `dir` in order, checking everything, and hands each
/// good record and its leaf hash to `visit`, stopping at its first error.
pub(crate) fn walk(
    dir: &Path,
    mode: TailMode<'_>,
    mut visit: impl FnMut(Record, Hash) -> Result<(), VerifyError>,
) -> Result<WalkEnd, VerifyError> {
    let segments = list_segments(dir).map_err(|e| VerifyError::folder(VerifyErrorKind::Io(e)))?;
    let mut walker = Walker {
        mode,
        end: WalkEnd::default(),
        payload: Vec::new(),
    };
    let count = segments.len();
    for (index, segment) in segments.iter().enumerate() {
        walker.segment(segment, index + 1 == count, &mut visit)?;
    }
    Ok(walker.end)
}

struct Walker<'a> {
    mode: TailMode<'a>,
    end: WalkEnd,
    /// Reused buffer for a frame's payload.
    payload: Vec<u8>,
}

impl Walker<'_> {
    fn segment(
        &mut self,
        segment: &SegmentFile,
        is_last: bool,
        visit: &mut impl FnMut(Record, Hash) -> Result<(), VerifyError>,
    ) -> Result<(), VerifyError> {
        let at = |seq: Option<u64>, offset: u64, kind: VerifyErrorKind| VerifyError {
            seq,
            segment: Some(segment.name.clone()),
            offset,
            checkpoint: None,
            kind,
        };
        let io = |offset: u64| move |e| at(None, offset, VerifyErrorKind::Io(e));

        let file = File::open(&segment.path).map_err(io(0))?;
        let file_len = file.metadata().map_err(io(0))?.len();
        let mut reader = BufReader::with_capacity(1 << 16, file);

        let header = match SegmentHeader::read_from(&mut reader) {
            Ok(header) => header,
            Err(HeaderError::Incomplete) if is_last => {
                if !self.is_torn_header(segment).map_err(io(0))? {
                    let detail = "file ends inside a header that is not the expected one";
                    return Err(at(None, 0, VerifyErrorKind::BadHeader(detail.into())));
                }
                self.end.torn_tail =
                    Some(self.torn(segment, 0, file_len, TornKind::IncompleteHeader));
                return Ok(());
            }
            Err(HeaderError::Io(e)) => return Err(at(None, 0, VerifyErrorKind::Io(e))),
            Err(e) => return Err(at(None, 0, VerifyErrorKind::BadHeader(e.to_string()))),
        };
        self.check_header(&header, segment)
            .map_err(|kind| at(None, 0, kind))?;
        let header_len = header.encoded_len() as u64;
        self.end.origin.get_or_insert(header.origin);
        self.end.segments += 1;

        let mut offset = header_len;
        let torn_kind = loop {
            let expected = Some(self.end.chain.next_seq);
            let mut head = [0u8; FRAME_HEAD_LEN];
            let got = read_full(&mut reader, &mut head).map_err(io(offset))?;
            if got == 0 {
                break None;
            }
            if got < FRAME_HEAD_LEN {
                break Some(TornKind::IncompleteFrame);
            }
            let head = FrameHead::parse(head);
            if head.len > MAX_FRAME_LEN {
                return Err(at(
                    expected,
                    offset,
                    VerifyErrorKind::FrameTooLong(head.len),
                ));
            }
            if head.len == 0 {
                if is_last && head.crc == 0 && rest_is_zero(&mut reader).map_err(io(offset))? {
                    break Some(TornKind::ZeroFill);
                }
                return Err(at(expected, offset, VerifyErrorKind::EmptyFrame));
            }
            let frame_end = offset + (FRAME_HEAD_LEN as u64) + u64::from(head.len);
            if frame_end > file_len {
                if let Some(actual) = self.whole_record_in(&mut reader).map_err(io(offset))? {
                    let kind = VerifyErrorKind::FrameLengthMismatch {
                        claimed: head.len,
                        actual,
                    };
                    return Err(at(expected, offset, kind));
                }
                break Some(TornKind::IncompleteFrame);
            }
            self.payload.resize(head.len as usize, 0);
            let got = read_full(&mut reader, &mut self.payload).map_err(io(offset))?;
            if got < self.payload.len() {
                // The file shrank under us: the same as an incomplete frame.
                break Some(TornKind::IncompleteFrame);
            }
            if !head.matches(&self.payload) {
                let recovering = matches!(self.mode, TailMode::Recover { .. });
                if recovering && is_last && frame_end == file_len && !self.payload_links() {
                    break Some(TornKind::CrcMismatch);
                }
                return Err(at(expected, offset, VerifyErrorKind::CrcMismatch));
            }
            let record = Record::decode(&self.payload)
                .map_err(|e| at(expected, offset, VerifyErrorKind::Decode(e)))?;
            self.end
                .chain
                .check(&record)
                .map_err(|kind| at(expected, offset, kind))?;
            let leaf = leaf_hash(&self.payload);
            self.end.chain.advance(&record, leaf);
            visit(record, leaf)?;
            offset = frame_end;
        };

        if let Some(kind) = torn_kind {
            if !is_last {
                let expected = Some(self.end.chain.next_seq);
                return Err(at(expected, offset, VerifyErrorKind::TruncatedFrame));
            }
            self.end.torn_tail = Some(self.torn(segment, offset, file_len - offset, kind));
        }
        self.end.last = Some(LastSegment {
            path: segment.path.clone(),
            len: offset,
            header_len,
        });
        Ok(())
    }

    /// Whether the (short) segment file holds the start of the header the
    /// log expects next. Without a known origin (verifying a log whose only
    /// segment is short) any short header counts as torn: verifying changes
    /// nothing, and the report says how many bytes are involved.
    fn is_torn_header(&self, segment: &SegmentFile) -> io::Result<bool> {
        let origin = match (&self.end.origin, self.mode) {
            (Some(origin), _) => origin.as_str(),
            (None, TailMode::Recover { origin }) => origin,
            (None, TailMode::Verify) => return Ok(true),
        };
        let expected = SegmentHeader {
            origin: origin.to_owned(),
            first_seq: segment.first_seq,
            prev_segment: self.end.chain.last_hash,
        };
        let Ok(expected) = expected.encode() else {
            return Ok(false);
        };
        let found = fs::read(&segment.path)?;
        Ok(found.len() < expected.len() && expected.starts_with(&found))
    }

    /// Reads what is left of a frame that runs past the end of the file and
    /// returns the size of a whole record at its start, if there is one. A
    /// write cut short leaves a strict prefix of a record, which never
    /// decodes; a whole record means the length field was altered.
    fn whole_record_in(&mut self, reader: &mut impl Read) -> io::Result<Option<usize>> {
        self.payload.clear();
        reader
            .take(u64::from(MAX_FRAME_LEN))
            .read_to_end(&mut self.payload)?;
        Ok(postcard::take_from_bytes::<Record>(&self.payload)
            .ok()
            .map(|(_, rest)| self.payload.len() - rest.len()))
    }

    /// Whether the payload, CRC aside, is a record that links where it
    /// stands. A write cut short leaves zeros or stale bytes, which do not;
    /// a durable record whose CRC or contents were damaged mostly does, and
    /// must not be trimmed away as if it had never been written.
    fn payload_links(&mut self) -> bool {
        Record::decode(&self.payload).is_ok_and(|record| self.end.chain.check(&record).is_ok())
    }

    fn check_header(
        &self,
        header: &SegmentHeader,
        segment: &SegmentFile,
    ) -> Result<(), VerifyErrorKind> {
        if header.first_seq != segment.first_seq {
            return Err(VerifyErrorKind::BadHeader(format!(
                "file name says first seq {}, header says {}",
                segment.first_seq, header.first_seq
            )));
        }
        if let Some(origin) = &self.end.origin
            && *origin != header.origin
        {
            return Err(VerifyErrorKind::BadHeader(format!(
                "origin {:?} differs from {:?} of earlier segments",
                header.origin, origin
            )));
        }
        let chain = &self.end.chain;
        if header.first_seq != chain.next_seq {
            return Err(VerifyErrorKind::SegmentGap {
                expected: chain.next_seq,
                found: header.first_seq,
            });
        }
        if header.prev_segment != chain.last_hash {
            return Err(VerifyErrorKind::SegmentHashMismatch);
        }
        Ok(())
    }

    fn torn(&self, segment: &SegmentFile, offset: u64, bytes: u64, kind: TornKind) -> TornTail {
        TornTail {
            segment: segment.name.clone(),
            offset,
            bytes,
            seq: self.end.chain.next_seq,
            kind,
        }
    }
}

/// Whether everything left in `reader` is zero bytes.
fn rest_is_zero(reader: &mut impl Read) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    loop {
        let n = read_full(reader, &mut chunk)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        if n < chunk.len() {
            return Ok(true);
        }
    }
}
