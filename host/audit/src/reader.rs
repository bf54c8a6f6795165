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
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use std::thread;

use crate::chain::Chain;
use crate::check_pool::CheckPool;
use crate::findings::{TornKind, TornTail, VerifyError, VerifyErrorKind};
use crate::frame::{
    FRAME_HEAD_LEN, FrameHead, HeaderError, MAX_FRAME_LEN, SegmentHeader, read_full,
};
use crate::frame_check::{Block, Chunk, FrameFault};
use crate::record::{Event, Hash, Record, ZERO_HASH};
use crate::segment::{SegmentFile, list_segments};
use crate::tree_check::TreeCheck;

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
    /// Offset of its last whole record's frame (0 when it holds none).
    pub last_frame: u64,
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
    walk(dir, TailMode::Verify, 1, None, |record, _| {
        records.push(take(record));
        Ok(())
    })?;
    Ok(records)
}

/// The record a walk lent, taken out of its chunk.
fn take(record: &mut Record) -> Record {
    let empty = Record {
        seq: 0,
        time_ns: 0,
        prev: ZERO_HASH,
        prev_dataset: None,
        entry: crate::record::Entry::of_host(Event::PluginLoaded),
    };
    std::mem::replace(record, empty)
}

/// Hands every record of `dir` to `visit` in log order, checked as
/// [`read_records`] checks them, without holding them all (decoding on
/// `threads` threads).
pub fn for_each_record(
    dir: &Path,
    threads: usize,
    mut visit: impl FnMut(Record),
) -> Result<(), VerifyError> {
    walk(dir, TailMode::Verify, threads.max(1), None, |record, _| {
        visit(take(record));
        Ok(())
    })
    .map(drop)
}

/// Where a walk begins.
#[derive(Debug, Default)]
pub(crate) enum Start {
    /// At the first record, everything checked.
    #[default]
    Beginning,
    /// After a known chain, at `offset` of the segment whose first record
    /// is `segment`, the chain's last record framed at `last_frame` there
    /// (a resume point): what came before is taken as known.
    At {
        chain: Chain,
        segment: u64,
        offset: u64,
        last_frame: u64,
    },
    /// At record `seq`, nothing before it known: the segment holding it is
    /// the first one read, and its frames before `seq` are skipped unread.
    Seq(u64),
}

/// Hands the records of `dir` from sequence number `from_seq` on to
/// `visit`, in log order, reading only the segments from the one holding
/// `from_seq` (decoding on `threads` threads); returns the sequence number
/// after the last record of the log (below `from_seq` if the log ends
/// before it, and then nothing was visited).
///
/// The frames before `from_seq` in its segment are skipped unread. Every
/// record visited is checked as [`read_records`] checks it (CRC, strict
/// decoding, sequence, time order, the hash chain) except what links it to
/// records before `from_seq`: the first one's `prev` (unless it is its
/// segment's first) and the first record of each dataset after
/// `from_seq`. Opening the log for writing, or [`verify`](crate::verify()),
/// checks those.
pub fn for_each_record_from(
    dir: &Path,
    from_seq: u64,
    threads: usize,
    mut visit: impl FnMut(Record),
) -> Result<u64, VerifyError> {
    let start = match from_seq {
        0 => Start::Beginning,
        seq => Start::Seq(seq),
    };
    let end = walk_from(
        dir,
        TailMode::Verify,
        threads.max(1),
        None,
        start,
        |record, _| {
            if record.seq >= from_seq {
                visit(take(record));
            }
            Ok(())
        },
    )?;
    Ok(end.chain.next_seq)
}

/// Walks all segments of `dir` in order, checking everything, and hands each
/// good record and its leaf hash to `visit`, stopping at its first error;
/// grows `tree`, when given, with every good record, as `visit` would.
///
/// Frames are checked on their own (CRC, decoding, leaf hash, the tree's
/// subtrees within a chunk) on `threads` threads, and linked and visited on
/// this one in log order, so the first error is the same whatever the
/// number of threads.
pub(crate) fn walk(
    dir: &Path,
    mode: TailMode<'_>,
    threads: usize,
    tree: Option<&mut TreeCheck>,
    visit: impl FnMut(&mut Record, Hash) -> Result<(), VerifyError>,
) -> Result<WalkEnd, VerifyError> {
    walk_from(dir, mode, threads, tree, Start::Beginning, visit)
}

/// [`walk`] from `start` on: the segments before the one it names are not
/// read at all.
pub(crate) fn walk_from(
    dir: &Path,
    mode: TailMode<'_>,
    threads: usize,
    mut tree: Option<&mut TreeCheck>,
    start: Start,
    mut visit: impl FnMut(&mut Record, Hash) -> Result<(), VerifyError>,
) -> Result<WalkEnd, VerifyError> {
    let segments = list_segments(dir).map_err(|e| VerifyError::folder(VerifyErrorKind::Io(e)))?;
    let (first, mut entry, chain) = match start {
        Start::Beginning => (0, Entry::Whole, Chain::default()),
        Start::At {
            chain,
            segment,
            offset,
            last_frame,
        } => {
            let Some(index) = segments.iter().position(|s| s.first_seq == segment) else {
                let missing = io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no segment starts at record {segment}"),
                );
                return Err(VerifyError::folder(VerifyErrorKind::Io(missing)));
            };
            (index, Entry::At(offset, last_frame), chain)
        }
        Start::Seq(seq) => {
            let index = segments
                .iter()
                .rposition(|s| s.first_seq <= seq)
                .unwrap_or(0);
            let skip = segments
                .get(index)
                .map_or(0, |s| seq.saturating_sub(s.first_seq));
            (index, Entry::Skip(skip), Chain::default())
        }
    };
    let mut walker = Walker {
        mode,
        end: WalkEnd {
            chain,
            ..WalkEnd::default()
        },
        good_end: 0,
        last_frame: 0,
        crc_torn: false,
    };
    let count = segments.len();
    thread::scope(|scope| {
        let mut pool = CheckPool::start(scope, threads);
        for (index, segment) in segments.iter().enumerate().skip(first) {
            let last = index + 1 == count;
            let how = std::mem::replace(&mut entry, Entry::Whole);
            walker.segment(
                segment,
                (last, how),
                &mut pool,
                tree.as_deref_mut(),
                &mut visit,
            )?;
        }
        Ok(())
    })?;
    Ok(walker.end)
}

/// How a walk enters a segment.
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// At its first record, its header checked against the chain.
    Whole,
    /// At this byte offset, after the chain it was given, whose last
    /// record's frame is at the second offset.
    At(u64, u64),
    /// Skipping this many frames unread; the chain starts there.
    Skip(u64),
}

struct Walker<'a> {
    mode: TailMode<'a>,
    end: WalkEnd,
    /// In the current segment: the end of the last record linked.
    good_end: u64,
    /// In the current segment: the offset of the last record linked.
    last_frame: u64,
    /// Recovering: the current segment's last frame fails its CRC and is
    /// no record that links, so it is a torn write.
    crc_torn: bool,
}

/// What ended the reading of a segment's frames.
enum Stop {
    /// The end of the file, after a whole frame.
    End,
    Torn(TornKind),
    Damage(VerifyErrorKind),
    Io(io::Error),
}

impl Walker<'_> {
    fn segment(
        &mut self,
        segment: &SegmentFile,
        (is_last, entry): (bool, Entry),
        pool: &mut CheckPool,
        mut tree: Option<&mut TreeCheck>,
        visit: &mut impl FnMut(&mut Record, Hash) -> Result<(), VerifyError>,
    ) -> Result<(), VerifyError> {
        let io = |offset: u64| move |e| at(segment, None, offset, VerifyErrorKind::Io(e));

        let file = File::open(&segment.path).map_err(io(0))?;
        let file_len = file.metadata().map_err(io(0))?.len();
        let mut reader = BufReader::with_capacity(1 << 16, file);

        let header = match SegmentHeader::read_from(&mut reader) {
            Ok(header) => header,
            Err(HeaderError::Incomplete) if is_last => {
                if !self.is_torn_header(segment).map_err(io(0))? {
                    let detail = "file ends inside a header that is not the expected one";
                    return Err(at(
                        segment,
                        None,
                        0,
                        VerifyErrorKind::BadHeader(detail.into()),
                    ));
                }
                self.end.torn_tail =
                    Some(self.torn(segment, 0, file_len, TornKind::IncompleteHeader));
                return Ok(());
            }
            Err(HeaderError::Io(e)) => return Err(at(segment, None, 0, VerifyErrorKind::Io(e))),
            Err(e) => {
                return Err(at(
                    segment,
                    None,
                    0,
                    VerifyErrorKind::BadHeader(e.to_string()),
                ));
            }
        };
        let header_len = header.encoded_len() as u64;
        match entry {
            Entry::Whole => self.check_header(&header, segment),
            Entry::At(..) | Entry::Skip(_) => self.check_header_alone(&header, segment),
        }
        .map_err(|kind| at(segment, None, 0, kind))?;
        if let Entry::Skip(_) = entry {
            self.end.chain = Chain::partial(header.first_seq, Some(header.prev_segment));
        }
        self.end.origin.get_or_insert(header.origin);
        self.end.segments += 1;

        let mut offset = header_len;
        match entry {
            Entry::Whole => {}
            Entry::At(at_offset, last_frame) => {
                if at_offset < header_len || at_offset > file_len {
                    let kind = VerifyErrorKind::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("resume offset {at_offset} lies outside the segment"),
                    ));
                    return Err(at(segment, None, at_offset, kind));
                }
                reader
                    .seek(SeekFrom::Start(at_offset))
                    .map_err(io(at_offset))?;
                offset = at_offset;
                self.last_frame = last_frame;
            }
            Entry::Skip(frames) => {
                offset = self
                    .skip(&mut reader, (offset, file_len), frames)
                    .map_err(io(offset))?
            }
        }
        self.good_end = offset;
        if let Entry::Whole | Entry::Skip(_) = entry {
            self.last_frame = 0;
        }
        self.crc_torn = false;
        let with_blocks = tree.is_some();
        let mut consume = |chunk: &mut Chunk| {
            let tree = tree.as_deref_mut();
            self.consume(chunk, segment, (is_last, file_len), tree, visit)
        };
        let new_chunk = |pool: &mut CheckPool| {
            let mut chunk = pool.chunk();
            chunk.with_blocks = with_blocks;
            chunk
        };
        // The header (and frames skipped) came through the small buffered
        // reader; frames are read straight into chunks from here on.
        let mut file = reader.into_inner();
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            return Err(at(segment, None, offset, VerifyErrorKind::Io(e)));
        }
        let mut left = file_len.saturating_sub(offset);
        let mut chunk = new_chunk(pool);
        // Where the next frame's head starts in the chunk's buffer.
        let mut cursor = 0;
        let stop = loop {
            let wanted = FRAME_HEAD_LEN;
            if !chunk.fits(cursor, wanted) && !chunk.is_empty() {
                hand_on(pool, (&mut chunk, &mut cursor), with_blocks, &mut consume)?;
            }
            let got = match chunk.fill(&mut file, (cursor, wanted), &mut left) {
                Ok(got) => got,
                Err(e) => break Stop::Io(e),
            };
            if got == 0 {
                break Stop::End;
            }
            if got < FRAME_HEAD_LEN {
                break Stop::Torn(TornKind::IncompleteFrame);
            }
            let mut head = [0u8; FRAME_HEAD_LEN];
            head.copy_from_slice(&chunk.unread(cursor)[..FRAME_HEAD_LEN]);
            let head = FrameHead::parse(head);
            // What follows the head, for the rare checks that read on.
            let body = cursor + FRAME_HEAD_LEN;
            if head.len > MAX_FRAME_LEN {
                break Stop::Damage(VerifyErrorKind::FrameTooLong(head.len));
            }
            if head.len == 0 {
                if is_last && head.crc == 0 {
                    let rest = chunk.unread(body).chain((&mut file).take(left));
                    match rest_is_zero(&mut { rest }) {
                        Ok(true) => break Stop::Torn(TornKind::ZeroFill),
                        Ok(false) => {}
                        Err(e) => break Stop::Io(e),
                    }
                }
                break Stop::Damage(VerifyErrorKind::EmptyFrame);
            }
            let frame_end = offset + (FRAME_HEAD_LEN as u64) + u64::from(head.len);
            if frame_end > file_len {
                // Only the bytes the file held when the walk began: a
                // writer appending meanwhile has not altered a length.
                let rest = chunk.unread(body).chain((&mut file).take(left));
                break match whole_record_in(&mut { rest }) {
                    Ok(Some(actual)) => Stop::Damage(VerifyErrorKind::FrameLengthMismatch {
                        claimed: head.len,
                        actual,
                    }),
                    Ok(None) => Stop::Torn(TornKind::IncompleteFrame),
                    Err(e) => Stop::Io(e),
                };
            }
            let wanted = FRAME_HEAD_LEN + head.len as usize;
            if !chunk.fits(cursor, wanted) && !chunk.is_empty() {
                hand_on(pool, (&mut chunk, &mut cursor), with_blocks, &mut consume)?;
            }
            match chunk.fill(&mut file, (cursor, wanted), &mut left) {
                Ok(got) if got >= wanted => {}
                // The file shrank under us: the same as an incomplete frame.
                Ok(_) => break Stop::Torn(TornKind::IncompleteFrame),
                Err(e) => break Stop::Io(e),
            }
            chunk.push_frame(cursor, offset, head);
            cursor += wanted;
            offset = frame_end;
            if chunk.is_full() {
                hand_on(pool, (&mut chunk, &mut cursor), with_blocks, &mut consume)?;
            }
        };
        // What stopped the reading counts only once every frame before it
        // has passed, as when each frame is checked as soon as it is read.
        if !chunk.is_empty() {
            pool.submit(chunk, &mut consume)?;
        }
        pool.drain(&mut consume)?;
        let torn_kind = match stop {
            _ if self.crc_torn => {
                offset = self.good_end;
                Some(TornKind::CrcMismatch)
            }
            Stop::End => None,
            Stop::Torn(kind) => Some(kind),
            Stop::Damage(kind) => {
                return Err(at(segment, Some(self.end.chain.next_seq), offset, kind));
            }
            Stop::Io(e) => return Err(at(segment, None, offset, VerifyErrorKind::Io(e))),
        };

        if let Some(kind) = torn_kind {
            if !is_last {
                let expected = Some(self.end.chain.next_seq);
                return Err(at(
                    segment,
                    expected,
                    offset,
                    VerifyErrorKind::TruncatedFrame,
                ));
            }
            self.end.torn_tail = Some(self.torn(segment, offset, file_len - offset, kind));
        }
        self.end.last = Some(LastSegment {
            path: segment.path.clone(),
            len: offset,
            header_len,
            last_frame: self.last_frame,
        });
        Ok(())
    }

    /// Links the checked frames of `chunk` in order and visits their
    /// records (and grows the tree), stopping at the first that is bad or
    /// does not link. A block of the chunk goes into the tree whole once
    /// its last record linked, when no checkpoint's size falls inside it;
    /// otherwise its leaves go in one by one.
    fn consume(
        &mut self,
        chunk: &mut Chunk,
        segment: &SegmentFile,
        (is_last, file_len): (bool, u64),
        mut tree: Option<&mut TreeCheck>,
        visit: &mut impl FnMut(&mut Record, Hash) -> Result<(), VerifyError>,
    ) -> Result<(), VerifyError> {
        let mut blocks = chunk.blocks.iter().copied().peekable();
        // The block being filled, if it goes into the tree whole.
        let mut whole: Option<Block> = None;
        for (i, frame) in chunk.frames.iter().enumerate() {
            let expected = Some(self.end.chain.next_seq);
            let (record, leaf) = match &mut chunk.checked[i] {
                Ok((record, leaf)) => (record, *leaf),
                Err(FrameFault::CrcMismatch) => {
                    let recovering = matches!(self.mode, TailMode::Recover { .. });
                    if recovering
                        && is_last
                        && frame.end == file_len
                        && !self.payload_links(chunk.payload(frame))
                    {
                        self.crc_torn = true;
                        return Ok(());
                    }
                    let kind = VerifyErrorKind::CrcMismatch;
                    return Err(at(segment, expected, frame.offset, kind));
                }
                Err(FrameFault::Undecodable(e)) => {
                    let kind = VerifyErrorKind::Decode(e.clone());
                    return Err(at(segment, expected, frame.offset, kind));
                }
            };
            self.end
                .chain
                .follow(record, leaf)
                .map_err(|kind| at(segment, expected, frame.offset, kind))?;
            let seq = record.seq;
            visit(record, leaf)?;
            if let Some(tree) = tree.as_deref_mut() {
                if whole.is_none() {
                    while blocks.next_if(|b| b.end() <= seq).is_some() {}
                    whole = blocks
                        .next_if(|b| b.start == seq && b.start == tree.size())
                        .filter(|b| tree.fits(b.height));
                }
                match whole {
                    Some(block) if block.end() == seq + 1 => {
                        tree.push_subtree(block.height, block.root)?;
                        whole = None;
                    }
                    Some(_) => {}
                    None => tree.push(leaf)?,
                }
            }
            self.good_end = frame.end;
            self.last_frame = frame.offset;
        }
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

    /// Whether `payload`, CRC aside, is a record that links where it
    /// stands. A write cut short leaves zeros or stale bytes, which do not;
    /// a durable record whose CRC or contents were damaged mostly does, and
    /// must not be trimmed away as if it had never been written.
    fn payload_links(&self, payload: &[u8]) -> bool {
        Record::decode(payload).is_ok_and(|record| self.end.chain.check(&record).is_ok())
    }

    /// Skips up to `frames` whole frames from `offset` unread, moving the
    /// chain past them; stops early before anything that is not a whole
    /// frame (the walk then reads it and says what it is). Returns the
    /// offset reached.
    fn skip(
        &mut self,
        reader: &mut BufReader<File>,
        (mut offset, file_len): (u64, u64),
        frames: u64,
    ) -> io::Result<u64> {
        for _ in 0..frames {
            let mut head = [0u8; FRAME_HEAD_LEN];
            let got = read_full(reader, &mut head)?;
            let len = u64::from(FrameHead::parse(head).len);
            let end = offset + FRAME_HEAD_LEN as u64 + len;
            let whole = got == FRAME_HEAD_LEN
                && len != 0
                && len <= u64::from(MAX_FRAME_LEN)
                && end <= file_len;
            if !whole {
                reader.seek_relative(-(got as i64))?;
                break;
            }
            reader.seek_relative(len as i64)?;
            offset = end;
            self.end.chain.skip();
        }
        Ok(offset)
    }

    /// Checks what a segment's header says of itself alone: its file name
    /// and the origin of the segments before it.
    fn check_header_alone(
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
        Ok(())
    }

    fn check_header(
        &self,
        header: &SegmentHeader,
        segment: &SegmentFile,
    ) -> Result<(), VerifyErrorKind> {
        self.check_header_alone(header, segment)?;
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

/// Hands `chunk` on to be checked and consumed, and puts in its place a
/// new one holding what it read from `cursor` on (the start of a frame).
fn hand_on(
    pool: &mut CheckPool,
    (chunk, cursor): (&mut Chunk, &mut usize),
    with_blocks: bool,
    consume: &mut impl FnMut(&mut Chunk) -> Result<(), VerifyError>,
) -> Result<(), VerifyError> {
    let mut next = pool.chunk();
    next.with_blocks = with_blocks;
    next.carry_from(chunk, *cursor);
    *cursor = 0;
    pool.submit(std::mem::replace(chunk, next), consume)
}

/// Reads what is left of a frame that runs past the end of the file and
/// returns the size of a whole record at its start, if there is one. A
/// write cut short leaves a strict prefix of a record, which never decodes;
/// a whole record means the length field was altered.
fn whole_record_in(reader: &mut impl Read) -> io::Result<Option<usize>> {
    let mut rest = Vec::new();
    reader
        .take(u64::from(MAX_FRAME_LEN))
        .read_to_end(&mut rest)?;
    Ok(postcard::take_from_bytes::<Record>(&rest)
        .ok()
        .map(|(_, left)| rest.len() - left.len()))
}

/// An error in `segment`.
fn at(segment: &SegmentFile, seq: Option<u64>, offset: u64, kind: VerifyErrorKind) -> VerifyError {
    VerifyError {
        seq,
        segment: Some(segment.name.clone()),
        offset,
        checkpoint: None,
        kind,
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
