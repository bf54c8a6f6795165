//! Opening an existing audit folder for writing: read it all back, verifying
//! every record, and trim a torn tail left by a crash.
//!
//! A torn tail (an incomplete frame or header, or a last frame failing its
//! CRC, at the very end of the last segment) is the remains of a write that
//! never became durable, so no caller was told it succeeded: it is cut off
//! and reported. Damage anywhere before it is an error and nothing is changed.

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::chain::Chain;
use crate::error::AuditError;
use crate::reader::{LastSegment, TailMode, walk};
use crate::segment::sync_dir;
use crate::verify::{TornKind, TornTail};

/// Where writing continues.
pub(crate) struct Recovered {
    pub chain: Chain,
    pub last: Option<LastSegment>,
    /// What was trimmed, if anything.
    pub trimmed: Option<TornTail>,
}

/// Reads `dir` back, checks it belongs to `origin`, and trims a torn tail.
pub(crate) fn recover(dir: &Path, origin: &str) -> Result<Recovered, AuditError> {
    let end = walk(dir, TailMode::Recover { origin }, |_, _| {})?;
    if let Some(found) = end.origin
        && found != origin
    {
        return Err(AuditError::OriginMismatch {
            dir: dir.to_owned(),
            expected: origin.to_owned(),
            found,
        });
    }
    if let Some(torn) = &end.torn_tail {
        trim(dir, torn)?;
    }
    Ok(Recovered {
        chain: end.chain,
        last: end.last,
        trimmed: end.torn_tail,
    })
}

/// Removes the torn bytes durably: a segment with a torn header goes away
/// entirely, otherwise the segment is cut back to its last whole record.
fn trim(dir: &Path, torn: &TornTail) -> Result<(), AuditError> {
    let path = dir.join(&torn.segment);
    let io = |action: &'static str| {
        let path = path.clone();
        move |error| AuditError::Io {
            action,
            path,
            error,
        }
    };
    match torn.kind {
        TornKind::IncompleteHeader => {
            fs::remove_file(&path).map_err(io("remove torn segment"))?;
            sync_dir(dir).map_err(io("fsync the folder of"))?;
        }
        TornKind::IncompleteFrame | TornKind::ZeroFill | TornKind::CrcMismatch => {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io("open"))?;
            file.set_len(torn.offset)
                .map_err(io("truncate torn tail of"))?;
            file.sync_all().map_err(io("fsync"))?;
        }
    }
    Ok(())
}
