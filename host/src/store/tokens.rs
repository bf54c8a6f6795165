//! The fencing-token counter: one ever-increasing sequence per data root that
//! survives restarts.
//!
//! Tokens are reserved in blocks: the file `.runway-tokens` holds the first
//! token *not* yet reserved, written by temp + fsync + rename + dir fsync
//! before any token of the block is handed out. After a crash the unused
//! rest of a block is skipped, never reused.

use std::io::Write;

use cap_std::fs::Dir;

use super::StoreError;

const FILE: &str = ".runway-tokens";
const BLOCK: u64 = 1024;

pub(super) struct TokenCounter {
    next: u64,
    reserved_until: u64,
}

impl TokenCounter {
    pub(super) fn open(root: &Dir) -> Result<TokenCounter, StoreError> {
        let start = match root.read_to_string(FILE) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| StoreError::Tokens(format!("{FILE} holds {s:?}, not a number")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(StoreError::Tokens(format!("cannot read {FILE}: {e}"))),
        };
        Ok(TokenCounter {
            next: start,
            reserved_until: start,
        })
    }

    pub(super) fn next(&mut self, root: &Dir) -> Result<u64, StoreError> {
        if self.next == self.reserved_until {
            let until = self.next + BLOCK;
            persist(root, until)
                .map_err(|e| StoreError::Tokens(format!("cannot write {FILE}: {e}")))?;
            self.reserved_until = until;
        }
        let token = self.next;
        self.next += 1;
        Ok(token)
    }
}

fn persist(root: &Dir, until: u64) -> std::io::Result<()> {
    let tmp = format!("{FILE}.tmp");
    let mut f = root.create(&tmp)?;
    f.write_all(until.to_string().as_bytes())?;
    f.sync_all()?;
    root.rename(&tmp, root, FILE)?;
    super::sync_dir(root)?;
    Ok(())
}
