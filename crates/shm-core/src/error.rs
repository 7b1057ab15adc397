//! Errors of creating and opening segments.

use crate::header::ObjectKind;
use crate::name::NameError;
use crate::typecode::{ElementLayout, LayoutError};
use crate::ProcessId;
use std::fmt;
use std::io;
use std::time::Duration;

/// Why a segment (or an object in one) could not be opened.
///
/// Every variant says what was expected and what was found. Object kinds report their own
/// checks with the generic variants [`Mismatch`](Self::Mismatch),
/// [`InvalidParameter`](Self::InvalidParameter) and [`CorruptBody`](Self::CorruptBody). The type
/// is `'static + Send + Sync`, so `?` converts it into `Box<dyn Error + Send + Sync>` or
/// `anyhow::Error`.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not valid.
    BadName(NameError),
    /// No segment has this name.
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The segment exists but this process may not open it.
    PermissionDenied {
        /// The name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The segment does not start with shm-ipc's magic number: it is not ours.
    NotOurs {
        /// The first 8 bytes found, as a little-endian u64.
        found_magic: u64,
    },
    /// Made by a version of shm-ipc with another segment layout.
    UnsupportedVersion {
        /// The version this build reads.
        expected: u32,
        /// The version in the segment.
        found: u32,
    },
    /// The header checksum does not match its fields: the header was corrupted.
    BadChecksum {
        /// The checksum of the fields as found.
        computed: u64,
        /// The checksum stored in the header.
        stored: u64,
    },
    /// A header field is inconsistent with the others.
    Corrupt {
        /// Which field.
        field: &'static str,
        /// The value it should have.
        expected: u64,
        /// The value it has.
        found: u64,
    },
    /// The file is shorter than its header says (or than a header).
    Truncated {
        /// Bytes the segment needs.
        expected: u64,
        /// Bytes the file has.
        found: u64,
    },
    /// The header names an object kind this build does not know.
    UnknownKind {
        /// The stored kind number.
        found: u32,
    },
    /// The segment holds another kind of object.
    WrongKind {
        /// The kind asked for.
        expected: ObjectKind,
        /// The kind found.
        found: ObjectKind,
    },
    /// The stored element layout cannot be parsed.
    BadLayout(LayoutError),
    /// The segment holds elements of another typecode or record layout.
    WrongLayout {
        /// The layout asked for.
        expected: Box<ElementLayout>,
        /// The layout found.
        found: Box<ElementLayout>,
    },
    /// The segment holds another number of elements than the opener stated.
    WrongCount {
        /// The count asked for.
        expected: u64,
        /// The count found.
        found: u64,
    },
    /// The creator had not published the segment when the open timeout ran out (it may have
    /// died while initialising).
    Initialising {
        /// The name.
        name: String,
        /// How long the opener waited.
        waited: Duration,
    },
    /// The creator died before it published the segment: it will never become ready. The
    /// name can be reclaimed by `create` or `open_or_create`.
    CreatorDied {
        /// The name.
        name: String,
        /// The dead creator, as the header records it.
        creator: ProcessId,
    },
    /// Something other than a regular file (a FIFO, a directory, a device) has the segment's
    /// name. It is never opened, so it cannot block the caller.
    NotRegularFile {
        /// The name.
        name: String,
        /// What was found, e.g. `"FIFO"`.
        found: &'static str,
    },
    /// A kind-specific parameter recorded in the segment differs from what the opener asked
    /// for (an opener that asks for nothing adopts what the header records).
    Mismatch {
        /// Which parameter, e.g. `"capacity"`.
        field: &'static str,
        /// What the opener asked for.
        expected: String,
        /// What the segment records.
        found: String,
    },
    /// A parameter given to the builder is not valid (for `open_or_create`, which may create).
    InvalidParameter {
        /// Which parameter.
        parameter: &'static str,
        /// Why it is not valid.
        reason: String,
    },
    /// The kind's own state in the body is impossible (another process wrote garbage into it).
    CorruptBody {
        /// What was checked, e.g. `"lock word"`.
        what: &'static str,
        /// What was found and why it cannot be right.
        detail: String,
    },
    /// The object is there, but the part this opener must claim to use it (a pipe's end) is
    /// held by a live process, or by one whose liveness cannot be told.
    Busy {
        /// What the opener needed, e.g. `"the opener's end of the pipe"`.
        what: &'static str,
        /// The process that holds it.
        holder: ProcessId,
    },
    /// The segment is not in a state an opener can use.
    BadState {
        /// The state word found.
        found: u32,
    },
    /// `open_or_create` lost the race to create and then could not create either.
    Create(CreateError),
    /// Another OS error.
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::BadName(e) => e.fmt(f),
            OpenError::NotFound { name } => write!(f, "no shared-memory segment named /{name}"),
            OpenError::PermissionDenied { name, .. } => {
                write!(f, "permission denied opening segment /{name}")
            }
            OpenError::NotOurs { found_magic } => write!(
                f,
                "not an shm-ipc segment: magic {:#018x} expected, found {found_magic:#018x}",
                crate::header::MAGIC
            ),
            OpenError::UnsupportedVersion { expected, found } => write!(
                f,
                "unsupported segment layout version: expected {expected}, found {found}"
            ),
            OpenError::BadChecksum { computed, stored } => write!(
                f,
                "corrupt segment header: checksum of the fields is {computed:#018x}, stored {stored:#018x}"
            ),
            OpenError::Corrupt {
                field,
                expected,
                found,
            } => write!(
                f,
                "corrupt segment header: field {field} should be {expected}, found {found}"
            ),
            OpenError::Truncated { expected, found } => write!(
                f,
                "segment too short: expected at least {expected} bytes, found {found}"
            ),
            OpenError::UnknownKind { found } => write!(f, "unknown object kind {found} in segment"),
            OpenError::WrongKind { expected, found } => write!(
                f,
                "wrong object kind: expected {expected}, found {found}"
            ),
            OpenError::BadLayout(e) => write!(f, "corrupt element layout in segment: {e}"),
            OpenError::WrongLayout { expected, found } => write!(
                f,
                "type mismatch: expected elements {expected}, segment holds {found}"
            ),
            OpenError::WrongCount { expected, found } => write!(
                f,
                "length mismatch: expected {expected} elements, segment holds {found}"
            ),
            OpenError::Initialising { name, waited } => write!(
                f,
                "segment /{name} still initialising after {waited:?} (its creator may have died)"
            ),
            OpenError::CreatorDied { name, creator } => write!(
                f,
                "segment /{name} will never be ready: its creator ({creator}) died before publishing it"
            ),
            OpenError::NotRegularFile { name, found } => write!(
                f,
                "/{name} is not a shared-memory segment: found a {found}, expected a regular file"
            ),
            OpenError::Mismatch {
                field,
                expected,
                found,
            } => write!(
                f,
                "{field} mismatch: expected {expected}, the segment records {found}"
            ),
            OpenError::InvalidParameter { parameter, reason } => {
                write!(f, "invalid parameter {parameter}: {reason}")
            }
            OpenError::CorruptBody { what, detail } => {
                write!(f, "corrupt segment body: {what}: {detail}")
            }
            OpenError::Busy { what, holder } => {
                write!(f, "{what} is held by live {holder}")
            }
            OpenError::BadState { found } => {
                write!(f, "segment in an unusable state {found:#010x}")
            }
            OpenError::Create(e) => e.fmt(f),
            OpenError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::BadName(e) => Some(e),
            OpenError::PermissionDenied { source, .. } | OpenError::Io { source, .. } => {
                Some(source)
            }
            OpenError::BadLayout(e) => Some(e),
            OpenError::Create(e) => Some(e),
            _ => None,
        }
    }
}

impl From<NameError> for OpenError {
    fn from(e: NameError) -> Self {
        OpenError::BadName(e)
    }
}

/// Why a segment (or an object in one) could not be created.
///
/// Object kinds report invalid parameters with [`InvalidParameter`](Self::InvalidParameter).
/// The type is `'static + Send + Sync`.
#[derive(Debug)]
#[non_exhaustive]
pub enum CreateError {
    /// The name is not valid.
    BadName(NameError),
    /// A segment of this name exists already.
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// This process may not create the segment.
    PermissionDenied {
        /// The name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The requested size does not fit this platform.
    TooLarge {
        /// What was asked for, in bytes of body.
        body_len: u64,
    },
    /// The arguments are inconsistent (for example a body too small for the count).
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// A kind-specific parameter is not valid (for example a capacity of 0).
    InvalidParameter {
        /// Which parameter, e.g. `"capacity"`.
        parameter: &'static str,
        /// Why it is not valid.
        reason: String,
    },
    /// Something other than a regular file (a FIFO, a directory, a device) has the name.
    NotRegularFile {
        /// The name.
        name: String,
        /// What was found, e.g. `"FIFO"`.
        found: &'static str,
    },
    /// Another OS error (for example no space left in `/dev/shm`).
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::BadName(e) => e.fmt(f),
            CreateError::AlreadyExists { name } => {
                write!(f, "a shared-memory segment named /{name} exists already")
            }
            CreateError::PermissionDenied { name, .. } => {
                write!(f, "permission denied creating segment /{name}")
            }
            CreateError::TooLarge { body_len } => {
                write!(f, "segment too large: {body_len} bytes of body")
            }
            CreateError::Invalid { reason } => write!(f, "invalid segment: {reason}"),
            CreateError::InvalidParameter { parameter, reason } => {
                write!(f, "invalid parameter {parameter}: {reason}")
            }
            CreateError::NotRegularFile { name, found } => write!(
                f,
                "/{name} is not a shared-memory segment: found a {found}, expected a regular file"
            ),
            CreateError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CreateError::BadName(e) => Some(e),
            CreateError::PermissionDenied { source, .. } | CreateError::Io { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

impl From<NameError> for CreateError {
    fn from(e: NameError) -> Self {
        CreateError::BadName(e)
    }
}

impl OpenError {
    /// A [`Mismatch`](Self::Mismatch) of `field`, formatting both values.
    pub fn mismatch(
        field: &'static str,
        expected: impl fmt::Display,
        found: impl fmt::Display,
    ) -> OpenError {
        OpenError::Mismatch {
            field,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}

const _: () = {
    const fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<OpenError>();
    assert_error::<CreateError>();
    assert_error::<NameError>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_and_why() {
        let e = OpenError::mismatch("capacity", 16, 32);
        assert_eq!(
            e.to_string(),
            "capacity mismatch: expected 16, the segment records 32"
        );
        let e = OpenError::CreatorDied {
            name: "q".into(),
            creator: ProcessId::from_parts(7, 1),
        };
        assert!(e.to_string().contains("creator (pid 7) died"), "{e}");
        let e = CreateError::NotRegularFile {
            name: "f".into(),
            found: "FIFO",
        };
        assert!(e.to_string().contains("found a FIFO"), "{e}");
        // `?` into a boxed error works.
        fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            Err(OpenError::NotFound { name: "x".into() })?;
            Ok(())
        }
        assert!(boxed().is_err());
    }
}
