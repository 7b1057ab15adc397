//! Errors of the dict, list and namespace operations, one enum per kind of operation.

use std::fmt;

/// The segment's bytes are not in a state this crate ever writes: another process (or a
/// bug) scribbled over them. Every operation that meets this stops and reports it; nothing
/// is read or written past the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt {
    what: &'static str,
    found: u64,
}

impl Corrupt {
    pub(crate) fn new(what: &'static str, found: u64) -> Corrupt {
        Corrupt { what, found }
    }

    /// What was wrong (a short description of the check that failed).
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The offending value as found in the segment.
    pub fn found(&self) -> u64 {
        self.found
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupt shared object: {} (found {:#x})",
            self.what, self.found
        )
    }
}

impl std::error::Error for Corrupt {}

/// Which capacity ran out, in a [`WriteError::Full`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exhausted {
    /// Every entry (dict) or element (list) fixed at creation is in use.
    Entries {
        /// The capacity in entries.
        capacity: u64,
    },
    /// The arena for keys and values has too few free bytes, even after compaction.
    Bytes {
        /// Bytes the write needs (with the entry header and padding).
        needed: u64,
        /// Bytes free after compaction.
        free: u64,
    },
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exhausted::Entries { capacity } => {
                write!(f, "full: all {capacity} entries are in use")
            }
            Exhausted::Bytes { needed, free } => write!(
                f,
                "full: the write needs {needed} bytes of arena, {free} are free after compaction"
            ),
        }
    }
}

/// A key or value that serde could not encode.
#[derive(Debug)]
pub struct EncodeError(Box<dyn std::error::Error + Send + Sync>);

impl EncodeError {
    pub(crate) fn new(e: postcard::Error) -> EncodeError {
        EncodeError(Box::new(e))
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode the value: {}", self.0)
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Why a reading (or shrinking) operation failed: `get`, `contains_key`, `len`, `remove`,
/// `pop`, `clear`, `reverse`, `sort`, snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// The object's lock was not free before the handle's timeout.
    Timeout,
    /// This thread holds the object's lock already (an operation on the same object from
    /// inside an `update` closure): waiting would never end.
    Deadlock,
    /// The segment's bytes are corrupt.
    Corrupt(Corrupt),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Timeout => f.write_str("timed out waiting for the shared object's lock"),
            ReadError::Deadlock => f.write_str(
                "this thread already holds the shared object's lock (called from inside update?)",
            ),
            ReadError::Corrupt(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Corrupt(c) => Some(c),
            _ => None,
        }
    }
}

impl From<Corrupt> for ReadError {
    fn from(c: Corrupt) -> Self {
        ReadError::Corrupt(c)
    }
}

/// Why a write failed: `insert`, `update`, `push`, `extend`. Nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum WriteError {
    /// The capacity fixed at creation ran out.
    Full(Exhausted),
    /// serde could not encode the key or value.
    Encode(EncodeError),
    /// The object's lock was not free before the handle's timeout.
    Timeout,
    /// This thread holds the object's lock already (see [`ReadError::Deadlock`]).
    Deadlock,
    /// The segment's bytes are corrupt.
    Corrupt(Corrupt),
    /// A growable dict was full and its successor segment could not be created.
    Grow(shm_core::CreateError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Full(e) => e.fmt(f),
            WriteError::Encode(e) => e.fmt(f),
            WriteError::Timeout => ReadError::Timeout.fmt(f),
            WriteError::Deadlock => ReadError::Deadlock.fmt(f),
            WriteError::Corrupt(c) => c.fmt(f),
            WriteError::Grow(e) => write!(f, "full, and growing into a new segment failed: {e}"),
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Encode(e) => Some(e),
            WriteError::Corrupt(c) => Some(c),
            WriteError::Grow(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Corrupt> for WriteError {
    fn from(c: Corrupt) -> Self {
        WriteError::Corrupt(c)
    }
}

impl From<ReadError> for WriteError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Timeout => WriteError::Timeout,
            ReadError::Deadlock => WriteError::Deadlock,
            ReadError::Corrupt(c) => WriteError::Corrupt(c),
        }
    }
}

/// Why a list write at an index failed: `set`, `insert`. Nothing was written.
#[derive(Debug)]
#[non_exhaustive]
pub enum IndexError {
    /// The index is past the end (`index > len` for `insert`, `index >= len` for `set`).
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// The list's length.
        len: usize,
    },
    /// The write failed.
    Write(WriteError),
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::OutOfRange { index, len } => {
                write!(f, "list index {index} out of range (length {len})")
            }
            IndexError::Write(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IndexError::Write(e) => Some(e),
            IndexError::OutOfRange { .. } => None,
        }
    }
}

impl From<WriteError> for IndexError {
    fn from(e: WriteError) -> Self {
        IndexError::Write(e)
    }
}

impl From<Corrupt> for IndexError {
    fn from(c: Corrupt) -> Self {
        IndexError::Write(WriteError::Corrupt(c))
    }
}

impl From<ReadError> for IndexError {
    fn from(e: ReadError) -> Self {
        IndexError::Write(e.into())
    }
}
