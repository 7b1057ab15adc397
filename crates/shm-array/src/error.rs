//! Errors of element access, bulk copies and the `'c'` string helpers.

use std::fmt;

/// An element index past the end (Python: `IndexError: invalid index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexError {
    /// The index asked for.
    pub index: usize,
    /// The array's length.
    pub len: usize,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "index {} out of range for an array of length {}",
            self.index, self.len
        )
    }
}

impl std::error::Error for IndexError {}

/// Why a bulk copy did not happen (nothing was copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyError {
    /// The slice's length is not the length of the array or range it is copied to or from
    /// (Python: `ValueError: Can only assign sequence of same size`).
    LengthMismatch {
        /// The array's (or range's) length.
        expected: usize,
        /// The slice's length.
        found: usize,
    },
    /// The range `start..end` is not inside the array.
    OutOfRange {
        /// First element of the range.
        start: usize,
        /// One past its last element (saturated at `usize::MAX`).
        end: usize,
        /// The array's length.
        len: usize,
    },
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CopyError::LengthMismatch { expected, found } => write!(
                f,
                "can only assign a sequence of the same size: expected {expected} elements, got {found}"
            ),
            CopyError::OutOfRange { start, end, len } => write!(
                f,
                "range {start}..{end} out of range for an array of length {len}"
            ),
        }
    }
}

impl std::error::Error for CopyError {}

/// Why a `'c'` array's string was not set (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StringError {
    /// More bytes than the array holds (Python: `ValueError: byte string too long`).
    TooLong {
        /// Bytes given.
        len: usize,
        /// The array's length.
        capacity: usize,
    },
}

impl fmt::Display for StringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StringError::TooLong { len, capacity } => write!(
                f,
                "byte string too long: {len} bytes for an array of {capacity}"
            ),
        }
    }
}

impl std::error::Error for StringError {}
