//! The builder shared by every named primitive: create, open, or open-or-create a segment of
//! the primitive's [`ObjectKind`], which is checked on open. Knob names as every kind in the
//! workspace: `mode`, `open_timeout`, `wait_strategy`, plus `value` / `parties` / `action`.

use crate::barrier::Action;
use shm_core::{CreateError, Home, Knobs, ObjectKind, OpenError, Segment, SegmentName};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Builds a named primitive `T` ([`Lock`](crate::Lock), [`Semaphore`](crate::Semaphore), …).
///
/// Get one from `T::builder(name)`; then [`create`](Builder::create) (exclusive),
/// [`open`](Builder::open) (kind checked), or [`open_or_create`](Builder::open_or_create).
/// Creation parameters (`value`, `parties`) are written into the segment header; an opener
/// adopts them and need not repeat them (if it does, they must match).
#[must_use]
pub struct Builder<T> {
    pub(crate) name: SegmentName,
    pub(crate) knobs: Knobs,
    pub(crate) value: Option<u32>,
    pub(crate) parties: Option<u32>,
    pub(crate) action: Option<Action>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("kind", &std::any::type_name::<T>())
            .field("wait_strategy", &self.knobs.strategy)
            .field("open_timeout", &self.knobs.open_timeout)
            .field("mode", &self.knobs.mode)
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
            knobs: Knobs::default(),
            value: None,
            parties: None,
            action: None,
            _t: PhantomData,
        }
    }

    shm_core::knob_methods!();
}

/// What a primitive tells the builder.
pub(crate) trait Object: Sized {
    const KIND: ObjectKind;
    /// The builder parameter that `body_len` checks (for error messages).
    const PARAMETER: &'static str = "parameters";
    /// Body bytes needed, or why the parameters are invalid.
    fn body_len(b: &Builder<Self>) -> Result<usize, String>;
    /// Element count written into the header.
    fn count(_b: &Builder<Self>) -> u64 {
        0
    }
    /// Kind-specific parameter written into the header.
    fn param(_b: &Builder<Self>) -> u64 {
        0
    }
    /// Initialises a zeroed, exclusively owned body of `body_len` bytes.
    fn init(b: &Builder<Self>, body: NonNull<u8>);
    /// Wraps a created or opened home, adopting and validating what the header and body say.
    fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError>;
}

fn seg_builder<T: Object>(b: &Builder<T>, len: usize) -> shm_core::SegmentBuilder {
    let sb = Segment::builder(&b.name, T::KIND)
        .body_len(len)
        .count(T::count(b))
        .param(T::param(b));
    b.knobs.apply(sb)
}

pub(crate) fn create<T: Object>(b: Builder<T>) -> Result<T, CreateError> {
    let len = T::body_len(&b).map_err(|reason| CreateError::InvalidParameter {
        parameter: T::PARAMETER,
        reason,
    })?;
    let seg = seg_builder(&b, len).create(|body, _| T::init(&b, body))?;
    // What we just wrote always passes our own checks.
    T::from_home(Home::Segment(seg), b).map_err(|e| CreateError::Invalid {
        reason: e.to_string(),
    })
}

pub(crate) fn open<T: Object>(b: Builder<T>) -> Result<T, OpenError> {
    let seg = b.knobs.apply(Segment::builder(&b.name, T::KIND)).open()?;
    T::from_home(Home::Segment(seg), b)
}

pub(crate) fn open_or_create<T: Object>(b: Builder<T>) -> Result<T, OpenError> {
    let len = match T::body_len(&b) {
        Ok(len) => len,
        // Cannot create with these parameters (say, no `parties`): an existing one is fine.
        Err(reason) => {
            return open(b).map_err(|e| match e {
                OpenError::NotFound { .. } => OpenError::InvalidParameter {
                    parameter: T::PARAMETER,
                    reason,
                },
                e => e,
            })
        }
    };
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
        return Err(OpenError::CorruptBody {
            what: "body length",
            detail: format!("{} bytes, at least {need} needed", home.len()),
        });
    }
    Ok(())
}

/// An opener's explicit parameter must match what the segment records (none is adopted).
pub(crate) fn check_adopted(
    field: &'static str,
    asked: Option<u32>,
    recorded: u32,
) -> Result<(), OpenError> {
    match asked {
        Some(a) if a != recorded => Err(OpenError::Mismatch {
            field,
            expected: a.to_string(),
            found: recorded.to_string(),
        }),
        _ => Ok(()),
    }
}

macro_rules! builder_methods {
    ($($t:ty),*) => {$(
        impl Builder<$t> {
            /// Creates the segment exclusively and initialises the primitive.
            ///
            /// # Errors
            ///
            /// [`CreateError::AlreadyExists`] if the name is taken,
            /// [`CreateError::InvalidParameter`] for invalid parameters, and OS errors.
            pub fn create(self) -> Result<$t, CreateError> {
                create(self)
            }

            /// Opens an existing segment; its kind must match, and its parameters are adopted.
            ///
            /// # Errors
            ///
            /// [`OpenError::WrongKind`] for a segment of another kind,
            /// [`OpenError::Mismatch`] if a parameter given here differs from the segment's,
            /// [`OpenError::CorruptBody`] if its body is too small or its parameters are
            /// impossible, and every other [`OpenError`].
            pub fn open(self) -> Result<$t, OpenError> {
                open(self)
            }

            /// Opens the segment, or creates it if there is none (race-free).
            ///
            /// # Errors
            ///
            /// As [`open`](Self::open) (a builder without the parameters needed to create only
            /// opens), and [`OpenError::InvalidParameter`] or
            /// [`OpenError::Create`] if creating fails.
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
