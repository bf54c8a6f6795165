//! One host per data root: an exclusive `flock` on `runway.lock`, held for
//! the life of the store, with the holder's pid written in it so a second
//! host is refused naming who has it. The kernel drops the lock when the
//! process dies, kill -9 included, so a crash never leaves it stale.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

use rustix::fs::{FlockOperation, flock};

use super::StoreError;

/// The lock file's name in the data root.
pub const LOCK_FILE: &str = "runway.lock";

/// Held while the store is open.
pub struct RootLock {
    _file: File,
}

impl RootLock {
    pub fn take(root: &Path) -> Result<RootLock, StoreError> {
        let shown = root.display().to_string();
        let io = |source| StoreError::OpenRoot {
            path: shown.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join(LOCK_FILE))
            .map_err(io)?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StoreError::Locked {
                path: shown.clone(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.chars().take(20).collect()
                },
            });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(RootLock { _file: file })
    }
}
