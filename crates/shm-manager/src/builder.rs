//! The builder shared by [`SharedDict`](crate::SharedDict), [`SharedList`](crate::SharedList)
//! and [`Namespace`](crate::Namespace), and the type fingerprint checked on open.

use crate::store::{Geometry, Grow, Store, MAX_ARENA, MAX_CAPACITY};
use shm_core::{CreateError, Home, Knobs, ObjectKind, OpenError, Segment, SegmentName};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Default capacity in entries.
pub const DEFAULT_CAPACITY: u64 = 1024;
/// Default arena bytes per entry of capacity (keys, values and a 16-byte header each).
pub const DEFAULT_BYTES_PER_ENTRY: u64 = 64;

/// What an object kind tells the builder.
pub(crate) trait Kind: Sized {
    const KIND: ObjectKind;
    /// Human-readable type names, stored for error messages and hashed into the fingerprint.
    fn type_names() -> String;
    /// `size_of`/`align_of` of the stored types, hashed into the fingerprint.
    fn layout() -> [usize; 4];
    /// Schema hashes of the stored types ([`schema_hash`](crate::schema)), hashed into the
    /// fingerprint.
    fn schema() -> [u64; 2] {
        [0; 2]
    }
    /// Words per index buffer for `capacity` entries (`capacity <= MAX_CAPACITY`).
    fn index_words(capacity: u64) -> u64;
    fn from_store(store: Store) -> Self;
}

/// The type fingerprint stored in the header's `param`: FNV-1a 64 over the kind, the type
/// names, their sizes and alignments, and their serde schema hashes.
pub(crate) fn fingerprint<T: Kind>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&T::KIND.as_u32().to_le_bytes());
    eat(T::type_names().as_bytes());
    for n in T::layout() {
        eat(&(n as u64).to_le_bytes());
    }
    for n in T::schema() {
        eat(&n.to_le_bytes());
    }
    h
}

/// Builds a [`SharedDict`](crate::SharedDict), [`SharedList`](crate::SharedList) or
/// [`Namespace`](crate::Namespace): get one from `Kind::builder(&name)`, set knobs, then
/// [`create`](Builder::create), [`open`](Builder::open) or
/// [`open_or_create`](Builder::open_or_create).
///
/// Creation knobs ([`capacity`](Builder::capacity), [`arena_bytes`](Builder::arena_bytes),
/// [`mode`](Builder::mode)) are recorded in the segment; an opener adopts them.
#[must_use]
pub struct Builder<T> {
    pub(crate) name: SegmentName,
    knobs: Knobs,
    timeout: Option<Duration>,
    capacity: u64,
    arena: Option<u64>,
    pub(crate) growable: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("kind", &std::any::type_name::<T>())
            .field("capacity", &self.capacity)
            .field("arena_bytes", &self.arena)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<T> Clone for Builder<T> {
    fn clone(&self) -> Self {
        Builder {
            name: self.name.clone(),
            knobs: self.knobs,
            timeout: self.timeout,
            capacity: self.capacity,
            arena: self.arena,
            growable: self.growable,
            _t: PhantomData,
        }
    }
}

impl<T> Builder<T> {
    pub(crate) fn new(name: &SegmentName) -> Builder<T> {
        Builder {
            name: name.clone(),
            knobs: Knobs::default(),
            timeout: None,
            capacity: DEFAULT_CAPACITY,
            arena: None,
            growable: false,
            _t: PhantomData,
        }
    }

    /// Entries (dict, namespace) or elements (list) at most (creator only; default
    /// [`DEFAULT_CAPACITY`]).
    pub fn capacity(mut self, entries: u64) -> Self {
        self.capacity = entries;
        self
    }

    /// Bytes for encoded keys and values, each entry with a 16-byte header and padded to 8
    /// (creator only; default [`DEFAULT_BYTES_PER_ENTRY`] per entry of capacity). The segment
    /// holds twice this: compaction copies the live entries into the other half.
    pub fn arena_bytes(mut self, bytes: u64) -> Self {
        self.arena = Some(bytes);
        self
    }

    shm_core::knob_methods!();

    /// How long each operation waits for the object's lock before it fails with `Timeout`
    /// (default: as long as it takes; a holder that dies is detected and its work repaired).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn geometry(&self, index_words: impl Fn(u64) -> u64) -> Result<Geometry, CreateError> {
        let invalid = |parameter, reason| CreateError::InvalidParameter { parameter, reason };
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(invalid(
                "capacity",
                format!("{} is not in 1..={MAX_CAPACITY}", self.capacity),
            ));
        }
        let arena = self
            .arena
            .unwrap_or(self.capacity.saturating_mul(DEFAULT_BYTES_PER_ENTRY));
        if arena > MAX_ARENA {
            return Err(invalid(
                "arena_bytes",
                format!("{arena} is above {MAX_ARENA}"),
            ));
        }
        Geometry::new(self.capacity, index_words(self.capacity), arena)
            .map_err(|reason| invalid("capacity", reason))
    }
}

/// An in-process object on the heap with the same layout (tests, fuzzing, miri).
pub(crate) fn heap<T: Kind>(capacity: u64, arena: u64) -> Result<T, CreateError> {
    let b = Builder::<T>::new(&SegmentName::unique())
        .capacity(capacity)
        .arena_bytes(arena);
    let geo = b.geometry(T::index_words)?;
    let home = Home::heap(geo.body_len());
    // SAFETY: a fresh zeroed heap block of geo.body_len() bytes, 128-aligned, ours alone.
    unsafe { Store::init(home.as_ptr(), &T::type_names(), Grow::default()) };
    Ok(T::from_store(Store::created(
        home,
        geo,
        b.knobs.strategy,
        b.timeout,
    )))
}

macro_rules! builder_methods {
    ($([$($g:tt)*] $t:ty),*) => {$(
        impl<$($g)*> Builder<$t> {
            /// Creates the object exclusively.
            ///
            /// # Errors
            ///
            /// [`CreateError::AlreadyExists`] if the name is taken,
            /// [`CreateError::InvalidParameter`] for a capacity of 0 or too large, and OS
            /// errors.
            pub fn create(self) -> Result<$t, CreateError> {
                self.create_impl()
            }

            /// Opens an existing object, adopting its capacity; its kind and type
            /// fingerprint must match.
            ///
            /// # Errors
            ///
            /// [`OpenError::Mismatch`] (field `"type"`) if it was created with other key,
            /// value or element types; [`OpenError::WrongKind`] for another kind of object;
            /// every other [`OpenError`].
            pub fn open(self) -> Result<$t, OpenError> {
                self.open_impl()
            }

            /// Opens the object, or creates it if there is none (race-free: one of several
            /// concurrent callers creates, the others open).
            ///
            /// # Errors
            ///
            /// As [`open`](Self::open); [`OpenError::Create`] if creating failed for another
            /// reason than the name being taken.
            pub fn open_or_create(self) -> Result<$t, OpenError> {
                self.open_or_create_impl()
            }
        }
    )*};
}

builder_methods!(
    [K: serde::de::DeserializeOwned, V: serde::de::DeserializeOwned] crate::SharedDict<K, V>,
    [T: serde::de::DeserializeOwned] crate::SharedList<T>,
    [] crate::Namespace
);

// The methods below are crate-private; the public ones are generated above per kind.
#[allow(private_bounds)]
impl<T: Kind> Builder<T> {
    pub(crate) fn create_impl(self) -> Result<T, CreateError> {
        let geo = self.geometry(T::index_words)?;
        let names = T::type_names();
        let sb = self.knobs.apply(
            Segment::builder(&self.name, T::KIND)
                .count(geo.capacity)
                .param(fingerprint::<T>())
                .body_len(geo.body_len()),
        );
        let grow = Grow {
            growable: self.growable,
            generation: 0,
        };
        // SAFETY: `create` hands `init` the zeroed body of geo.body_len() bytes, 128-aligned,
        // before anybody else can open it.
        let seg = sb.create(|body, _| unsafe { Store::init(body, &names, grow) })?;
        let store = Store::created(Home::Segment(seg), geo, self.knobs.strategy, self.timeout);
        Ok(T::from_store(store))
    }

    pub(crate) fn open_impl(self) -> Result<T, OpenError> {
        let seg = self
            .knobs
            .apply(Segment::builder(&self.name, T::KIND))
            .open()?;
        let h = *seg.header();
        let fp = fingerprint::<T>();
        if h.param() != fp {
            return Err(OpenError::Mismatch {
                field: "type",
                expected: format!("{} (fingerprint {fp:#018x})", T::type_names()),
                found: format!("{} (fingerprint {:#018x})", stored_names(&seg), h.param()),
            });
        }
        if h.count() == 0 || h.count() > MAX_CAPACITY {
            return Err(OpenError::CorruptBody {
                what: "capacity",
                detail: format!("{} is not in 1..={MAX_CAPACITY}", h.count()),
            });
        }
        let geo = Geometry::from_header(h.count(), T::index_words(h.count()), h.body_len())?;
        let store = Store::new(Home::Segment(seg), geo, self.knobs.strategy, self.timeout)?;
        Ok(T::from_store(store))
    }

    pub(crate) fn open_or_create_impl(self) -> Result<T, OpenError> {
        for _ in 0..100 {
            match self.clone().create_impl() {
                Ok(t) => return Ok(t),
                Err(CreateError::AlreadyExists { .. }) => {}
                Err(e) => return Err(OpenError::Create(e)),
            }
            match self.clone().open_impl() {
                Err(OpenError::NotFound { .. }) => continue, // removed in between: retry
                other => return other,
            }
        }
        Err(OpenError::NotFound {
            name: self.name.as_str().into(),
        })
    }
}

/// The type names a segment's creator recorded (bounded, for messages).
fn stored_names(seg: &Segment) -> String {
    if seg.body_len() < crate::store::PREFIX {
        return "?".into();
    }
    // SAFETY: the body is mapped and at least PREFIX bytes long (checked above).
    unsafe { crate::store::read_names(seg.body()) }
}
