//! The builder shared by every named primitive: create, open, or open-or-create a segment of
//! the primitive's [`ObjectKind`], which is checked on open.

use crate::barrier::Action;
use shm_core::{CreateError, Home, ObjectKind, OpenError, Segment, SegmentName, WaitStrategy};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

/// Builds a named primitive `T` ([`Lock`](crate::Lock), [`Semaphore`](crate::Semaphore), …).
///
/// Get one from `T::builder(name)`; then [`create`](Builder::create) (exclusive),
/// [`open`](Builder::open) (kind checked), or [`open_or_create`](Builder::open_or_create).
/// Creation parameters (`value`, `parties`) are written into the segment header and read
/// from it on open.
#[must_use]
pub struct Builder<T> {
    pub(crate) name: SegmentName,
    pub(crate) strategy: WaitStrategy,
    pub(crate) timeout: Option<Duration>,
    pub(crate) mode: Option<u32>,
    pub(crate) value: u32,
    pub(crate) parties: u32,
    pub(crate) action: Option<Action>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("kind", &std::any::type_name::<T>())
            .field("strategy", &self.strategy)
            .field("value", &self.value)
            .field("parties", &self.parties)
            .field("action", &self.action.is_some())
            .finish()
    }
}

impl<T> Builder<T> {
    pub(crate) fn new(name: &SegmentName) -> Builder<T> {
        Builder {
            name: name.clone(),
            strategy: WaitStrategy::default(),
            timeout: None,
            mode: None,
            value: 1,
            parties: 0,
            action: None,
            _t: PhantomData,
        }
    }

    /// How the handle's blocking calls wait (default: adaptive).
    pub fn strategy(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// How long `open` waits for the creator to publish the segment (default 5 s).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Permission bits on create (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }
}

/// What a primitive tells the builder.
pub(crate) trait Object: Sized {
    const KIND: ObjectKind;
    /// Body bytes needed, or why the parameters are invalid.
    fn body_len(b: &Builder<Self>) -> Result<usize, String>;
    /// Element count written into the header (checked on open when not 0).
    fn count(_b: &Builder<Self>) -> u64 {
        0
    }
    /// Kind-specific parameter written into the header.
    fn param(_b: &Builder<Self>) -> u64 {
        0
    }
    /// Initialises a zeroed, exclusively owned body of `body_len` bytes.
    fn init(b: &Builder<Self>, body: NonNull<u8>);
    /// Wraps a created or opened home, validating what it reads from the header and body.
    fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError>;
}

fn seg_builder<T: Object>(b: &Builder<T>, len: usize) -> shm_core::SegmentBuilder {
    let mut sb = Segment::builder(&b.name, T::KIND)
        .body_len(len)
        .count(T::count(b))
        .param(T::param(b));
    if let Some(t) = b.timeout {
        sb = sb.timeout(t);
    }
    if let Some(m) = b.mode {
        sb = sb.mode(m);
    }
    sb
}

pub(crate) fn create<T: Object>(b: Builder<T>) -> Result<T, CreateError> {
    let len = T::body_len(&b).map_err(|reason| CreateError::Invalid { reason })?;
    let seg = seg_builder(&b, len).create(|body, _| T::init(&b, body))?;
    T::from_home(Home::Segment(seg), b).map_err(|e| CreateError::Invalid {
        reason: e.to_string(),
    })
}

pub(crate) fn open<T: Object>(b: Builder<T>) -> Result<T, OpenError> {
    let mut sb = Segment::builder(&b.name, T::KIND);
    if let Some(t) = b.timeout {
        sb = sb.timeout(t);
    }
    let seg = sb.open()?;
    T::from_home(Home::Segment(seg), b)
}

pub(crate) fn open_or_create<T: Object>(b: Builder<T>) -> Result<T, OpenError> {
    let len =
        T::body_len(&b).map_err(|reason| OpenError::Create(CreateError::Invalid { reason }))?;
    let seg = seg_builder(&b, len).open_or_create(|body, _| T::init(&b, body))?;
    T::from_home(Home::Segment(seg), b)
}

/// A heap home holding `value` at its start.
pub(crate) fn heap_home<S>(value: S) -> Home {
    let home = Home::heap(std::mem::size_of::<S>());
    debug_assert!(std::mem::align_of::<S>() <= shm_core::home::HEAP_ALIGN);
    // SAFETY: the block is at least size_of::<S>() bytes, 128-aligned (>= align_of::<S>()),
    // and owned only by us until returned.
    unsafe { home.as_ptr().cast::<S>().as_ptr().write(value) };
    home
}

/// Checks that the body holds at least `need` bytes.
pub(crate) fn check_body(home: &Home, need: usize) -> Result<(), OpenError> {
    if home.len() < need {
        return Err(OpenError::Corrupt {
            field: "body_len",
            expected: need as u64,
            found: home.len() as u64,
        });
    }
    Ok(())
}

macro_rules! builder_methods {
    ($($t:ty),*) => {$(
        impl Builder<$t> {
            /// Creates the segment exclusively and initialises the primitive.
            ///
            /// # Errors
            ///
            /// [`CreateError::AlreadyExists`] if the name is taken,
            /// [`CreateError::Invalid`] for invalid parameters, and OS errors.
            pub fn create(self) -> Result<$t, CreateError> {
                create(self)
            }

            /// Opens an existing segment; its kind must match.
            ///
            /// # Errors
            ///
            /// [`OpenError::WrongKind`] for a segment of another kind,
            /// [`OpenError::Corrupt`] if its body is too small or its parameters are invalid,
            /// and every other [`OpenError`].
            pub fn open(self) -> Result<$t, OpenError> {
                open(self)
            }

            /// Opens the segment, or creates it if there is none (race-free).
            ///
            /// # Errors
            ///
            /// As [`open`](Self::open) and [`create`](Self::create).
            pub fn open_or_create(self) -> Result<$t, OpenError> {
                open_or_create(self)
            }
        }
    )*};
}

builder_methods!(
    crate::Lock,
    crate::RLock,
    crate::Semaphore,
    crate::BoundedSemaphore,
    crate::Event,
    crate::Condition,
    crate::Barrier
);
