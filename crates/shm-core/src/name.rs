//! Segment names: validated, portable, never a path outside the shm namespace.

use std::ffi::CString;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest name in bytes, not counting the leading slash. With the slash it is 31 bytes, which
/// also fits macOS's `PSHMNAMLEN`.
pub const MAX_NAME_LEN: usize = 30;

/// A validated shared-memory segment name.
///
/// Accepted: 1 to [`MAX_NAME_LEN`] bytes of `A-Z a-z 0-9 _ - .`, optionally written with one
/// leading `/` (which is not counted and not stored), not starting with `.`. Anything else
/// (another slash, a space, a NUL, `..`, an empty or too long name) is a [`NameError`], so a
/// name can never reach a path outside the shm namespace.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
///
/// let a = SegmentName::new("counter").unwrap();
/// let b = SegmentName::new("/counter").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "counter");
/// assert!(SegmentName::new("../etc/passwd").is_err());
/// assert!(SegmentName::new("a-name-that-is-far-too-long-for-macos").is_err());
/// let fresh = SegmentName::unique();
/// assert!(fresh.as_str().starts_with("shmipc_"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentName {
    name: String,
}

/// Why a segment name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty (or only a slash).
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes, without a leading slash.
        len: usize,
    },
    /// The name contains a character outside `A-Z a-z 0-9 _ - .`.
    BadChar {
        /// The offending character.
        ch: char,
        /// Its byte position in the name (without a leading slash).
        position: usize,
    },
    /// The name starts with a dot (`.`, `..` and hidden files are refused).
    LeadingDot,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("bad segment name: it is empty"),
            NameError::TooLong { len } => write!(
                f,
                "bad segment name: {len} bytes long, at most {MAX_NAME_LEN} allowed"
            ),
            NameError::BadChar { ch, position } => write!(
                f,
                "bad segment name: character {ch:?} at position {position}; allowed are A-Z a-z 0-9 _ - ."
            ),
            NameError::LeadingDot => f.write_str("bad segment name: it starts with '.'"),
        }
    }
}

impl std::error::Error for NameError {}

impl SegmentName {
    /// Validates `name` (see the type's docs).
    ///
    /// # Errors
    ///
    /// A [`NameError`] saying what is wrong.
    pub fn new(name: &str) -> Result<SegmentName, NameError> {
        let bare = name.strip_prefix('/').unwrap_or(name);
        if bare.is_empty() {
            return Err(NameError::Empty);
        }
        if bare.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: bare.len() });
        }
        for (position, ch) in bare.char_indices() {
            if !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || ch == '.') {
                return Err(NameError::BadChar { ch, position });
            }
        }
        if bare.starts_with('.') {
            return Err(NameError::LeadingDot);
        }
        Ok(SegmentName {
            name: bare.to_owned(),
        })
    }

    /// A fresh name unique on this machine: `shmipc_` + the pid, a per-process counter and
    /// random bits, all in hex (at most 30 bytes).
    pub fn unique() -> SegmentName {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = random_u32();
        let name = format!("shmipc_{:x}_{:x}_{:08x}", std::process::id(), n, random);
        debug_assert!(name.len() <= MAX_NAME_LEN);
        SegmentName { name }
    }

    /// A fresh unique name that starts with `prefix` (at most 8 bytes of it are kept), for
    /// names that say what they are for.
    ///
    /// # Errors
    ///
    /// [`NameError`] if `prefix` has a character that names may not contain.
    pub fn unique_with_prefix(prefix: &str) -> Result<SegmentName, NameError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let prefix: String = prefix.chars().take(8).collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        SegmentName::new(&format!(
            "{prefix}_{:x}_{:x}_{:06x}",
            std::process::id(),
            n,
            random_u32() & 0xff_ffff
        ))
    }

    /// The name without the leading slash.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name as `shm_open` wants it: with a leading slash and a NUL.
    pub(crate) fn to_c_name(&self) -> CString {
        // Validation excluded NUL bytes, so this cannot fail.
        CString::new(format!("/{}", self.name)).unwrap_or_default()
    }
}

fn random_u32() -> u32 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(crate::sync::now().as_nanos());
    h.finish() as u32
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SegmentName({:?})", self.name)
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.name)
    }
}

impl std::str::FromStr for SegmentName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SegmentName::new(s)
    }
}

impl TryFrom<&str> for SegmentName {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        SegmentName::new(s)
    }
}

impl AsRef<SegmentName> for SegmentName {
    fn as_ref(&self) -> &SegmentName {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_portable_names() {
        for ok in ["a", "/a", "psm_0123abcd", "A.b-c_9", &"x".repeat(30)] {
            assert!(SegmentName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(SegmentName::new(""), Err(NameError::Empty));
        assert_eq!(SegmentName::new("/"), Err(NameError::Empty));
        assert_eq!(
            SegmentName::new(&"x".repeat(31)),
            Err(NameError::TooLong { len: 31 })
        );
        assert_eq!(
            SegmentName::new("a/b"),
            Err(NameError::BadChar {
                ch: '/',
                position: 1
            })
        );
        assert_eq!(
            SegmentName::new("//a"),
            Err(NameError::BadChar {
                ch: '/',
                position: 0
            })
        );
        assert!(matches!(
            SegmentName::new("a\0b"),
            Err(NameError::BadChar { ch: '\0', .. })
        ));
        assert!(matches!(
            SegmentName::new("é"),
            Err(NameError::BadChar { .. })
        ));
        assert_eq!(SegmentName::new(".."), Err(NameError::LeadingDot));
        assert!(SegmentName::new("../x").is_err());
    }

    #[test]
    fn unique_names_are_valid_and_distinct() {
        let a = SegmentName::unique();
        let b = SegmentName::unique();
        assert_ne!(a, b);
        assert!(SegmentName::new(a.as_str()).is_ok());
        let p = SegmentName::unique_with_prefix("queue").unwrap();
        assert!(p.as_str().starts_with("queue_"));
        assert!(SegmentName::unique_with_prefix("bad/").is_err());
    }
}
