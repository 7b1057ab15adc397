//! `Namespace`: named fields of any serde type (Python's `manager.Namespace()`).

use crate::builder::{self, Builder, Kind};
use crate::dict::{decode, encode, RawDict};
use crate::error::{Corrupt, ReadError, WriteError};
use crate::store::Store;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shm_core::{CreateError, ObjectKind, OpenError, Segment, SegmentName};
use std::fmt;

/// Named fields of serde values in a named segment: Python's `manager.Namespace()`, whose
/// attributes are `ns.x = 1` / `ns.x`; here [`set`](Self::set) and [`get`](Self::get).
///
/// Each field remembers the type it was set with (its name, size and alignment, hashed);
/// reading it as another type is [`FieldError::WrongType`], as reading a Python attribute
/// never reinterprets bytes. Typecode values (`i32`, `f64`, `u8`, …) are serde values too.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_manager::Namespace;
///
/// let ns = Namespace::create(&SegmentName::unique())?;
/// ns.set("x", &1i32)?;
/// ns.set("name", &"zhangyanlin".to_string())?;
/// assert_eq!(ns.get::<i32>("x")?, Some(1));
/// assert_eq!(ns.get::<String>("name")?.as_deref(), Some("zhangyanlin"));
/// assert!(ns.get::<f64>("x").is_err()); // set as i32
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Namespace {
    raw: RawDict,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("geometry", &self.raw.store.geometry())
            .finish()
    }
}

impl Kind for Namespace {
    const KIND: ObjectKind = ObjectKind::Namespace;
    fn type_names() -> String {
        "namespace of typed fields".into()
    }
    fn layout() -> [usize; 4] {
        [0; 4]
    }
    fn index_words(capacity: u64) -> u64 {
        RawDict::index_words(capacity)
    }
    fn from_store(store: Store) -> Self {
        Namespace {
            raw: RawDict::new(store),
        }
    }
}

/// Why reading a field failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FieldError {
    /// The field holds a value of another type.
    WrongType {
        /// The field.
        field: String,
        /// The type asked for.
        expected: &'static str,
        /// The type it was set with.
        found: String,
    },
    /// Reading failed.
    Read(ReadError),
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::WrongType {
                field,
                expected,
                found,
            } => write!(
                f,
                "namespace field {field:?} holds a {found}, not a {expected}"
            ),
            FieldError::Read(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FieldError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FieldError::Read(e) => Some(e),
            FieldError::WrongType { .. } => None,
        }
    }
}

impl From<ReadError> for FieldError {
    fn from(e: ReadError) -> Self {
        FieldError::Read(e)
    }
}

/// A field's stored bytes: `[tag u64][name length u16][type name][postcard value]`.
fn tag_of<T>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let name = std::any::type_name::<T>();
    for b in name
        .bytes()
        .chain((std::mem::size_of::<T>() as u64).to_le_bytes())
        .chain((std::mem::align_of::<T>() as u64).to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn pack<T: Serialize>(value: &T) -> Result<Vec<u8>, WriteError> {
    let name = std::any::type_name::<T>();
    let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
    let mut out = Vec::with_capacity(10 + name.len() + 16);
    out.extend_from_slice(&tag_of::<T>().to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&encode(value).map_err(WriteError::Encode)?);
    Ok(out)
}

fn unpack<T: DeserializeOwned>(field: &str, bytes: &[u8]) -> Result<T, FieldError> {
    let short =
        || FieldError::Read(Corrupt::new("namespace field too short", bytes.len() as u64).into());
    let tag = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?,
    );
    let n = u16::from_le_bytes(
        bytes
            .get(8..10)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?,
    ) as usize;
    let name = bytes.get(10..10 + n).ok_or_else(short)?;
    if tag != tag_of::<T>() {
        return Err(FieldError::WrongType {
            field: field.into(),
            expected: std::any::type_name::<T>(),
            found: String::from_utf8_lossy(name).into_owned(),
        });
    }
    decode(&bytes[10 + n..]).map_err(|c| FieldError::Read(c.into()))
}

impl Namespace {
    /// A builder for the namespace named `name` ([`Builder::capacity`] is the most fields).
    pub fn builder(name: &SegmentName) -> Builder<Namespace> {
        Builder::new(name)
    }

    /// Creates an empty namespace with the default capacity.
    ///
    /// # Errors
    ///
    /// As [`Builder::create`].
    pub fn create(name: &SegmentName) -> Result<Self, CreateError> {
        Self::builder(name).create()
    }

    /// Opens an existing namespace.
    ///
    /// # Errors
    ///
    /// As [`Builder::open`].
    pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
        Self::builder(name).open()
    }

    /// A namespace in this process's memory (tests).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for a capacity of 0 or too large.
    pub fn in_memory(capacity: u64, arena_bytes: u64) -> Result<Self, CreateError> {
        builder::heap(capacity, arena_bytes)
    }

    /// Sets field `field` to `value` (Python's `ns.field = value`), replacing any value of
    /// any type.
    ///
    /// # Errors
    ///
    /// As [`SharedDict::insert`](crate::SharedDict::insert).
    pub fn set<T: Serialize>(&self, field: &str, value: &T) -> Result<(), WriteError> {
        let kb = encode(field).map_err(WriteError::Encode)?;
        self.raw.put_bytes(&kb, &pack(value)?)
    }

    /// The value of field `field` (`None` if it was never set).
    ///
    /// # Errors
    ///
    /// [`FieldError::WrongType`] if it was set with another type; [`FieldError::Read`].
    pub fn get<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>, FieldError> {
        let kb = encode(field).map_err(|_| ReadError::from(Corrupt::new("field name", 0)))?;
        match self.raw.get_bytes(&kb)? {
            Some(b) => Ok(Some(unpack(field, &b)?)),
            None => Ok(None),
        }
    }

    /// Removes field `field`; whether it existed (Python's `del ns.field`).
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn remove(&self, field: &str) -> Result<bool, ReadError> {
        let kb = encode(field).map_err(|_| Corrupt::new("field name", 0))?;
        Ok(self.raw.remove_bytes(&kb)?.is_some())
    }

    /// The field names, in the order they were first set.
    ///
    /// # Errors
    ///
    /// [`ReadError`].
    pub fn fields(&self) -> Result<Vec<String>, ReadError> {
        self.raw
            .items()?
            .into_iter()
            .map(|(k, _)| Ok(decode(&k)?))
            .collect()
    }

    /// The segment, if the namespace lives in one.
    pub fn segment(&self) -> Option<&Segment> {
        self.raw.store.home().segment()
    }
}
