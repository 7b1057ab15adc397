//! The only place in the workspace that talks to the operating system.
//!
//! One file per platform, as memmap2 does; platforms without an implementation get a stub whose
//! calls fail with `io::ErrorKind::Unsupported`.

// The stub constructs few of the shared data types' variants.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

// Under loom the futex is modelled, so the real one goes unused there.
#[cfg(target_os = "linux")]
#[cfg_attr(loom, allow(dead_code))]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::*;

// Process management (signals, pidfd, parent death signal), for `crate::sys`.
#[cfg(unix)]
mod process;
#[cfg(unix)]
pub(crate) use process::*;

// Plain data about files, the same on every platform.

/// The identity of a file: device and inode. Two names or descriptors with the same `FileId`
/// are the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// What kind of file a name or descriptor refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileType {
    Regular,
    Fifo,
    Directory,
    Symlink,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

/// What `fstat`/`lstat` says about a file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileStat {
    pub(crate) len: u64,
    pub(crate) id: FileId,
    pub(crate) file_type: FileType,
    /// Permission bits (`st_mode & 0o7777`).
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    /// Last modification (for a segment: when it was sized, as writes through a mapping of a
    /// tmpfs file do not update it).
    pub(crate) modified: Option<std::time::SystemTime>,
}

impl FileType {
    /// What to call it in a message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FileType::Regular => "regular file",
            FileType::Fifo => "FIFO",
            FileType::Directory => "directory",
            FileType::Symlink => "symbolic link",
            FileType::Socket => "socket",
            FileType::CharDevice => "character device",
            FileType::BlockDevice => "block device",
            FileType::Other => "special file",
        }
    }
}

/// Whether a pid exists, by `kill(pid, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exists {
    /// The call succeeded, or failed with `EPERM` (another user's process).
    Yes,
    /// `ESRCH`: no process or thread has this id.
    No,
    /// Any other failure (a seccomp filter, an invalid pid): cannot tell.
    Unknown,
}

/// What `/proc/<pid>/stat` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcStat {
    /// Running (or sleeping, stopped...), with its `starttime` (clock ticks since boot).
    Running {
        /// Field 22 of the stat line.
        start_time: u64,
    },
    /// A zombie or dead task: it has exited.
    Zombie,
    /// The file could not be read or parsed: no such process, no `/proc`, or `hidepid`.
    Unreadable,
}

/// Why [`shm_open`] failed.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// The OS refused (not found, permission...).
    Io(std::io::Error),
    /// The name is not a regular file (a FIFO, a symlink, a directory...).
    NotRegular(FileType),
}

/// Who has which shm file mapped or open, from one pass over `/proc`.
#[derive(Debug, Default)]
pub(crate) struct UsersScan {
    /// False if `/proc` could not be listed at all.
    pub(crate) complete: bool,
    /// For each shm file some process maps or holds open: those processes (sorted, unique).
    pub(crate) by_file: std::collections::HashMap<FileId, Vec<u32>>,
    /// Processes whose maps or descriptors could not be read, with their owner's uid.
    pub(crate) uninspectable: Vec<(u32, u32)>,
    /// `/proc` is mounted with `hidepid`, so other users' processes may not even be listed.
    pub(crate) may_hide: bool,
    /// Shm files somebody holds a `flock` on (from `/proc/locks`).
    pub(crate) locked: std::collections::HashSet<FileId>,
}

/// Result of a futex wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWait {
    /// Woken, or the value had already changed, or a signal interrupted the wait: re-check.
    Woken,
    /// The absolute deadline passed.
    TimedOut,
}
