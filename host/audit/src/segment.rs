//! Segment files in the audit folder: their names, listing them in order,
//! the folder's origin as its first segment says, and making a new or
//! removed file durable by syncing the folder.
//!
//! A segment is named after its first record, `seg-<20-digit seq>.log`, so
//! a plain directory listing sorts in log order. Other files in the folder
//! (checkpoints, temporaries) are not segments and are left alone.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "seg-";
const SUFFIX: &str = ".log";
const SEQ_DIGITS: usize = 20;

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:0SEQ_DIGITS$}{SUFFIX}")
}

/// The first sequence number a segment file name announces, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One segment file found in the audit folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    /// First sequence number, from the file name.
    pub first_seq: u64,
    /// The file name, e.g. `seg-00000000000000000000.log`.
    pub name: String,
    pub path: PathBuf,
}

/// The segment files in `dir`, in log order.
pub fn list_segments(dir: &Path) -> io::Result<Vec<SegmentFile>> {
    let mut segments = Vec::new();
    for dirent in fs::read_dir(dir)? {
        let dirent = dirent?;
        let Some(name) = dirent.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(first_seq) = parse_segment_file_name(&name) {
            segments.push(SegmentFile {
                first_seq,
                path: dirent.path(),
                name,
            });
        }
    }
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

/// The origin in the header of the first segment of `dir`; `None` for a
/// folder that is missing, has no segment, or whose first header is
/// unreadable (opening or verifying it says why).
pub fn folder_origin(dir: &Path) -> Option<String> {
    let first = list_segments(dir).ok()?.into_iter().next()?;
    let mut file = io::BufReader::new(File::open(first.path).ok()?);
    crate::frame::SegmentHeader::read_from(&mut file)
        .ok()
        .map(|header| header.origin)
}

/// Makes the creation, removal or rename of files in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(segment_file_name(17), "seg-00000000000000000017.log");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("seg-17.log"), None);
        assert_eq!(
            parse_segment_file_name("seg-0000000000000000001x.log"),
            None
        );
        assert_eq!(parse_segment_file_name("checkpoint"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn lists_only_segments_in_order() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        for seq in [30, 0, 12] {
            fs::write(dir.path().join(segment_file_name(seq)), b"")?;
        }
        fs::write(dir.path().join("checkpoint"), b"")?;
        let seqs: Vec<u64> = list_segments(dir.path())?
            .iter()
            .map(|s| s.first_seq)
            .collect();
        assert_eq!(seqs, [0, 12, 30]);
        Ok(())
    }
}
