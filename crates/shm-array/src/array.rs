//! `Array<T>` (with its embedded RLock) and `RawArray<T>` (atomics only).

use crate::elems::Elems;
use crate::{CopyError, IndexError, StringError};
use shm_core::{CChar, CreateError, Element, Home, ObjectKind, OpenError, Segment, SegmentName};
use shm_lock::{
    LockError, LockTimeoutError, RLockGuard, RLockRef, RLockState, TryLockError, RLOCK_STATE_SIZE,
};
use shm_value::{AtomicElement, IntElement};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut, Range};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where an `Array`'s elements start in its body: after the 32-byte `RLockState` at offset
/// 0, on their own 128-byte line.
pub const ARRAY_DATA_OFFSET: usize = 128;

const _: () = assert!(RLOCK_STATE_SIZE <= ARRAY_DATA_OFFSET);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RLockState>() == RLOCK_STATE_SIZE);

/// What `Array` and `RawArray` tell [`Builder`].
trait Object<T: Element>: Sized {
    const KIND: ObjectKind;
    const DATA_OFFSET: usize;
    fn init_body(body: NonNull<u8>);
    fn from_elems(elems: Elems<T>) -> Self;
}

fn body_len<T: Element>(offset: usize, len: usize) -> Option<usize> {
    len.checked_mul(std::mem::size_of::<T>())?
        .checked_add(offset)
        .filter(|&n| n <= isize::MAX as usize)
}

/// Builds a named [`Array`] or [`RawArray`].
///
/// [`len`](Builder::len) is the length to create with; on [`open`](Builder::open) it is the
/// length the opener expects, and a segment of another length is
/// [`OpenError::WrongCount`]. Without it, `open` takes the length from the header.
///
/// # Examples
///
/// ```
/// use shm_core::{OpenError, SegmentName};
/// use shm_array::RawArray;
///
/// let name = SegmentName::unique();
/// let a = RawArray::<u16>::builder(&name).len(4).create().unwrap();
/// let b = RawArray::<u16>::builder(&name).len(4).open().unwrap();
/// assert_eq!(b.len(), 4);
/// let wrong = RawArray::<u16>::builder(&name).len(5).open();
/// assert!(matches!(wrong, Err(OpenError::WrongCount { expected: 5, found: 4 })));
/// # drop(a);
/// ```
#[must_use]
pub struct Builder<A> {
    name: SegmentName,
    len: Option<usize>,
    timeout: Option<Duration>,
    mode: Option<u32>,
    _a: PhantomData<fn() -> A>,
}

impl<A> fmt::Debug for Builder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<A>())
            .field("len", &self.len)
            .field("timeout", &self.timeout)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<A> Builder<A> {
    fn new(name: &SegmentName) -> Self {
        Builder {
            name: name.clone(),
            len: None,
            timeout: None,
            mode: None,
            _a: PhantomData,
        }
    }

    /// The length: created with, or expected on open.
    pub fn len(mut self, len: usize) -> Self {
        self.len = Some(len);
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

    fn segment<T: Element>(
        &self,
        kind: ObjectKind,
        offset: usize,
        len: Option<usize>,
    ) -> Result<shm_core::SegmentBuilder, CreateError> {
        let mut b = Segment::builder(&self.name, kind).layout(T::LAYOUT);
        if let Some(n) = len {
            let bytes = body_len::<T>(offset, n).ok_or(CreateError::TooLarge {
                body_len: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
            })?;
            b = b.count(n as u64).body_len(bytes);
        }
        if let Some(t) = self.timeout {
            b = b.timeout(t);
        }
        if let Some(m) = self.mode {
            b = b.mode(m);
        }
        Ok(b)
    }

    fn need_len(&self) -> Result<usize, CreateError> {
        self.len.ok_or_else(|| CreateError::Invalid {
            reason: "no array length given (call `len`)".into(),
        })
    }

    fn create_impl<T: Element>(self, init: Option<&[T]>) -> Result<A, CreateError>
    where
        A: Object<T>,
    {
        let len = match (init, self.len) {
            (Some(s), Some(n)) if s.len() != n => {
                return Err(CreateError::Invalid {
                    reason: format!("length {n} given, but the initial slice has {}", s.len()),
                })
            }
            (Some(s), _) => s.len(),
            (None, _) => self.need_len()?,
        };
        let seg = self
            .segment::<T>(A::KIND, A::DATA_OFFSET, Some(len))?
            .create(|body, _| init_body::<T, A>(body, init))?;
        // SAFETY: the body was created with DATA_OFFSET + len * size bytes; DATA_OFFSET is 0
        // or 128.
        Ok(A::from_elems(unsafe {
            Elems::new(Home::Segment(seg), A::DATA_OFFSET, len)
        }))
    }

    fn open_impl<T: Element>(self) -> Result<A, OpenError>
    where
        A: Object<T>,
    {
        let mut b = self
            .segment::<T>(A::KIND, A::DATA_OFFSET, None)
            .map_err(OpenError::Create)?;
        if let Some(n) = self.len {
            b = b.count(n as u64);
        }
        wrap(b.open()?)
    }

    fn open_or_create_impl<T: Element>(self) -> Result<A, OpenError>
    where
        A: Object<T>,
    {
        let len = self.need_len().map_err(OpenError::Create)?;
        let seg = self
            .segment::<T>(A::KIND, A::DATA_OFFSET, Some(len))
            .map_err(OpenError::Create)?
            .open_or_create(|body, _| init_body::<T, A>(body, None))?;
        wrap(seg)
    }
}

fn init_body<T: Element, A: Object<T>>(body: NonNull<u8>, init: Option<&[T]>) {
    A::init_body(body);
    if let Some(s) = init {
        // SAFETY: the body holds DATA_OFFSET + s.len() elements (created so): in bounds.
        let dst = unsafe { body.as_ptr().add(A::DATA_OFFSET) }.cast::<T>();
        // SAFETY: `dst` is valid for s.len() elements, aligned (128-aligned body, offset 0 or
        // 128), distinct from `s`, and not yet shared with anyone.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), dst, s.len()) }
    }
}

/// Checks that the body holds the header's count of elements, then wraps it.
fn wrap<T: Element, A: Object<T>>(seg: Segment) -> Result<A, OpenError> {
    let count = seg.header().count();
    let body = seg.body_len();
    let len = usize::try_from(count)
        .ok()
        .filter(|&n| body_len::<T>(A::DATA_OFFSET, n).is_some_and(|need| need <= body));
    let Some(len) = len else {
        let fits = body.saturating_sub(A::DATA_OFFSET) / std::mem::size_of::<T>().max(1);
        return Err(OpenError::Corrupt {
            field: "count",
            expected: fits as u64,
            found: count,
        });
    };
    // SAFETY: checked just above that the body holds DATA_OFFSET + len * size bytes.
    Ok(A::from_elems(unsafe {
        Elems::new(Home::Segment(seg), A::DATA_OFFSET, len)
    }))
}

impl<T: Element> Builder<RawArray<T>> {
    /// Creates the array exclusively, zero-filled (`len` is required).
    ///
    /// # Errors
    ///
    /// [`CreateError::Invalid`] without a length, [`CreateError::AlreadyExists`], OS errors.
    pub fn create(self) -> Result<RawArray<T>, CreateError> {
        self.create_impl(None)
    }

    /// Creates the array exclusively with a copy of `init`.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create); [`CreateError::Invalid`] if a `len` was given that is not
    /// `init.len()`.
    pub fn create_from(self, init: &[T]) -> Result<RawArray<T>, CreateError> {
        self.create_impl(Some(init))
    }

    /// Opens an existing array; the element layout (typecode or record format) is checked,
    /// and the length too if one was given.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongLayout`], [`OpenError::WrongCount`], [`OpenError::WrongKind`],
    /// [`OpenError::NotFound`], and the other [`OpenError`]s.
    pub fn open(self) -> Result<RawArray<T>, OpenError> {
        self.open_impl()
    }

    /// Opens the array, or creates it zero-filled (`len` is required, and checked on open).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_or_create(self) -> Result<RawArray<T>, OpenError> {
        self.open_or_create_impl()
    }
}

impl<T: Element> Builder<Array<T>> {
    /// Creates the array exclusively, zero-filled (`len` is required).
    ///
    /// # Errors
    ///
    /// [`CreateError::Invalid`] without a length, [`CreateError::AlreadyExists`], OS errors.
    pub fn create(self) -> Result<Array<T>, CreateError> {
        self.create_impl(None)
    }

    /// Creates the array exclusively with a copy of `init`.
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create); [`CreateError::Invalid`] if a `len` was given that is not
    /// `init.len()`.
    pub fn create_from(self, init: &[T]) -> Result<Array<T>, CreateError> {
        self.create_impl(Some(init))
    }

    /// Opens an existing array; the element layout is checked, and the length too if one
    /// was given.
    ///
    /// # Errors
    ///
    /// [`OpenError::WrongLayout`], [`OpenError::WrongCount`], [`OpenError::WrongKind`],
    /// [`OpenError::NotFound`], and the other [`OpenError`]s.
    pub fn open(self) -> Result<Array<T>, OpenError> {
        self.open_impl()
    }

    /// Opens the array, or creates it zero-filled (`len` is required, and checked on open).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_or_create(self) -> Result<Array<T>, OpenError> {
        self.open_or_create_impl()
    }
}

/// Constructors, length, element and bulk access, shared by both array types. Each type
/// defines `section` (runs a closure with whatever exclusion the type promises) and
/// `read_into`/`write_from` (bulk copies).
macro_rules! common {
    ($ty:ident) => {
        /// A builder for the array named `name`.
        pub fn builder(name: &SegmentName) -> Builder<$ty<T>> {
            Builder::new(name)
        }

        /// Creates the array `name` of `len` zeroed elements.
        ///
        /// # Errors
        ///
        /// As [`Builder::create`].
        pub fn create(name: &SegmentName, len: usize) -> Result<Self, CreateError> {
            Self::builder(name).len(len).create()
        }

        /// Creates the array `name` holding a copy of `init`.
        ///
        /// # Errors
        ///
        /// As [`Builder::create`].
        pub fn create_from(name: &SegmentName, init: &[T]) -> Result<Self, CreateError> {
            Self::builder(name).create_from(init)
        }

        /// Opens the array `name`, whatever its length (read from the header).
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
            let bytes =
                body_len::<T>(<Self as Object<T>>::DATA_OFFSET, len).expect("array too large");
            let home = Home::heap(bytes);
            <Self as Object<T>>::init_body(home.as_ptr());
            // SAFETY: the heap block has DATA_OFFSET + len * size bytes, 128-aligned.
            Self::from_elems(unsafe { Elems::new(home, <Self as Object<T>>::DATA_OFFSET, len) })
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
            Ok(self.section(|| shm_value::__fetch_update(self.elems.atomic(i), f)))
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
/// There is no slice access (another process may write any element at any time).
///
/// Body layout: the elements from offset 0; the header holds the layout and the length.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_array::RawArray;
///
/// let name = SegmentName::unique();
/// let a = RawArray::<i32>::create_from(&name, &[1, 2, 3]).unwrap();
/// let b = RawArray::<i32>::open(&name).unwrap();
/// b.fetch_add(0, 10).unwrap();
/// assert_eq!(a.to_vec(), [11, 2, 3]);
/// assert!(a.get(3).is_err());
/// ```
pub struct RawArray<T: Element> {
    elems: Elems<T>,
}

impl<T: Element> Object<T> for RawArray<T> {
    const KIND: ObjectKind = ObjectKind::RawArray;
    const DATA_OFFSET: usize = 0;
    fn init_body(_: NonNull<u8>) {}
    fn from_elems(elems: Elems<T>) -> Self {
        RawArray { elems }
    }
}

impl<T: Element> RawArray<T> {
    common!(RawArray);

    #[inline(always)]
    fn section<R>(&self, f: impl FnOnce() -> R) -> R {
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
/// - **Whole-array access**: [`lock`](Self::lock) returns an [`ArrayGuard`] that derefs to
///   `&[T]` and `&mut [T]`; [`copy_from_slice`](Self::copy_from_slice),
///   [`copy_to_slice`](Self::copy_to_slice), [`to_vec`](Self::to_vec) and the ranged forms
///   each take the lock once and copy at `memcpy` speed, so they are consistent snapshots.
/// - [`get_lock`](Self::get_lock) is the lock itself (re-entrant), for critical sections
///   over several operations or objects: `get`/`set` inside it do not deadlock.
///
/// **Owner death.** If a holder dies, [`lock`](Self::lock) reports
/// [`LockError::OwnerDied`] until someone takes the lock with [`recover`](Self::recover) and
/// calls `mark_consistent`. Element
/// and bulk operations go ahead in that state (each is consistent by itself) and leave the
/// flag for `lock` users to see; [`is_inconsistent`](Self::is_inconsistent) tells.
///
/// The slices are sound because every access to the elements through this type holds the
/// lock. Within one thread, using the array's element operations while an [`ArrayGuard`]
/// of the same handle is alive panics, like `RefCell` (the re-entrant lock would let them
/// in, aliasing the guard's `&mut [T]`). A second handle to the same segment in the same
/// thread is not detected: do not interleave its operations with a guard.
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
/// let name = SegmentName::unique();
/// let arr = Array::<i32>::create_from(&name, &(0..11).collect::<Vec<_>>()).unwrap();
/// let other = Array::<i32>::open(&name).unwrap();
/// {
///     let mut guard = other.lock().unwrap();
///     for x in guard.iter_mut() {
///         *x = -*x;
///     }
/// }
/// assert_eq!(arr.get(10), Ok(-10));
/// assert!(arr.copy_from_slice(&[1, 2]).is_err()); // "Can only assign sequence of same size"
/// ```
///
/// Across processes:
///
/// ```no_run
/// use shm_core::SegmentName;
/// use shm_array::Array;
///
/// let name = SegmentName::new("samples").unwrap();
/// // Process 1
/// let a = Array::<f64>::create(&name, 1024).unwrap();
/// // Process 2: states the length it expects
/// let a = Array::<f64>::builder(&name).len(1024).open().unwrap();
/// a.copy_from_slice(&[0.5; 1024]).unwrap();
/// ```
pub struct Array<T: Element> {
    elems: Elems<T>,
    /// Whether an `ArrayGuard` of this handle is alive (written only by the lock holder).
    borrowed: AtomicBool,
}

impl<T: Element> Object<T> for Array<T> {
    const KIND: ObjectKind = ObjectKind::Array;
    const DATA_OFFSET: usize = ARRAY_DATA_OFFSET;
    fn init_body(body: NonNull<u8>) {
        // SAFETY: the body is at least ARRAY_DATA_OFFSET >= RLOCK_STATE_SIZE bytes,
        // 128-aligned, and not yet shared.
        unsafe { body.cast::<RLockState>().as_ptr().write(RLockState::new()) }
    }
    fn from_elems(elems: Elems<T>) -> Self {
        Array {
            elems,
            borrowed: AtomicBool::new(false),
        }
    }
}

/// The lock as an element operation holds it.
enum Held<'a> {
    /// A level of the lock (also after an owner died: the flag stays for `lock` users).
    Guard(#[allow(dead_code)] RLockGuard<'a>),
}

impl<T: Element> Array<T> {
    common!(Array);

    /// The array's lock (Python's `get_lock()`); re-entrant.
    pub fn get_lock(&self) -> RLockRef<'_> {
        // SAFETY: the RLockState lies at offset 0 of the home (initialised by the creator;
        // all-zero is valid too), which lives as long as `self`.
        unsafe { RLockRef::from_ptr(self.elems.home.as_ptr().cast()) }
    }

    /// Whether the lock is flagged: a holder died and nobody has marked the array consistent.
    pub fn is_inconsistent(&self) -> bool {
        self.get_lock().is_inconsistent()
    }

    fn hold(&self) -> Held<'_> {
        let held = Held::Guard(self.get_lock().recover());
        assert!(
            !self.borrowed.load(Ordering::Relaxed),
            "Array element access while this thread holds an ArrayGuard of the same array"
        );
        held
    }

    #[inline]
    fn section<R>(&self, f: impl FnOnce() -> R) -> R {
        let held = self.hold();
        let r = f();
        drop(held);
        r
    }

    fn read_into(&self, start: usize, dst: &mut [T]) {
        let held = self.hold();
        // SAFETY: we hold the lock and no guard of ours is alive (checked in `hold`), so
        // nobody accessing through this API writes the range meanwhile.
        unsafe { self.elems.read_locked(start, dst) };
        drop(held);
    }

    fn write_from(&self, start: usize, src: &[T]) {
        let held = self.hold();
        // SAFETY: as in `read_into`.
        unsafe { self.elems.write_locked(start, src) };
        drop(held);
    }

    /// Locks the array and returns a guard that derefs to its elements.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] if a previous holder died holding the lock (or left it
    /// flagged): not held after it; take it with [`recover`](Self::recover).
    ///
    /// # Panics
    ///
    /// If this thread already holds an `ArrayGuard` of this handle (two would alias).
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError> {
        self.guard(self.get_lock().lock(), None)
    }

    /// Locks the array even if a previous holder died holding the lock: check
    /// `is_inconsistent`, repair, then `mark_consistent` on the guard.
    ///
    /// # Panics
    ///
    /// As [`lock`](Self::lock).
    pub fn recover(&self) -> ArrayGuard<'_, T> {
        match self.guard(Ok::<_, LockError>(self.get_lock().recover()), None) {
            Ok(g) => g,
            Err(e) => unreachable!("recover: {e}"),
        }
    }

    /// [`lock`](Self::lock) if no waiting is needed.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if another thread holds the lock, or this thread holds
    /// an `ArrayGuard` of this handle already; otherwise as `lock`.
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, TryLockError> {
        self.guard(self.get_lock().try_lock(), Some(TryLockError::WouldBlock))
    }

    /// [`lock`](Self::lock), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`]; otherwise as `lock`.
    ///
    /// # Panics
    ///
    /// As [`lock`](Self::lock).
    pub fn try_lock_for(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>, LockTimeoutError> {
        self.guard(self.get_lock().try_lock_for(timeout), None)
    }

    /// `if_borrowed`: the error when this handle's guard is alive already (`None`: panic).
    fn guard<'a, E>(
        &'a self,
        r: Result<RLockGuard<'a>, E>,
        if_borrowed: Option<E>,
    ) -> Result<ArrayGuard<'a, T>, E> {
        let guard = r?;
        if self.borrowed.swap(true, Ordering::Relaxed) {
            drop(guard);
            return match if_borrowed {
                Some(e) => Err(e),
                None => {
                    panic!("Array::lock while this thread holds an ArrayGuard of the same array")
                }
            };
        }
        Ok(ArrayGuard { array: self, guard })
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

/// An [`Array`] with its lock held: derefs to `&[T]` and `&mut [T]`. Releases the lock (one
/// level) on drop.
///
/// # Examples
///
/// ```
/// let a = shm_array::Array::<u8>::new(4);
/// let mut g = a.lock().unwrap();
/// g.copy_from_slice(b"abcd");
/// g[0] = b'A';
/// drop(g);
/// assert_eq!(a.to_vec(), b"Abcd");
/// ```
#[must_use = "the lock is released when the guard drops"]
pub struct ArrayGuard<'a, T: Element> {
    array: &'a Array<T>,
    guard: RLockGuard<'a>,
}

impl<T: Element> ArrayGuard<'_, T> {
    /// Clears the owner-died flag: the array is consistent again.
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent()
    }

    /// Whether the owner-died flag is set.
    pub fn is_inconsistent(&self) -> bool {
        self.guard.is_inconsistent()
    }
}

impl<T: Element> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: we hold the lock, and this guard is the only one of its handle (the
        // `borrowed` flag); every access through this API holds the lock, so nobody writes
        // the elements while the returned borrow of `self` lives.
        unsafe { self.array.elems.slice() }
    }
}

impl<T: Element> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the `&mut self` borrow makes the slice unique within this
        // process, and the lock excludes everyone else using this API.
        unsafe { self.array.elems.slice_mut() }
    }
}

impl<T: Element> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        // Still holding the lock: clear before the RLockGuard field releases it.
        self.array.borrowed.store(false, Ordering::Relaxed);
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
