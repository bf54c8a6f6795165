//! Committing a run's staged changes to one dataset atomically, even across
//! a crash, with a small redo journal.
//!
//! 1. Each new value is written to a temporary (`.tmp-<token>-<n>`), the new
//!    fence to `.fence.tmp`, and the *intent* — every rename and delete, then
//!    `end` — to `.commit.tmp`; one `syncfs` makes all of it durable.
//! 2. `.commit.tmp` is renamed to `.commit` and the directory flushed: this
//!    is the commit point.
//! 3. The intent is applied (renames, deletes), the directory flushed, and
//!    `.commit` removed.
//!
//! On opening a dataset, [`recover`] finishes a commit whose `.commit`
//! exists (applying an intent twice is harmless) and deletes the leftovers
//! of one that never reached its commit point, so a dataset is always either
//! before or after a run, never halfway.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use cap_std::fs::Dir;

use super::{Change, CommitStats};
use crate::names;

const INTENT: &str = ".commit";
const INTENT_TMP: &str = ".commit.tmp";
const FENCE: &str = ".fence";
const FENCE_TMP: &str = ".fence.tmp";

/// What a commit will do, as recorded in `.commit`.
#[derive(Debug, PartialEq, Eq)]
struct Intent {
    /// (temporary, final file) pairs; the fence is one of them.
    renames: Vec<(String, String)>,
    /// Files to remove.
    deletes: Vec<String>,
}

impl Intent {
    fn encode(&self) -> String {
        let mut out = String::new();
        for (tmp, file) in &self.renames {
            out.push_str(&format!("rename {tmp} {file}\n"));
        }
        for file in &self.deletes {
            out.push_str(&format!("delete {file}\n"));
        }
        out.push_str("end\n");
        out
    }

    /// `None` unless the text is a whole intent (ends with `end`).
    fn parse(text: &str) -> Option<Intent> {
        let mut intent = Intent {
            renames: Vec::new(),
            deletes: Vec::new(),
        };
        for line in text.lines() {
            let mut words = line.split(' ');
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("rename"), Some(tmp), Some(file), None) => {
                    intent.renames.push((tmp.into(), file.into()))
                }
                (Some("delete"), Some(file), None, None) => intent.deletes.push(file.into()),
                (Some("end"), None, None, None) => return Some(intent),
                _ => return None,
            }
        }
        None
    }

    /// Applies the intent; safe to repeat.
    fn apply(&self, dir: &Dir) -> std::io::Result<u32> {
        for (tmp, file) in &self.renames {
            match dir.rename(tmp, dir, file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // done before a crash
                other => other?,
            }
        }
        let mut deleted = 0;
        for file in &self.deletes {
            match dir.remove_file(file) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

/// Commits `changes` under `token` into `dir` (see the module doc). Past
/// `deadline` no more temporaries are written. Any failure before the commit
/// point (a full disk, an I/O error, the deadline) removes every temporary
/// written so far before returning, so a failed commit leaves nothing behind
/// and the next one starts clean; a failure after it leaves `.commit` for
/// [`recover`] to finish.
pub(super) fn commit(
    dir: &Dir,
    token: u64,
    changes: &BTreeMap<String, Change>,
    deadline: Instant,
) -> std::io::Result<CommitStats> {
    let mut intent = Intent {
        renames: Vec::new(),
        deletes: Vec::new(),
    };
    let prepared = prepare(dir, token, changes, deadline, &mut intent);
    if let Err(e) = prepared {
        for (tmp, _) in &intent.renames {
            let _ = dir.remove_file(tmp);
        }
        let _ = dir.remove_file(INTENT_TMP);
        return Err(e);
    }
    super::sync_dir(dir)?; // the commit point
    let deletes = intent.apply(dir)?;
    super::sync_dir(dir)?;
    dir.remove_file(INTENT)?;
    Ok(CommitStats {
        writes: (intent.renames.len() - 1) as u32,
        deletes,
    })
}

/// Step 1 and the rename of step 2: every temporary, the fence and the
/// intent written and flushed, `.commit` in place. Everything written is
/// listed in `intent.renames` (or is `.commit.tmp`) as it is created.
fn prepare(
    dir: &Dir,
    token: u64,
    changes: &BTreeMap<String, Change>,
    deadline: Instant,
    intent: &mut Intent,
) -> std::io::Result<()> {
    for (i, (key, change)) in changes.iter().enumerate() {
        if i % 256 == 0 && Instant::now() >= deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the commit did not fit in the run's window",
            ));
        }
        match change {
            Change::Put(value) => {
                let tmp = format!(".tmp-{token}-{i}");
                intent.renames.push((tmp.clone(), names::key_to_file(key)));
                write_file(dir, &tmp, value)?;
            }
            Change::Delete => intent.deletes.push(names::key_to_file(key)),
        }
    }
    intent.renames.push((FENCE_TMP.into(), FENCE.into()));
    write_file(dir, FENCE_TMP, token.to_string().as_bytes())?;
    write_file(dir, INTENT_TMP, intent.encode().as_bytes())?;
    // One flush for all temporaries instead of one per file.
    rustix::fs::syncfs(dir.open(".")?)?;
    dir.rename(INTENT_TMP, dir, INTENT)
}

/// Finishes or undoes whatever a crash interrupted in `dir`. Returns true
/// when a committed intent had to be finished.
pub(super) fn recover(dir: &Dir) -> std::io::Result<bool> {
    let finished = match dir.read_to_string(INTENT) {
        Ok(text) => {
            let intent = Intent::parse(&text).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the commit journal .commit is incomplete",
                )
            })?;
            intent.apply(dir)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let mut stale = Vec::new();
    for entry in dir.entries()? {
        let name = entry?.file_name();
        if let Some(name) = name.to_str()
            && (name.starts_with(".tmp-") || name == INTENT_TMP || name == FENCE_TMP)
        {
            stale.push(name.to_string());
        }
    }
    for name in &stale {
        dir.remove_file(name)?;
    }
    if finished || !stale.is_empty() {
        super::sync_dir(dir)?;
        if finished {
            dir.remove_file(INTENT)?;
        }
    }
    Ok(finished)
}

fn write_file(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = dir.create(name)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn open(path: &std::path::Path) -> Dir {
        Dir::open_ambient_dir(path, ambient_authority()).unwrap()
    }

    fn files(dir: &Dir) -> BTreeMap<String, Vec<u8>> {
        dir.entries()
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|n| (n.clone(), dir.read(&n).unwrap()))
            .collect()
    }

    #[test]
    fn intent_round_trips_and_rejects_torn_text() {
        let intent = Intent {
            renames: vec![(".tmp-1-0".into(), "a:b".into())],
            deletes: vec!["c".into()],
        };
        let text = intent.encode();
        assert_eq!(Intent::parse(&text), Some(intent));
        assert_eq!(Intent::parse(&text[..text.len() - 4]), None);
    }

    #[test]
    fn a_crash_after_the_commit_point_is_rolled_forward() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        write_file(&dir, "old", b"1").unwrap();
        write_file(&dir, "gone", b"x").unwrap();
        // Simulate: temporaries and intent durable, nothing applied yet.
        write_file(&dir, ".tmp-7-0", b"2").unwrap();
        write_file(&dir, FENCE_TMP, b"7").unwrap();
        let intent = Intent {
            renames: vec![
                (".tmp-7-0".into(), "old".into()),
                (FENCE_TMP.into(), FENCE.into()),
            ],
            deletes: vec!["gone".into()],
        };
        write_file(&dir, INTENT, intent.encode().as_bytes()).unwrap();
        assert!(recover(&dir).unwrap());
        let after = files(&dir);
        assert_eq!(after.keys().collect::<Vec<_>>(), [".fence", "old"]);
        assert_eq!(after["old"], b"2");
        assert_eq!(after[".fence"], b"7");
    }

    #[test]
    fn a_crash_before_the_commit_point_is_undone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(tmp.path());
        write_file(&dir, "old", b"1").unwrap();
        write_file(&dir, ".tmp-7-0", b"2").unwrap();
        write_file(&dir, INTENT_TMP, b"rename .tmp-7-0 old\n").unwrap();
        assert!(!recover(&dir).unwrap());
        let after = files(&dir);
        assert_eq!(after.keys().collect::<Vec<_>>(), ["old"]);
        assert_eq!(after["old"], b"1");
    }
}
