//! `Array<T>` (with its embedded lock) and `RawArray<T>` (atomics only).

use crate::elems::Elems;
use crate::{CopyError, IndexError, StringError};
use shm_core::{
    AtomicElement, CChar, CreateError, Deadline, Element, Home, IntElement, Knobs, ObjectKind,
    OpenError, Segment, SegmentName, WaitStrategy,
};
use shm_lock::{
    Acquired, OwnerDiedError, RLockGuard, RLockRef, RLockState, RawLock, RawLockError,
    RawRobustLock, ReentrantTimeoutError, TryLockError, RLOCK_STATE_SIZE,
};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where an `Array`'s elements start in its body: after the 32-byte `RLockState` at offset
/// 0, on their own 128-byte line.
pub const ARRAY_DATA_OFFSET: usize = 128;

const _: () = assert!(RLOCK_STATE_SIZE <= ARRAY_DATA_OFFSET);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RLockState>() == RLOCK_STATE_SIZE);

mod sealed {
    use shm_core::{Element, Home, ObjectKind, WaitStrategy};
    use std::ptr::NonNull;

    /// What `Array` and `RawArray` tell [`Builder`](super::Builder). Sealed: only this crate
    /// implements it.
    pub trait Object: Sized {
        /// The element type.
        type Elem: Element;
        const KIND: ObjectKind;
        const DATA_OFFSET: usize;
        /// Writes the initial body before the elements.
        fn init_body(body: NonNull<u8>);
        /// # Safety
        ///
        /// `home` holds `DATA_OFFSET + len * size_of::<Elem>()` bytes, initialised by
        /// `init_body` (or all zero); `DATA_OFFSET` is 0 or 128.
        unsafe fn from_home(home: Home, len: usize, strategy: WaitStrategy) -> Self;
    }
}
use sealed::Object;

fn body_len<T: Element>(offset: usize, len: usize) -> Option<usize> {
    len.checked_mul(std::mem::size_of::<T>())?
        .checked_add(offset)
        .filter(|&n| n <= isize::MAX as usize)
}

/// Builds a named [`Array`] or [`RawArray`].
///
/// Knobs: [`len`](Builder::len) (the length to create with; on open, the length the opener
/// expects, else [`OpenError::WrongCount`]; without it `open` reads the length from the
/// header), [`values`](Builder::values) (initial elements; sets the length),
/// [`mode`](Builder::mode) (creator only), [`open_timeout`](Builder::open_timeout), and for an
/// `Array` [`wait_strategy`](Builder::wait_strategy). Then [`create`](Builder::create)
/// ([`CreateError`]), [`open`](Builder::open) or [`open_or_create`](Builder::open_or_create)
/// ([`OpenError`]).
///
/// # Examples
///
/// ```
/// use shm_core::{OpenError, SegmentName};
/// use shm_array::RawArray;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let a = RawArray::<u16>::builder(&name).values(&[1, 2, 3, 4]).create()?;
/// let b = RawArray::<u16>::builder(&name).open()?; // layout 'H' checked, length adopted
/// assert_eq!(b.len(), 4);
/// let wrong = RawArray::<u16>::builder(&name).len(5).open();
/// assert!(matches!(wrong, Err(OpenError::WrongCount { expected: 5, found: 4 })));
/// # drop(a);
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct Builder<A: Object> {
    name: SegmentName,
    len: Option<usize>,
    values: Option<Vec<A::Elem>>,
    knobs: Knobs,
    _a: PhantomData<fn() -> A>,
}

impl<A: Object> fmt::Debug for Builder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<A>())
            .field("len", &self.len)
            .field("values", &self.values.as_ref().map(Vec::len))
            .field("open_timeout", &self.knobs.open_timeout)
            .field("mode", &self.knobs.mode)
            .field("wait_strategy", &self.knobs.strategy)
            .finish()
    }
}

impl<A: Object> Builder<A> {
    fn new(name: &SegmentName) -> Self {
        Builder {
            name: name.clone(),
            len: None,
            values: None,
            knobs: Knobs::default(),
            _a: PhantomData,
        }
    }

    /// The length: created with (zero-filled), or expected on open.
    #[allow(clippy::len_without_is_empty)] // a knob, not a container
    pub fn len(mut self, len: usize) -> Self {
        self.len = Some(len);
        self
    }

    /// The initial elements (creator only; copied): Python's `Array(typecode, initializer)`.
    /// The length is theirs; a [`len`](Self::len) that differs is
    /// [`CreateError::InvalidParameter`].
    pub fn values(mut self, values: &[A::Elem]) -> Self {
        self.values = Some(values.to_vec());
        self
    }

    shm_core::knob_methods!(knobs; mode, open_timeout);

    fn segment(&self) -> shm_core::SegmentBuilder {
        self.knobs
            .apply(Segment::builder(&self.name, A::KIND).layout(<A::Elem as Element>::LAYOUT))
    }

    /// The length to create with, and the builder for it.
    fn creating(&self) -> Result<(usize, shm_core::SegmentBuilder), CreateError> {
        let len = match (&self.values, self.len) {
            (Some(v), Some(n)) if v.len() != n => {
                return Err(CreateError::InvalidParameter {
                    parameter: "len",
                    reason: format!("length {n} given, but {} initial values", v.len()),
                })
            }
            (Some(v), _) => v.len(),
            (None, Some(n)) => n,
            (None, None) => {
                return Err(CreateError::InvalidParameter {
                    parameter: "len",
                    reason: "no array length given (call `len` or `values`)".into(),
                })
            }
        };
        let bytes = body_len::<A::Elem>(A::DATA_OFFSET, len).ok_or(CreateError::TooLarge {
            body_len: (len as u64).saturating_mul(std::mem::size_of::<A::Elem>() as u64),
        })?;
        Ok((len, self.segment().count(len as u64).body_len(bytes)))
    }

    fn init(&self, body: NonNull<u8>) {
        A::init_body(body);
        if let Some(v) = &self.values {
            // SAFETY: the body holds DATA_OFFSET + v.len() elements (created so): in bounds.
            let dst = unsafe { body.as_ptr().add(A::DATA_OFFSET) }.cast::<A::Elem>();
            // SAFETY: `dst` is valid for v.len() elements, aligned (128-aligned body, offset 0
            // or 128), distinct from `v`, and not yet shared with anyone.
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), dst, v.len()) }
        }
    }

    /// Creates the array exclusively: zero-filled with [`len`](Self::len) elements, or a
    /// copy of [`values`](Self::values).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] without a length (or with one that differs from the
    /// values'), [`CreateError::TooLarge`], [`CreateError::AlreadyExists`], and the other
    /// [`CreateError`]s.
    pub fn create(self) -> Result<A, CreateError> {
        let (len, b) = self.creating()?;
        let seg = b.create(|body, _| self.init(body))?;
        // SAFETY: the body was created with DATA_OFFSET + len * size bytes, initialised.
        Ok(unsafe { A::from_home(Home::Segment(seg), len, self.knobs.strategy) })
    }

    /// Opens an existing array; the element layout (typecode or record format) is checked,
    /// and the length too if [`len`](Self::len) was given.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongLayout`], [`OpenError::WrongCount`], [`OpenError::WrongKind`],
    /// [`OpenError::NotFound`], [`OpenError::Corrupt`] (a count the body cannot hold), and
    /// the other [`OpenError`]s.
    pub fn open(self) -> Result<A, OpenError> {
        let mut b = self.segment();
        if let Some(n) = self.len {
            b = b.count(n as u64);
        }
        wrap(b.open()?, self.knobs.strategy)
    }

    /// Opens the array, or creates it as [`create`](Self::create) does (race-free: exactly
    /// one process creates). A length is required, and checked on open.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::InvalidParameter`] without a length (or with one
    /// that differs from the values'); [`OpenError::Create`] if creating failed.
    pub fn open_or_create(self) -> Result<A, OpenError> {
        let (_, b) = self.creating().map_err(|e| match e {
            CreateError::InvalidParameter { parameter, reason } => {
                OpenError::InvalidParameter { parameter, reason }
            }
            e => OpenError::Create(e),
        })?;
        let seg = b.open_or_create(|body, _| self.init(body))?;
        wrap(seg, self.knobs.strategy)
    }
}

impl<T: Element> Builder<Array<T>> {
    shm_core::knob_methods!(knobs; wait_strategy);
}

/// Checks that the body holds the header's count of elements, then wraps it.
fn wrap<A: Object>(seg: Segment, strategy: WaitStrategy) -> Result<A, OpenError> {
    let count = seg.header().count();
    let body = seg.body_len();
    let size = std::mem::size_of::<A::Elem>();
    let len = usize::try_from(count)
        .ok()
        .filter(|&n| body_len::<A::Elem>(A::DATA_OFFSET, n).is_some_and(|need| need <= body));
    let Some(len) = len else {
        let fits = body.saturating_sub(A::DATA_OFFSET) / size.max(1);
        return Err(OpenError::Corrupt {
            field: "count",
            expected: fits as u64,
            found: count,
        });
    };
    // SAFETY: checked just above that the body holds DATA_OFFSET + len * size bytes; the
    // creator initialised them before publishing (and any bytes are valid elements and a
    // valid lock state).
    Ok(unsafe { A::from_home(Home::Segment(seg), len, strategy) })
}

/// Constructors, length, element and bulk access, shared by both array types. Each type
/// defines `section` (runs a closure of this crate's, no caller code, with whatever exclusion
/// the type promises), `caller_section` (the same for a closure that runs caller code) and
/// `read_into`/`write_from` (bulk copies).
macro_rules! common {
    ($ty:ident) => {
        /// A builder for the array named `name`.
        pub fn builder(name: &SegmentName) -> Builder<$ty<T>> {
            Builder::new(name)
        }

        /// Creates the array `name` of `len` zeroed elements: `builder(name).len(len).create()`.
        ///
        /// # Errors
        ///
        /// As [`Builder::create`].
        pub fn create(name: &SegmentName, len: usize) -> Result<Self, CreateError> {
            Self::builder(name).len(len).create()
        }

        /// Creates the array `name` holding a copy of `init`:
        /// `builder(name).values(init).create()`.
        ///
        /// # Errors
        ///
        /// As [`Builder::create`].
        pub fn create_from(name: &SegmentName, init: &[T]) -> Result<Self, CreateError> {
            Self::builder(name).values(init).create()
        }

        /// Opens the array `name`, whatever its length (read from the header):
        /// `builder(name).open()`.
        ///
        /// # Errors
        ///
        /// As [`Builder::open`].
        pub fn open(name: &SegmentName) -> Result<Self, OpenError> {
            Self::builder(name).open()
        }

        /// A process-local array of `len` zeroed elements on the heap (tests, miri).
        ///
        /// # Panics
        ///
        /// If the size overflows `isize::MAX`, as `Vec` does.
        pub fn new(len: usize) -> Self {
            let bytes = body_len::<T>(<Self as Object>::DATA_OFFSET, len).expect("array too large");
            let home = Home::heap(bytes);
            <Self as Object>::init_body(home.as_ptr());
            // SAFETY: the heap block has DATA_OFFSET + len * size bytes, initialised above.
            unsafe { <Self as Object>::from_home(home, len, WaitStrategy::default()) }
        }

        /// A process-local array on the heap holding a copy of `init`.
        pub fn new_from(init: &[T]) -> Self {
            let a = Self::new(init.len());
            a.write_from(0, init);
            a
        }

        /// The number of elements.
        #[inline]
        pub fn len(&self) -> usize {
            self.elems.len()
        }

        /// Whether the array has no elements.
        #[inline]
        pub fn is_empty(&self) -> bool {
            self.elems.len() == 0
        }

        /// Element `i`.
        ///
        /// # Errors
        ///
        /// [`IndexError`] if `i >= len()`.
        #[inline]
        pub fn get(&self, i: usize) -> Result<T, IndexError> {
            self.elems.check(i)?;
            Ok(self.section(|| self.elems.load(i)))
        }

        /// Writes element `i`.
        ///
        /// # Errors
        ///
        /// [`IndexError`] if `i >= len()` (nothing is written).
        #[inline]
        pub fn set(&self, i: usize, v: T) -> Result<(), IndexError> {
            self.elems.check(i)?;
            self.section(|| self.elems.store(i, v));
            Ok(())
        }

        /// Element `i`, like `slice[i]`.
        ///
        /// # Panics
        ///
        /// If `i >= len()`; [`get`](Self::get) is the checked form.
        #[inline]
        #[track_caller]
        pub fn load(&self, i: usize) -> T {
            match self.get(i) {
                Ok(v) => v,
                Err(e) => panic!("{e}"),
            }
        }

        /// Writes element `i`, like `slice[i] = v`.
        ///
        /// # Panics
        ///
        /// If `i >= len()`; [`set`](Self::set) is the checked form.
        #[inline]
        #[track_caller]
        pub fn store(&self, i: usize, v: T) {
            if let Err(e) = self.set(i, v) {
                panic!("{e}")
            }
        }

        /// Copies all of `src` into the array (Python's `arr[:] = src`).
        ///
        /// # Errors
        ///
        /// [`CopyError::LengthMismatch`] unless `src.len() == len()` (nothing is copied).
        pub fn copy_from_slice(&self, src: &[T]) -> Result<(), CopyError> {
            if src.len() != self.len() {
                return Err(CopyError::LengthMismatch {
                    expected: self.len(),
                    found: src.len(),
                });
            }
            self.write_from(0, src);
            Ok(())
        }

        /// Copies the whole array into `dst` (Python's `arr[:]`).
        ///
        /// # Errors
        ///
        /// [`CopyError::LengthMismatch`] unless `dst.len() == len()`.
        pub fn copy_to_slice(&self, dst: &mut [T]) -> Result<(), CopyError> {
            if dst.len() != self.len() {
                return Err(CopyError::LengthMismatch {
                    expected: self.len(),
                    found: dst.len(),
                });
            }
            self.read_into(0, dst);
            Ok(())
        }

        /// Copies `src` into the elements `start..start + src.len()` (Python's
        /// `arr[start:start + len(src)] = src`).
        ///
        /// # Errors
        ///
        /// [`CopyError::OutOfRange`] if the range does not fit (nothing is copied).
        pub fn write_at(&self, start: usize, src: &[T]) -> Result<(), CopyError> {
            self.elems.check_range(start, src.len())?;
            self.write_from(start, src);
            Ok(())
        }

        /// Copies the elements `start..start + dst.len()` into `dst`.
        ///
        /// # Errors
        ///
        /// [`CopyError::OutOfRange`] if the range does not fit.
        pub fn read_at(&self, start: usize, dst: &mut [T]) -> Result<(), CopyError> {
            self.elems.check_range(start, dst.len())?;
            self.read_into(start, dst);
            Ok(())
        }

        /// The whole array, copied into a new `Vec`.
        pub fn to_vec(&self) -> Vec<T> {
            let mut v = vec![T::zeroed(); self.len()];
            self.read_into(0, &mut v);
            v
        }

        /// The elements of `range`, copied into a new `Vec` (Python's `arr[a:b]`).
        ///
        /// # Errors
        ///
        /// [`CopyError::OutOfRange`] if the range is not inside the array (or is reversed).
        pub fn range_to_vec(&self, range: Range<usize>) -> Result<Vec<T>, CopyError> {
            if range.start > range.end {
                return Err(CopyError::OutOfRange {
                    start: range.start,
                    end: range.end,
                    len: self.len(),
                });
            }
            let mut v = vec![T::zeroed(); range.end - range.start];
            self.read_at(range.start, &mut v)?;
            Ok(v)
        }

        /// The segment, unless the array lives on the heap.
        pub fn segment(&self) -> Option<&Segment> {
            self.elems.home.segment()
        }
    };
}

/// Per-element atomic operations for atomic elements.
macro_rules! atomic_common {
    () => {
        /// Writes `v` into element `i` and returns the previous value, atomically.
        ///
        /// # Errors
        ///
        /// [`IndexError`] if `i >= len()`.
        pub fn swap(&self, i: usize, v: T) -> Result<T, IndexError> {
            self.elems.check(i)?;
            Ok(self.section(|| T::atomic_swap(self.elems.atomic(i), v, Ordering::SeqCst)))
        }

        /// Writes `new` into element `i` if it is bitwise `current`; the outer `Result` is the
        /// index check, the inner one that of `compare_exchange` (the value found on failure).
        ///
        /// # Errors
        ///
        /// [`IndexError`] if `i >= len()`.
        pub fn compare_exchange(
            &self,
            i: usize,
            current: T,
            new: T,
        ) -> Result<Result<T, T>, IndexError> {
            self.elems.check(i)?;
            Ok(self.section(|| {
                T::atomic_compare_exchange(
                    self.elems.atomic(i),
                    current,
                    new,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
            }))
        }

        /// Applies `f` to element `i` by compare-and-swap until it sticks (or `f` returns
        /// `None`); the inner `Result` is that of `fetch_update`.
        ///
        /// # Errors
        ///
        /// [`IndexError`] if `i >= len()`.
        pub fn fetch_update(
            &self,
            i: usize,
            f: impl FnMut(T) -> Option<T>,
        ) -> Result<Result<T, T>, IndexError> {
            self.elems.check(i)?;
            // `f` is the caller's code: it may lock the array or drop a guard of it.
            Ok(self.caller_section(|| T::atomic_fetch_update(self.elems.atomic(i), f)))
        }
    };
}

macro_rules! int_common {
    ($($(#[$doc:meta])* $name:ident => $f:ident;)+) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        ///
        /// [`IndexError`] if `i >= len()`.
        #[inline]
        pub fn $name(&self, i: usize, v: T) -> Result<T, IndexError> {
            self.elems.check(i)?;
            Ok(self.section(|| T::$f(self.elems.atomic(i), v, Ordering::SeqCst)))
        }
    )+};
}

macro_rules! all_int_common {
    () => {
        int_common! {
            /// Adds `v` to element `i` (wrapping); returns the previous value.
            fetch_add => atomic_fetch_add;
            /// Subtracts `v` from element `i` (wrapping); returns the previous value.
            fetch_sub => atomic_fetch_sub;
            /// Bitwise and of element `i` with `v`; returns the previous value.
            fetch_and => atomic_fetch_and;
            /// Bitwise or of element `i` with `v`; returns the previous value.
            fetch_or => atomic_fetch_or;
            /// Bitwise xor of element `i` with `v`; returns the previous value.
            fetch_xor => atomic_fetch_xor;
            /// Maximum of element `i` and `v`; returns the previous value.
            fetch_max => atomic_fetch_max;
            /// Minimum of element `i` and `v`; returns the previous value.
            fetch_min => atomic_fetch_min;
        }
    };
}

/// Python's `c_char` array helpers (`.value`, `.raw`).
macro_rules! char_common {
    () => {
        /// The bytes up to the first NUL (all of them if there is none): Python's `.value`.
        pub fn value(&self) -> Vec<u8> {
            let mut v = self.raw();
            if let Some(end) = v.iter().position(|&b| b == 0) {
                v.truncate(end);
            }
            v
        }

        /// Writes `s` and, if it is shorter than the array, one NUL after it; the rest is left
        /// as it was (Python's `.value = s`).
        ///
        /// # Errors
        ///
        /// [`StringError::TooLong`] if `s` is longer than the array (nothing is written).
        pub fn set_value(&self, s: &[u8]) -> Result<(), StringError> {
            let n = self.len();
            if s.len() > n {
                return Err(StringError::TooLong {
                    len: s.len(),
                    capacity: n,
                });
            }
            self.section(|| {
                self.write_from(0, bytemuck::cast_slice(s));
                if s.len() < n {
                    self.elems.store(s.len(), CChar(0));
                }
            });
            Ok(())
        }

        /// All the bytes (Python's `.raw`).
        pub fn raw(&self) -> Vec<u8> {
            self.to_vec().into_iter().map(|c| c.0).collect()
        }

        /// Overwrites the first `s.len()` bytes; the rest is left as it was (Python's
        /// `.raw = s`).
        ///
        /// # Errors
        ///
        /// [`StringError::TooLong`] if `s` is longer than the array (nothing is written).
        pub fn set_raw(&self, s: &[u8]) -> Result<(), StringError> {
            if s.len() > self.len() {
                return Err(StringError::TooLong {
                    len: s.len(),
                    capacity: self.len(),
                });
            }
            self.write_from(0, bytemuck::cast_slice(s));
            Ok(())
        }
    };
}

// ---------------------------------------------------------------------------------------------
// RawArray

/// A shared array without a lock: Python's `RawArray`, named and typed.
///
/// Elements are typecode elements or records (`shm_core::record!`). Every element read and
/// write is atomic for typecode elements; a record is read and written with word-sized
/// atomics (one word = its alignment, at most 8 bytes), so a record wider than that can be
/// seen half-written by a reader racing a writer (*torn*), but never causes undefined
/// behaviour. Integer elements have atomic `fetch_add` and friends.
///
/// Bulk copies ([`copy_from_slice`](Self::copy_from_slice), [`to_vec`](Self::to_vec), …)
/// are element-wise atomic copies (Acquire loads, Release stores): free of undefined
/// behaviour while other processes write, but **not a snapshot**: elements written during
/// the copy may appear in it or not, independently of each other. Use [`Array`] and its lock
/// for consistent snapshots.
///
/// There is no slice access: every element is copied in or out through atomics, since any
/// handle in any thread or process may write any element at any time.
///
/// Body layout: the elements from offset 0; the header holds the layout and the length.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_array::RawArray;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let a = RawArray::<i32>::create_from(&name, &[1, 2, 3])?;
/// let b = RawArray::<i32>::open(&name)?;
/// b.fetch_add(0, 10)?;
/// assert_eq!(a.to_vec(), [11, 2, 3]);
/// assert!(a.get(3).is_err());
/// # Ok(())
/// # }
/// ```
pub struct RawArray<T: Element> {
    elems: Elems<T>,
}

impl<T: Element> Object for RawArray<T> {
    type Elem = T;
    const KIND: ObjectKind = ObjectKind::RawArray;
    const DATA_OFFSET: usize = 0;
    fn init_body(_: NonNull<u8>) {}
    unsafe fn from_home(home: Home, len: usize, _: WaitStrategy) -> Self {
        // SAFETY: the caller guarantees the body size; offset 0.
        let elems = unsafe { Elems::new(home, 0, len) };
        RawArray { elems }
    }
}

impl<T: Element> RawArray<T> {
    common!(RawArray);

    #[inline(always)]
    fn section<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    #[inline(always)]
    fn caller_section<R>(&self, f: impl FnOnce() -> R) -> R {
        f()
    }

    fn read_into(&self, start: usize, dst: &mut [T]) {
        self.elems.read_atomic(start, dst)
    }

    fn write_from(&self, start: usize, src: &[T]) {
        self.elems.write_atomic(start, src)
    }
}

impl<T: AtomicElement> RawArray<T> {
    atomic_common!();
}

impl<T: IntElement> RawArray<T> {
    all_int_common!();
}

impl RawArray<CChar> {
    char_common!();
}

impl<T: Element> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("layout", &T::LAYOUT.format())
            .field("len", &self.len())
            .field("home", &self.elems.home)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Array

/// A shared array with an embedded robust re-entrant lock: Python's `Array(typecode, n)`
/// (`lock=True`), named and typed; elements are typecode elements or records.
///
/// - **Element access** ([`get`](Self::get), [`set`](Self::set), `fetch_add`, …) takes the
///   lock for each operation, as Python's `arr[i]` does, and is atomic besides.
/// - **Bulk copies** ([`copy_from_slice`](Self::copy_from_slice),
///   [`copy_to_slice`](Self::copy_to_slice), [`to_vec`](Self::to_vec), the ranged forms and
///   the `'c'` helpers) each take the lock once and copy at `memcpy` speed: consistent
///   snapshots.
/// - **Critical sections**: [`lock`](Self::lock) returns an [`ArrayGuard`], which reads and
///   writes the elements by copy (`get`, `set`, `to_vec`, `copy_from_slice`,
///   [`update`](ArrayGuard::update) on a local copy) while the lock is held.
///   [`get_lock`](Self::get_lock) is the lock itself (re-entrant), for sections over several
///   operations or objects: element operations and `lock` inside it do not deadlock.
///
/// **Owner death.** If a holder dies, [`lock`](Self::lock) reports
/// [`OwnerDiedError`] until someone takes the lock with [`recover`](Self::recover) and
/// calls `mark_consistent`. Element
/// and bulk operations go ahead in that state (each is consistent by itself) and leave the
/// flag for `lock` users to see; [`is_inconsistent`](Self::is_inconsistent) tells.
///
/// # No slices into shared memory
///
/// No safe method hands out `&T`, `&[T]` or `&mut [T]` over the elements: the lock is
/// re-entrant, so while a guard lives the same thread can still write the elements through
/// another handle to the same segment (or through this one), and a slice held across that
/// would alias. A guard is therefore not a slice:
///
/// ```compile_fail
/// let a = shm_array::Array::<i32>::new(4);
/// let mut g = a.lock().unwrap();
/// let s: &mut [i32] = &mut g; // ArrayGuard does not deref to the elements
/// s[0] = 1;
/// ```
///
/// What it offers instead: copies (every method above), raw pointers
/// ([`as_ptr`](ArrayGuard::as_ptr), [`as_mut_ptr`](ArrayGuard::as_mut_ptr)), and
/// [`ArrayGuard::as_mut_slice`], an `unsafe fn` whose contract is that nothing else in the
/// calling thread touches the elements while the slice lives (other threads and processes
/// are excluded by the lock).
///
/// Body layout: an `RLockState` (32 bytes) at offset 0, the elements from offset 128
/// ([`ARRAY_DATA_OFFSET`]); the header holds the layout and the length.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_array::Array;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let arr = Array::<i32>::create_from(&name, &(0..11).collect::<Vec<_>>())?;
/// let other = Array::<i32>::open(&name)?;
/// {
///     // Negate every element under one lock (no other process sees half of it).
///     let mut guard = other.lock()?; // fails only if a holder died: see `recover`
///     guard.update(|elems| elems.iter_mut().for_each(|x| *x = -*x));
/// }
/// assert_eq!(arr.get(10)?, -10);
/// assert!(arr.copy_from_slice(&[1, 2]).is_err()); // "Can only assign sequence of same size"
/// # Ok(())
/// # }
/// ```
///
/// Across processes:
///
/// ```no_run
/// use shm_core::SegmentName;
/// use shm_array::Array;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::new("samples")?;
/// // Process 1
/// let a = Array::<f64>::create(&name, 1024)?;
/// // Process 2: states the length it expects
/// let a = Array::<f64>::builder(&name).len(1024).open()?;
/// a.copy_from_slice(&[0.5; 1024])?;
/// # Ok(())
/// # }
/// ```
pub struct Array<T: Element> {
    elems: Elems<T>,
    strategy: WaitStrategy,
}

impl<T: Element> Object for Array<T> {
    type Elem = T;
    const KIND: ObjectKind = ObjectKind::Array;
    const DATA_OFFSET: usize = ARRAY_DATA_OFFSET;
    fn init_body(body: NonNull<u8>) {
        // SAFETY: the body is at least ARRAY_DATA_OFFSET >= RLOCK_STATE_SIZE bytes,
        // 128-aligned, and not yet shared.
        unsafe { body.cast::<RLockState>().as_ptr().write(RLockState::new()) }
    }
    unsafe fn from_home(home: Home, len: usize, strategy: WaitStrategy) -> Self {
        // SAFETY: the caller guarantees the body size; ARRAY_DATA_OFFSET is 128.
        let elems = unsafe { Elems::new(home, ARRAY_DATA_OFFSET, len) };
        Array { elems, strategy }
    }
}

/// The lock as one element or bulk operation holds it: the raw lock under the `RLock`, or
/// nothing if this thread holds the lock already (a guard, `get_lock`). Released on drop.
///
/// Only for sections that run no caller code: a closure of the caller's could take a guard
/// (re-entering, since this thread owns the raw lock) that outlives the section, or drop the
/// guard that this section re-entered under; either releases the lock while a guard still
/// vouches for it. Sections that run caller code hold a counted re-entrant level instead
/// (`caller_section`).
struct Held<'a>(Option<&'a RawLock>);

impl Drop for Held<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(raw) = self.0 {
            // SAFETY: `hold` puts a lock here only right after this thread acquired it.
            unsafe { raw.unlock() }
        }
    }
}

impl<T: Element> Array<T> {
    common!(Array);

    /// The array's lock (Python's `get_lock()`); re-entrant.
    pub fn get_lock(&self) -> RLockRef<'_> {
        // SAFETY: the RLockState lies at offset 0 of the home (initialised by the creator;
        // all-zero is valid too), which lives as long as `self`.
        unsafe { RLockRef::from_ptr(self.elems.base().cast()) }.with_wait_strategy(self.strategy)
    }

    /// Whether the lock is flagged: a holder died and nobody has marked the array consistent.
    pub fn is_inconsistent(&self) -> bool {
        self.get_lock().is_inconsistent()
    }

    /// Takes the lock for one element or bulk operation.
    #[inline]
    fn hold(&self) -> Held<'_> {
        let raw = self.get_lock().state().raw();
        match raw.lock_until(&self.strategy, Deadline::NEVER) {
            // After an owner died too: element and bulk operations go ahead (each is
            // consistent by itself) and leave the flag for `lock` users.
            Ok(Acquired::Clean | Acquired::OwnerDied) => Held(Some(raw)),
            Err(RawLockError::Deadlock) => Held(None),
            Err(e @ (RawLockError::Timeout | RawLockError::WouldBlock)) => {
                unreachable!("the raw lock failed without a deadline: {e:?}")
            }
        }
    }

    /// Runs `f`, which runs no caller code, under the lock.
    #[inline]
    fn section<R>(&self, f: impl FnOnce() -> R) -> R {
        let held = self.hold();
        let r = f();
        drop(held);
        r
    }

    /// Runs `f`, which runs caller code, under a counted level of the re-entrant lock: a
    /// guard that `f` takes nests in it (and keeps the lock held after this returns), and a
    /// guard that `f` drops releases only its own level. Like `hold`, it goes ahead on a
    /// flagged lock and leaves the flag.
    #[inline]
    fn caller_section<R>(&self, f: impl FnOnce() -> R) -> R {
        let level = self.get_lock().recover();
        let r = f();
        drop(level);
        r
    }

    fn read_into(&self, start: usize, dst: &mut [T]) {
        let held = self.hold();
        // SAFETY: we hold the lock, which every access to the elements through this API
        // takes (element operations, bulk copies, guards); no reference to the elements
        // exists (none is handed out), and no code of ours or the caller's runs during the
        // copy, so nobody writes the range meanwhile.
        unsafe { self.elems.read_locked(start, dst) };
        drop(held);
    }

    fn write_from(&self, start: usize, src: &[T]) {
        let held = self.hold();
        // SAFETY: as in `read_into`, for readers and writers.
        unsafe { self.elems.write_locked(start, src) };
        drop(held);
    }

    /// Locks the array and returns a guard to read and write its elements with.
    ///
    /// # Errors
    ///
    /// [`OwnerDiedError`] if a previous holder died holding the lock (or left it
    /// flagged): not held after it; take it with [`recover`](Self::recover).
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, OwnerDiedError> {
        let guard = self.get_lock().lock()?;
        Ok(ArrayGuard { array: self, guard })
    }

    /// Locks the array even if a previous holder died holding the lock: check
    /// `is_inconsistent`, repair, then `mark_consistent` on the guard.
    pub fn recover(&self) -> ArrayGuard<'_, T> {
        ArrayGuard {
            array: self,
            guard: self.get_lock().recover(),
        }
    }

    /// [`lock`](Self::lock) if no waiting is needed.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if another thread holds the lock; otherwise as `lock`.
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, TryLockError> {
        let guard = self.get_lock().try_lock()?;
        Ok(ArrayGuard { array: self, guard })
    }

    /// [`lock`](Self::lock), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ReentrantTimeoutError::Timeout`] if another thread held the lock all along;
    /// [`ReentrantTimeoutError::OwnerDied`] as for `lock`.
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, ReentrantTimeoutError> {
        let guard = self.get_lock().try_lock_for(timeout)?;
        Ok(ArrayGuard { array: self, guard })
    }

    /// A second handle to the same memory, as `open` gives for a segment: lets the heap home
    /// (and so miri and the fuzz target) check what two handles in one thread can do.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn second_handle(&self) -> Self {
        Array {
            elems: self.elems.second_handle(),
            strategy: self.strategy,
        }
    }
}

impl<T: AtomicElement> Array<T> {
    atomic_common!();
}

impl<T: IntElement> Array<T> {
    all_int_common!();
}

impl Array<CChar> {
    char_common!();
}

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("layout", &T::LAYOUT.format())
            .field("len", &self.len())
            .field("home", &self.elems.home)
            .field("lock", &self.get_lock())
            .finish()
    }
}

/// An [`Array`] with its lock held; releases the lock (one level) on drop.
///
/// It reads and writes the elements by copy, never through a safe reference (see
/// [`Array`]'s "No slices into shared memory"): [`get`](Self::get), [`set`](Self::set),
/// [`to_vec`](Self::to_vec), [`copy_from_slice`](Self::copy_from_slice),
/// [`copy_to_slice`](Self::copy_to_slice), and [`update`](Self::update), which runs a
/// closure on a local copy of the whole array and writes it back. Bulk copies run at `memcpy`
/// speed. For in-place access without the copies there are raw pointers and the
/// `unsafe` [`as_mut_slice`](Self::as_mut_slice).
///
/// # Examples
///
/// ```
/// let a = shm_array::Array::<u8>::new(4);
/// let mut g = a.lock()?;
/// g.copy_from_slice(b"abcd")?;
/// g.set(0, b'A')?;
/// g.update(|s| s.reverse());
/// drop(g);
/// assert_eq!(a.to_vec(), b"dcbA");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "the lock is released when the guard drops"]
pub struct ArrayGuard<'a, T: Element> {
    array: &'a Array<T>,
    guard: RLockGuard<'a>,
}

impl<T: Element> ArrayGuard<'_, T> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.array.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.array.is_empty()
    }

    /// Element `i`.
    ///
    /// # Errors
    ///
    /// [`IndexError`] if `i >= len()`.
    #[inline]
    pub fn get(&self, i: usize) -> Result<T, IndexError> {
        self.array.elems.check(i)?;
        Ok(self.array.elems.load(i))
    }

    /// Writes element `i`.
    ///
    /// # Errors
    ///
    /// [`IndexError`] if `i >= len()` (nothing is written).
    #[inline]
    pub fn set(&self, i: usize, v: T) -> Result<(), IndexError> {
        self.array.elems.check(i)?;
        self.array.elems.store(i, v);
        Ok(())
    }

    /// The whole array, copied into a new `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        self.array.to_vec()
    }

    /// Copies all of `src` into the array.
    ///
    /// # Errors
    ///
    /// [`CopyError::LengthMismatch`] unless `src.len() == len()` (nothing is copied).
    pub fn copy_from_slice(&self, src: &[T]) -> Result<(), CopyError> {
        self.array.copy_from_slice(src)
    }

    /// Copies the whole array into `dst`.
    ///
    /// # Errors
    ///
    /// [`CopyError::LengthMismatch`] unless `dst.len() == len()`.
    pub fn copy_to_slice(&self, dst: &mut [T]) -> Result<(), CopyError> {
        self.array.copy_to_slice(dst)
    }

    /// Runs `f` on a copy of the whole array, then writes the copy back, all under the lock
    /// this guard holds; returns what `f` returns.
    ///
    /// `f` works on process-local memory, so it may do anything, including using this array
    /// through another handle; but what it writes that way is overwritten by the copy.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut [T]) -> R) -> R {
        let mut local = self.to_vec();
        let r = f(&mut local);
        self.array.write_from(0, &local);
        r
    }

    /// The first element, for raw access while the guard lives (dangling but aligned if the
    /// array is empty). Reading through it is sound while this guard lives and nothing else
    /// in this thread writes the elements meanwhile.
    pub fn as_ptr(&self) -> *const T {
        self.array.elems.ptr(0)
    }

    /// The first element, for raw writes while the guard lives: see
    /// [`as_mut_slice`](Self::as_mut_slice) for the rules.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.array.elems.ptr(0)
    }

    /// The elements as a slice, in place (no copy).
    ///
    /// # Safety
    ///
    /// While the returned slice lives, nothing in the calling thread writes the array's
    /// elements except through this slice: no element or bulk operation of an [`Array`]
    /// handle to the same memory, no other guard of it, no raw pointer. (The lock this guard
    /// holds keeps out other threads and processes using this API; it is re-entrant, so it
    /// does not keep out the calling thread.)
    pub unsafe fn as_slice(&self) -> &[T] {
        // SAFETY: the lock is held for the borrow of `self`, which excludes other threads
        // and processes; the caller guarantees this thread writes nothing else meanwhile.
        unsafe { self.array.elems.slice() }
    }

    /// The elements as a mutable slice, in place (no copy).
    ///
    /// # Safety
    ///
    /// While the returned slice lives, nothing in the calling thread reads or writes the
    /// array's elements except through this slice: no element or bulk operation of an
    /// [`Array`] handle to the same memory, no other guard of it, no raw pointer. (The lock
    /// this guard holds keeps out other threads and processes using this API; it is
    /// re-entrant, so it does not keep out the calling thread.)
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shm_array::Array::<f64>::new_from(&[1.0, 2.0]);
    /// let mut g = a.lock()?;
    /// // SAFETY: nothing else touches `a` in this thread while `s` lives.
    /// let s = unsafe { g.as_mut_slice() };
    /// s.iter_mut().for_each(|x| *x *= 10.0);
    /// drop(g);
    /// assert_eq!(a.to_vec(), [10.0, 20.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub unsafe fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; the `&mut self` borrow makes the slice the guard's only
        // one, and the caller guarantees no other access from this thread.
        unsafe { self.array.elems.slice_mut() }
    }

    /// Clears the owner-died flag: the array is consistent again.
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent()
    }

    /// Whether the owner-died flag is set.
    pub fn is_inconsistent(&self) -> bool {
        self.guard.is_inconsistent()
    }
}

impl<T: Element> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("layout", &T::LAYOUT.format())
            .field("len", &self.array.len())
            .field("lock", &self.guard)
            .finish()
    }
}
