//! Reading operator files: the one place the host reads a file someone may
//! have dropped into a folder it watches or named on the command line —
//! plan files, plugin components `NAME.wasm`, grants `NAME.toml`,
//! signatures `NAME.wasm.sig`, public and private keys, trust files.
//!
//! Such a file is hostile input. It is opened without following a symbolic
//! link (`O_NOFOLLOW`), without waiting for a writer (`O_NONBLOCK`, so a
//! FIFO cannot stall the host), never as a controlling terminal and never
//! inherited by a child; `fstat` must say it is a regular file, and it must
//! fit its [`ReadCaps`] cap *before* anything is read — at most cap + 1
//! bytes are ever read, in case it grows. Anything else is refused with a
//! [`FileError`] naming the file and what it is.
//!
//! A refused file's content is never copied into an error: errors name the
//! file, say why, and carry its size and SHA-256 ([`Fingerprint`]); a TOML
//! problem in a regular file is shown as [`TomlProblem`] — its own message,
//! escaped and cut to [`EXCERPT_CHARS`], with line and column — never
//! `toml`'s own `Display`, which quotes the offending line.

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use runway_audit::render::excerpt;
use runway_audit::{Hash, hex, sha256};
use rustix::fs::{FileType, Mode, OFlags};
use thiserror::Error;

/// Default cap on a plan file (4 MiB).
pub const DEFAULT_MAX_PLAN_BYTES: u64 = 4 << 20;
/// Default cap on a grants file (64 KiB).
pub const DEFAULT_MAX_GRANTS_BYTES: u64 = 64 << 10;
/// Default cap on a plugin component (64 MiB).
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// Default cap on a signature, key or trust file (64 KiB).
pub const DEFAULT_MAX_KEY_BYTES: u64 = 64 << 10;
/// Most characters of a file's content an error may show (escaped).
pub const EXCERPT_CHARS: usize = 120;

/// How large each kind of operator file may be, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCaps {
    pub plan: u64,
    pub grants: u64,
    pub component: u64,
    /// Signatures, public and private keys, trust files.
    pub key: u64,
}

impl Default for ReadCaps {
    fn default() -> Self {
        ReadCaps {
            plan: DEFAULT_MAX_PLAN_BYTES,
            grants: DEFAULT_MAX_GRANTS_BYTES,
            component: DEFAULT_MAX_COMPONENT_BYTES,
            key: DEFAULT_MAX_KEY_BYTES,
        }
    }
}

/// Which kind of operator file is read: it picks the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Plan,
    Grants,
    Component,
    /// A signature, key or trust file.
    Key,
}

impl FileKind {
    fn cap(self, caps: &ReadCaps) -> u64 {
        match self {
            FileKind::Plan => caps.plan,
            FileKind::Grants => caps.grants,
            FileKind::Component => caps.component,
            FileKind::Key => caps.key,
        }
    }

    /// Plural noun, as caps are named in errors.
    pub fn files(self) -> &'static str {
        match self {
            FileKind::Plan => "plan files",
            FileKind::Grants => "grants files",
            FileKind::Component => "components",
            FileKind::Key => "signature and key files",
        }
    }
}

/// Why an operator file was not read.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: missing")]
    Missing { path: String },
    /// A symbolic link, FIFO, device, directory or socket.
    #[error("{path}: is {what}, not a regular file ({size} bytes); not read")]
    NotRegular {
        path: String,
        what: &'static str,
        size: u64,
    },
    #[error("{path}: is {size} bytes, over the {cap}-byte cap for {files}; not read")]
    TooLarge {
        path: String,
        size: u64,
        cap: u64,
        files: &'static str,
    },
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
}

/// Reads the operator file at `path` of `kind`, refusing anything but a
/// regular file within its cap.
pub fn read(path: &Path, kind: FileKind, caps: &ReadCaps) -> Result<Vec<u8>, FileError> {
    let shown = path.display().to_string();
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return Err(open_failure(path, shown, e.into())),
    };
    let io = |action| {
        let path = shown.clone();
        move |e: std::io::Error| FileError::Io {
            path,
            action,
            source: e,
        }
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| io("stat")(e.into()))?;
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if file_type != FileType::RegularFile {
        return Err(FileError::NotRegular {
            path: shown,
            what: what_it_is(file_type),
            size,
        });
    }
    let cap = kind.cap(caps);
    let too_large = |size| FileError::TooLarge {
        path: shown.clone(),
        size,
        cap,
        files: kind.files(),
    };
    if size > cap {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::fs::File::from(fd)
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > cap {
        // It grew while being read.
        return Err(too_large(read));
    }
    Ok(bytes)
}

/// Like [`read`], but `None` when the file does not exist.
pub fn read_if_present(
    path: &Path,
    kind: FileKind,
    caps: &ReadCaps,
) -> Result<Option<Vec<u8>>, FileError> {
    match read(path, kind, caps) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(FileError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why `open` failed, said as what the file is when that is the reason.
fn open_failure(path: &Path, shown: String, e: std::io::Error) -> FileError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return FileError::Missing { path: shown };
    }
    // O_NOFOLLOW on a link gives ELOOP; a socket gives ENXIO: look without
    // following to say which.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let file_type = FileType::from_raw_mode(std::os::unix::fs::MetadataExt::mode(&meta));
        if file_type != FileType::RegularFile {
            return FileError::NotRegular {
                path: shown,
                what: what_it_is(file_type),
                size: meta.len(),
            };
        }
    }
    FileError::Io {
        path: shown,
        action: "open",
        source: e,
    }
}

fn what_it_is(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Directory => "a directory",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        _ => "not a regular file",
    }
}

/// What is recorded of a file that was read but refused: its size and
/// SHA-256, never its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub sha256: Hash,
}

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Fingerprint {
        Fingerprint {
            size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            sha256: sha256(bytes),
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes, sha256 {}",
            self.size,
            hex::encode(&self.sha256)
        )
    }
}

/// A TOML problem in an operator's file, safe to show and to record: the
/// parser's own message escaped and cut to [`EXCERPT_CHARS`], and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlProblem {
    pub message: String,
    /// 1-based line and column (in bytes), when the parser knows the place.
    pub at: Option<(usize, usize)>,
}

impl TomlProblem {
    /// From a parse error of `text`.
    pub fn new(error: &toml::de::Error, text: &str) -> TomlProblem {
        let at = error.span().map(|span| {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.len()
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1)
                + 1;
            (line, column)
        });
        TomlProblem {
            message: excerpt(error.message(), EXCERPT_CHARS),
            at,
        }
    }
}

impl fmt::Display for TomlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Metadata of a file, looked at without following links and without
/// reading it: a rescan reads only files whose stamp changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

/// `NAME` in this user's cache folder: `$XDG_CACHE_HOME/runway/NAME`, else
/// `~/.cache/runway/NAME` (the system's temporary folder without a home).
pub fn user_cache(name: &str) -> std::path::PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("runway")
        .join(name)
}

/// The [`Stamp`] of `path`, `None` when it does not exist (or cannot be
/// looked at, which the read that follows will report).
pub fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::symlink_metadata(path).ok()?;
    let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Some(Stamp {
        device: m.dev(),
        inode: m.ino(),
        size: m.size(),
        mtime_ns: ns(m.mtime(), m.mtime_nsec()),
        ctime_ns: ns(m.ctime(), m.ctime_nsec()),
    })
}

/// Puts `bytes` at `path` whole or not at all, with permissions `mode`:
/// written to a new temporary file beside it, synced, renamed over it, and
/// the folder synced — so a symbolic link or FIFO planted at `path` is
/// replaced, never written through, and a crash leaves the old file or the
/// new one.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown = path.display().to_string();
    let io = |action: &'static str| {
        let path = shown.clone();
        move |source| FileError::Io {
            path,
            action,
            source,
        }
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("create its temporary file"))?;
    file.write_all(bytes).map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))?;
    std::fs::rename(&tmp, path).map_err(io("rename into place"))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync its folder"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> ReadCaps {
        ReadCaps {
            plan: 16,
            ..ReadCaps::default()
        }
    }

    #[test]
    fn reads_a_regular_file_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, b"exactly 16 bytes").unwrap();
        assert_eq!(
            read(&path, FileKind::Plan, &caps()).unwrap(),
            b"exactly 16 bytes"
        );
    }

    #[test]
    fn refuses_everything_but_a_regular_file_naming_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("secret"), b"MARKER").unwrap();
        std::os::unix::fs::symlink(d.join("secret"), d.join("link")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, d.join("fifo"), Mode::from_raw_mode(0o600)).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
        std::fs::write(d.join("big"), [b'x'; 17]).unwrap();
        let cases = [
            ("link", "is a symbolic link, not a regular file"),
            ("zero", "is a symbolic link, not a regular file"),
            ("dir", "is a directory, not a regular file"),
            ("fifo", "is a FIFO, not a regular file"),
            ("sock", "is a socket, not a regular file"),
            ("big", "is 17 bytes, over the 16-byte cap for plan files"),
            ("gone", "missing"),
        ];
        for (name, why) in cases {
            let path = d.join(name);
            let err = read(&path, FileKind::Plan, &caps())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("{}: {why}", path.display())),
                "{name}: {err}"
            );
            assert!(!err.contains("MARKER"), "{err}");
        }
        let dev = read(Path::new("/dev/null"), FileKind::Plan, &caps()).unwrap_err();
        assert!(dev.to_string().contains("is a character device"), "{dev}");
    }

    #[test]
    fn toml_problems_never_quote_the_file() {
        let text = format!("a = 1\n{} = 2\n", "MARKER".repeat(40));
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Only {
            a: u32,
        }
        let err = toml::from_str::<Only>(&text).unwrap_err();
        assert!(
            err.to_string().contains(&"MARKER".repeat(40)),
            "toml quotes the line"
        );
        let problem = TomlProblem::new(&err, &text);
        assert_eq!(problem.at, Some((2, 1)));
        assert!(
            problem.message.chars().count() <= EXCERPT_CHARS,
            "{problem}"
        );
        assert!(
            problem.message.starts_with("unknown field `MARKER"),
            "{problem}"
        );
        assert!(problem.message.ends_with('…'), "{problem}");
        let shown = problem.to_string();
        assert!(
            shown.starts_with("line 2, column 1: unknown field"),
            "{shown}"
        );
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn stamps_change_with_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wasm");
        assert_eq!(stamp(&path), None);
        std::fs::write(&path, b"one").unwrap();
        let first = stamp(&path).unwrap();
        assert_eq!(stamp(&path), Some(first));
        std::fs::write(&path, b"three").unwrap();
        assert_ne!(stamp(&path), Some(first));
    }
}
