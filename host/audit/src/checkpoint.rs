//! Signed checkpoints (C2SP `tlog-checkpoint`) and the two files that hold
//! them in the audit folder.
//!
//! A checkpoint is the note text
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <base64 of the root hash>
//! [extension lines]
//! ```
//!
//! signed as a [`Note`]. Extension lines (C2SP `tlog-checkpoint`: any
//! non-empty lines after the third) are kept and covered by the signature;
//! Runway's writer makes none. `checkpoints` holds every checkpoint the writer
//! made, each note followed by a blank line, appended and `fdatasync`ed;
//! `checkpoint` holds the latest alone, replaced by temp file, fsync, rename
//! and folder fsync. A checkpoint is always appended before it becomes the
//! latest, so `checkpoint` is never ahead of `checkpoints`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::PrivateKey;
use crate::note::{Note, NoteError};
use crate::record::Hash;
use crate::segment::sync_dir;

/// Every checkpoint, in order.
pub const CHECKPOINTS_FILE: &str = "checkpoints";
/// The latest checkpoint alone.
pub const LATEST_FILE: &str = "checkpoint";
/// Where the latest checkpoint is written before it is renamed into place.
const LATEST_TEMP: &str = "checkpoint.tmp";

/// A tree head: the log's origin, its size and root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Lines after the root, each without its newline; signed with the rest.
    pub extensions: Vec<String>,
}

/// A checkpoint with its signatures (checked or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: Note,
}

/// Why text is not a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointSyntax {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("checkpoint text is not origin, size and root lines: {0}")]
    Body(&'static str),
    #[error("checkpoint text is not UTF-8")]
    NotUtf8,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, then any extension
    /// lines, one per line.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Parses [`body`](Self::body)'s form strictly: at least three lines, a
    /// decimal size without leading zeros, canonical base64 of 32 bytes,
    /// then non-empty extension lines.
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointSyntax> {
        let lines = text
            .strip_suffix('\n')
            .ok_or(CheckpointSyntax::Body("no final newline"))?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointSyntax::Body("fewer than three lines"));
        };
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointSyntax::Body("empty extension line"));
        }
        if origin.is_empty() {
            return Err(CheckpointSyntax::Body("empty origin"));
        }
        let canonical_size = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse()
            .ok()
            .filter(|_| canonical_size)
            .ok_or(CheckpointSyntax::Body("size is not a decimal number"))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .ok_or(CheckpointSyntax::Body("root is not base64 of 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "size {} root {}",
            self.size,
            crate::hex::encode(&self.root)
        )
    }
}

impl SignedCheckpoint {
    /// `checkpoint` signed by every key in `keys`.
    pub fn sign(
        checkpoint: Checkpoint,
        keys: &[PrivateKey],
    ) -> Result<SignedCheckpoint, NoteError> {
        let note = Note::sign(&checkpoint.body(), keys)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Parses a signed checkpoint note (signatures unchecked).
    pub fn parse(text: &str) -> Result<SignedCheckpoint, CheckpointSyntax> {
        let note = Note::parse(text)?;
        let checkpoint = Checkpoint::parse_body(&note.text)?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Parses a file's bytes, which must be UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SignedCheckpoint, CheckpointSyntax> {
        let text = std::str::from_utf8(bytes).map_err(|_| CheckpointSyntax::NotUtf8)?;
        SignedCheckpoint::parse(text)
    }
}

impl fmt::Display for SignedCheckpoint {
    /// The signed note, as stored.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.note.fmt(f)
    }
}

/// One checkpoint found in the `checkpoints` file.
#[derive(Clone, Debug)]
pub struct CheckpointEntry {
    /// Position in the file, from 1.
    pub index: usize,
    /// Byte offset of the entry.
    pub offset: u64,
    pub parsed: Result<SignedCheckpoint, CheckpointSyntax>,
}

/// The `checkpoints` file read back.
#[derive(Clone, Debug, Default)]
pub struct CheckpointFile {
    pub entries: Vec<CheckpointEntry>,
    /// An incomplete last entry (a write cut short): where it starts, how
    /// many bytes it has.
    pub torn: Option<(u64, u64)>,
    /// Bytes up to the end of the last whole entry.
    pub len: u64,
}

/// Why a checkpoint file cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointFileError {
    #[error("cannot read {file}: {error}")]
    Io { file: String, error: io::Error },
    /// CRLF line endings: no line would be blank, so the whole file would
    /// read as one unfinished entry swallowing the complete ones.
    #[error("{file} line {line} ends in a carriage return (CRLF line endings?)")]
    CarriageReturn { file: String, line: usize },
}

/// Reads the `checkpoints` file of `dir`; a missing file has no entries.
pub fn read_checkpoint_file(dir: &Path) -> Result<CheckpointFile, CheckpointFileError> {
    read_checkpoint_file_from(dir, EntryAt::FIRST)
}

/// Where an entry of the `checkpoints` file starts, and its index (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryAt {
    pub offset: u64,
    pub index: usize,
}

impl EntryAt {
    /// The start of the file.
    pub const FIRST: EntryAt = EntryAt {
        offset: 0,
        index: 1,
    };
}

/// Reads the `checkpoints` file of `dir` from the entry `from` on, the
/// entries before it unread (offsets and indexes stay the file's). A
/// missing file has no entries; one shorter than `from` is an error.
pub(crate) fn read_checkpoint_file_from(
    dir: &Path,
    from: EntryAt,
) -> Result<CheckpointFile, CheckpointFileError> {
    let unreadable = |error| CheckpointFileError::Io {
        file: CHECKPOINTS_FILE.into(),
        error,
    };
    let mut file = match File::open(dir.join(CHECKPOINTS_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound && from == EntryAt::FIRST => {
            return Ok(CheckpointFile::default());
        }
        Err(error) => return Err(unreadable(error)),
    };
    let len = file.metadata().map_err(unreadable)?.len();
    if len < from.offset {
        let short = io::Error::new(io::ErrorKind::InvalidData, "shorter than expected");
        return Err(unreadable(short));
    }
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(from.offset))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(unreadable)?;
    check_line_ends(CHECKPOINTS_FILE, &bytes)?;
    let mut read = split_entries(&bytes);
    for entry in &mut read.entries {
        entry.offset += from.offset;
        entry.index += from.index - 1;
    }
    read.len += from.offset;
    if let Some((offset, _)) = &mut read.torn {
        *offset += from.offset;
    }
    Ok(read)
}

/// Refuses checkpoint text holding a carriage return, naming `file` and
/// the line (from 1).
pub fn check_line_ends(file: &str, bytes: &[u8]) -> Result<(), CheckpointFileError> {
    match bytes.iter().position(|&b| b == b'\r') {
        None => Ok(()),
        Some(at) => Err(CheckpointFileError::CarriageReturn {
            file: file.to_owned(),
            line: 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count(),
        }),
    }
}

/// Splits the file into entries: lines up to a blank line (the note's
/// text), lines up to the next blank line (its signatures). Whatever is left
/// after the last whole entry is torn.
pub fn split_entries(bytes: &[u8]) -> CheckpointFile {
    let mut file = CheckpointFile::default();
    let mut start = 0;
    let mut at = 0;
    let mut blank_lines = 0;
    while let Some(newline) = bytes[at..].iter().position(|&b| b == b'\n') {
        let line_end = at + newline;
        let empty = line_end == at;
        at = line_end + 1;
        if !empty {
            continue;
        }
        blank_lines += 1;
        if blank_lines == 2 {
            // The note is everything up to and including its last signature
            // line's newline; the blank line after it separates entries.
            let note = &bytes[start..at - 1];
            file.entries.push(CheckpointEntry {
                index: file.entries.len() + 1,
                offset: start as u64,
                parsed: SignedCheckpoint::parse_bytes(note),
            });
            start = at;
            blank_lines = 0;
        }
    }
    file.len = start as u64;
    if start < bytes.len() {
        file.torn = Some((start as u64, (bytes.len() - start) as u64));
    }
    file
}

/// Reads the `checkpoint` file of `dir`, if there is one.
pub fn read_latest(dir: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(dir.join(LATEST_FILE)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Appends checkpoints and replaces the latest one; owned by the thread
/// that signs.
pub(crate) struct CheckpointWriter {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    /// Bytes of the file.
    len: u64,
    /// Where its last entry starts.
    last: Option<EntryAt>,
}

/// An I/O step that failed, and on which file.
pub(crate) type StepError = (&'static str, PathBuf, io::Error);

impl CheckpointWriter {
    /// Opens `checkpoints` of `dir` for appending (creating it durably),
    /// after cutting it back to `len` bytes (dropping a torn entry); its
    /// last whole entry is at `last`.
    pub fn open(
        dir: &Path,
        len: u64,
        last: Option<EntryAt>,
    ) -> Result<CheckpointWriter, StepError> {
        let path = dir.join(CHECKPOINTS_FILE);
        let step = |action| {
            let path = path.clone();
            move |e| (action, path, e)
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(step("open"))?;
        if file.metadata().map_err(step("stat"))?.len() != len {
            file.set_len(len).map_err(step("trim torn checkpoint of"))?;
            file.sync_all().map_err(step("fsync"))?;
        }
        if !existed {
            file.sync_all().map_err(step("fsync"))?;
            sync_dir(dir).map_err(|e| ("fsync folder", dir.to_owned(), e))?;
        }
        Ok(CheckpointWriter {
            dir: dir.to_owned(),
            file,
            path,
            len,
            last,
        })
    }

    /// Makes `signed` durable in `checkpoints`, then the latest.
    pub fn publish(&mut self, signed: &SignedCheckpoint) -> Result<(), StepError> {
        let mut entry = signed.to_string();
        entry.push('\n');
        let path = &self.path;
        self.file
            .write_all(entry.as_bytes())
            .map_err(|e| ("append to", path.clone(), e))?;
        self.file
            .sync_data()
            .map_err(|e| ("fdatasync", path.clone(), e))?;
        self.last = Some(EntryAt {
            offset: self.len,
            index: self.last.map_or(1, |at| at.index + 1),
        });
        self.len += entry.len() as u64;
        write_latest(&self.dir, signed.to_string().as_bytes())
    }

    /// Where the last entry of the file starts, if it has one.
    pub fn last_entry(&self) -> Option<EntryAt> {
        self.last
    }
}

/// Replaces `checkpoint` in `dir` with `bytes`: temp file, fsync, rename,
/// folder fsync.
pub(crate) fn write_latest(dir: &Path, bytes: &[u8]) -> Result<(), StepError> {
    let temp = dir.join(LATEST_TEMP);
    let latest = dir.join(LATEST_FILE);
    let at = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |e| (action, path, e)
    };
    let mut file = File::create(&temp).map_err(at("create", &temp))?;
    file.write_all(bytes).map_err(at("write", &temp))?;
    file.sync_all().map_err(at("fsync", &temp))?;
    drop(file);
    fs::rename(&temp, &latest).map_err(at("rename into", &latest))?;
    sync_dir(dir).map_err(at("fsync folder", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::test_key;

    fn signed(size: u64) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            origin: "runway.test/audit".into(),
            size,
            root: [size as u8; 32],
            extensions: Vec::new(),
        };
        SignedCheckpoint::sign(checkpoint, &[test_key("runway", 1)]).expect("sign")
    }

    #[test]
    fn body_round_trips() {
        let c = signed(1234).checkpoint;
        let body = c.body();
        assert!(body.starts_with("runway.test/audit\n1234\n"), "{body}");
        assert_eq!(Checkpoint::parse_body(&body), Ok(c));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let root = BASE64.encode([7u8; 32]);
        for bad in [
            format!("o\n012\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            format!("o\n1\n{root}"),
            format!("o\n1\n{root}\n\n"),
            "o\n1\n".to_owned(),
            format!("\n1\n{root}\n"),
            "o\n1\nAAAA\n".to_owned(),
            format!("o\n1\n{}\n", &root[..root.len() - 1]),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
        assert!(Checkpoint::parse_body(&format!("o\n0\n{root}\n")).is_ok());
    }

    #[test]
    fn extension_lines_round_trip() {
        let root = BASE64.encode([7u8; 32]);
        let body = format!("o\n1\n{root}\nrekor.example/witness 5\nmore\n");
        let parsed = Checkpoint::parse_body(&body).expect("extensions are allowed");
        assert_eq!(parsed.extensions, ["rekor.example/witness 5", "more"]);
        assert_eq!(parsed.body(), body);
    }

    #[test]
    fn crlf_is_refused_naming_the_line() {
        let text = signed(3).to_string().replace('\n', "\r\n");
        let err = check_line_ends("checkpoints", text.as_bytes()).expect_err("crlf");
        assert!(
            matches!(err, CheckpointFileError::CarriageReturn { line: 1, .. }),
            "{err}"
        );
        let mut mixed = signed(3).to_string();
        mixed.push_str("\nruny\r\n");
        let err = check_line_ends("checkpoints", mixed.as_bytes()).expect_err("cr");
        assert_eq!(
            err.to_string(),
            "checkpoints line 7 ends in a carriage return (CRLF line endings?)"
        );
    }

    #[test]
    fn the_checkpoints_file_splits_into_entries() {
        let mut bytes = Vec::new();
        for size in [1, 5, 9] {
            bytes.extend_from_slice(signed(size).to_string().as_bytes());
            bytes.push(b'\n');
        }
        let file = split_entries(&bytes);
        assert_eq!(file.torn, None);
        assert_eq!(file.len, bytes.len() as u64);
        let sizes: Vec<u64> = file
            .entries
            .iter()
            .map(|e| e.parsed.as_ref().expect("parsed").checkpoint.size)
            .collect();
        assert_eq!(sizes, [1, 5, 9]);

        // Any cut inside the last entry leaves a torn tail and two entries.
        let second_end = file.entries[2].offset as usize;
        for cut in second_end + 1..bytes.len() {
            let file = split_entries(&bytes[..cut]);
            assert_eq!(file.entries.len(), 2, "cut {cut}");
            assert_eq!(
                file.torn,
                Some((second_end as u64, (cut - second_end) as u64))
            );
            assert!(file.entries.iter().all(|e| e.parsed.is_ok()));
        }
    }

    #[test]
    fn latest_is_replaced_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = CheckpointWriter::open(dir.path(), 0, None).expect("open");
        for size in [3, 4] {
            writer.publish(&signed(size)).expect("publish");
        }
        let latest = read_latest(dir.path()).expect("read").expect("latest");
        let parsed = SignedCheckpoint::parse_bytes(&latest).expect("parse");
        assert_eq!(parsed.checkpoint.size, 4);
        assert!(!dir.path().join(LATEST_TEMP).exists());
        let file = read_checkpoint_file(dir.path()).expect("read");
        assert_eq!(file.entries.len(), 2);
        // Where the writer says its last entry is, reading from there
        // finds it alone, numbered as in the whole file.
        let last = writer.last_entry().expect("an entry");
        assert_eq!((last.offset, last.index), (file.entries[1].offset, 2));
        let tail = read_checkpoint_file_from(dir.path(), last).expect("read from");
        assert_eq!(tail.entries.len(), 1);
        assert_eq!(
            (tail.entries[0].offset, tail.entries[0].index),
            (last.offset, 2)
        );
        assert_eq!(tail.entries[0].parsed.as_ref().ok(), Some(&signed(4)));
        assert_eq!((tail.len, tail.torn), (file.len, None));
    }
}
