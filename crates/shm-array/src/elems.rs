//! The element storage shared by `Array` and `RawArray`: `len` elements of `T` at `data`
//! inside a home, read and written through word-sized atomics.
//!
//! # Atomicity
//!
//! An element is copied as `size_of::<T>() / W` atomic loads or stores of width
//! `W = min(align_of::<T>(), 8)` bytes, each aligned (the data starts 128-aligned, and the
//! stride `size_of::<T>()` is a multiple of `align_of::<T>()`). For every typecode element
//! that is one atomic per element, so elements never tear. A record wider than `W` is
//! copied word by word: a reader racing a writer may see some words old and some new (a torn
//! record), but never undefined behaviour, since `T: Pod` makes every byte pattern a value.

use shm_core::AtomicElement;
use shm_core::{Element, Home};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

/// Width in bytes of the atomics one element is copied with.
const fn chunk<T>() -> usize {
    let a = std::mem::align_of::<T>();
    if a >= 8 {
        8
    } else {
        a
    }
}

/// Loads one element through `chunk::<T>()`-wide atomics.
///
/// # Safety
///
/// `src` is valid for reads of `size_of::<T>()` bytes, aligned to `align_of::<T>()`, and is
/// only ever accessed atomically while this runs (or not concurrently at all).
#[inline(always)]
pub(crate) unsafe fn load_elem<T: Element>(src: *const T, order: Ordering) -> T {
    let mut out = T::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut out);
    let src = src.cast::<u8>();
    macro_rules! copy {
        ($atomic:ty, $w:expr) => {
            for (k, c) in dst.chunks_exact_mut($w).enumerate() {
                // SAFETY: chunk k lies inside the element (size is a multiple of the width)
                // and is aligned to the width (the element is aligned to at least it); the
                // caller guarantees only atomic concurrent access.
                let a = unsafe { &*src.add(k * $w).cast::<$atomic>() };
                c.copy_from_slice(&a.load(order).to_ne_bytes());
            }
        };
    }
    match chunk::<T>() {
        8 => copy!(AtomicU64, 8),
        4 => copy!(AtomicU32, 4),
        2 => copy!(AtomicU16, 2),
        _ => copy!(AtomicU8, 1),
    }
    out
}

/// Stores one element through `chunk::<T>()`-wide atomics.
///
/// # Safety
///
/// As [`load_elem`], for writes.
#[inline(always)]
pub(crate) unsafe fn store_elem<T: Element>(dst: *mut T, v: T, order: Ordering) {
    let src = bytemuck::bytes_of(&v);
    let dst = dst.cast::<u8>();
    macro_rules! copy {
        ($atomic:ty, $int:ty, $w:expr) => {
            for (k, c) in src.chunks_exact($w).enumerate() {
                let mut b = [0u8; $w];
                b.copy_from_slice(c);
                // SAFETY: as in `load_elem`.
                let a = unsafe { &*dst.add(k * $w).cast::<$atomic>() };
                a.store(<$int>::from_ne_bytes(b), order);
            }
        };
    }
    match chunk::<T>() {
        8 => copy!(AtomicU64, u64, 8),
        4 => copy!(AtomicU32, u32, 4),
        2 => copy!(AtomicU16, u16, 2),
        _ => copy!(AtomicU8, u8, 1),
    }
}

/// `len` elements of `T` at `data` in `home`.
///
/// Invariant: `data` points into the home's memory, aligned to `align_of::<T>()` (and to 8
/// if that is larger), with `len * size_of::<T>()` bytes in bounds; the home lives as long as
/// `self`. Every access from this crate is atomic, except an `Array`'s bulk copies (made with
/// its lock held and no caller code running) and the slices of the `unsafe`
/// `ArrayGuard::as_slice`/`as_mut_slice` (whose callers promise exclusivity in their thread;
/// the lock excludes the others).
pub(crate) struct Elems<T> {
    /// Shared only by the test-only second handles of the heap home; a segment home has one
    /// owner per handle.
    pub(crate) home: Arc<Home>,
    /// The start of the home (where an `Array`'s lock lies).
    base: NonNull<u8>,
    data: NonNull<T>,
    len: usize,
}

// SAFETY: accesses go through atomics (or under the lock); the home is Send + Sync and T is
// Element: Send + Sync.
unsafe impl<T: Element> Send for Elems<T> {}
// SAFETY: as above.
unsafe impl<T: Element> Sync for Elems<T> {}

impl<T: Element> Elems<T> {
    /// # Safety
    ///
    /// `home` holds at least `offset + len * size_of::<T>()` bytes, and `offset` is a multiple
    /// of `max(align_of::<T>(), 8)` and at most 128.
    pub(crate) unsafe fn new(home: Home, offset: usize, len: usize) -> Self {
        const { assert!(std::mem::align_of::<T>() <= 128) };
        debug_assert!(home.len() >= offset + len * std::mem::size_of::<T>());
        let base = home.as_ptr();
        // SAFETY: the caller guarantees `offset` is within the home.
        let p = unsafe { base.add(offset) };
        Elems {
            base,
            data: p.cast(),
            len,
            home: Arc::new(home),
        }
    }

    /// The start of the home.
    #[inline]
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The same elements, for a second handle (tests: the heap home cannot be opened twice).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn second_handle(&self) -> Self {
        Elems {
            home: Arc::clone(&self.home),
            base: self.base,
            data: self.data,
            len: self.len,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn ptr(&self, i: usize) -> *mut T {
        debug_assert!(i <= self.len);
        // SAFETY: i <= len, so the pointer is inside (or one past) the in-bounds elements.
        unsafe { self.data.as_ptr().add(i) }
    }

    #[inline]
    pub(crate) fn check(&self, i: usize) -> Result<(), crate::IndexError> {
        if i < self.len {
            Ok(())
        } else {
            Err(crate::IndexError {
                index: i,
                len: self.len,
            })
        }
    }

    pub(crate) fn check_range(&self, start: usize, n: usize) -> Result<(), crate::CopyError> {
        match start.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            end => Err(crate::CopyError::OutOfRange {
                start,
                end: end.unwrap_or(usize::MAX),
                len: self.len,
            }),
        }
    }

    /// Element `i`, atomically (Acquire).
    #[inline]
    pub(crate) fn load(&self, i: usize) -> T {
        assert!(i < self.len);
        // SAFETY: i < len: in bounds and aligned (struct invariant); shared access is atomic.
        unsafe { load_elem(self.ptr(i), Ordering::Acquire) }
    }

    /// Writes element `i`, atomically (Release).
    #[inline]
    pub(crate) fn store(&self, i: usize, v: T) {
        assert!(i < self.len);
        // SAFETY: as in `load`.
        unsafe { store_elem(self.ptr(i), v, Ordering::Release) }
    }

    /// Element-wise atomic copy of `start..start + dst.len()` into `dst` (range checked by
    /// the caller).
    pub(crate) fn read_atomic(&self, start: usize, dst: &mut [T]) {
        assert!(start <= self.len && dst.len() <= self.len - start);
        for (k, d) in dst.iter_mut().enumerate() {
            // SAFETY: start + k < len (asserted above): in bounds and aligned.
            *d = unsafe { load_elem(self.ptr(start + k), Ordering::Acquire) };
        }
    }

    /// Element-wise atomic copy of `src` into `start..start + src.len()`.
    pub(crate) fn write_atomic(&self, start: usize, src: &[T]) {
        assert!(start <= self.len && src.len() <= self.len - start);
        for (k, s) in src.iter().enumerate() {
            // SAFETY: start + k < len (asserted above): in bounds and aligned.
            unsafe { store_elem(self.ptr(start + k), *s, Ordering::Release) };
        }
    }

    /// `memcpy` of `start..start + dst.len()` into `dst`.
    ///
    /// # Safety
    ///
    /// Nobody writes the range meanwhile (the caller holds the array's lock).
    pub(crate) unsafe fn read_locked(&self, start: usize, dst: &mut [T]) {
        assert!(start <= self.len && dst.len() <= self.len - start);
        // SAFETY: the source range is in bounds (asserted), `dst` is a distinct local slice,
        // and the caller guarantees no concurrent writer.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr(start), dst.as_mut_ptr(), dst.len()) }
    }

    /// `memcpy` of `src` into `start..start + src.len()`.
    ///
    /// # Safety
    ///
    /// Nobody reads or writes the range meanwhile (the caller holds the array's lock).
    pub(crate) unsafe fn write_locked(&self, start: usize, src: &[T]) {
        assert!(start <= self.len && src.len() <= self.len - start);
        // SAFETY: as in `read_locked`.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr(start), src.len()) }
    }

    /// All elements as a slice.
    ///
    /// # Safety
    ///
    /// Nobody writes them while the slice lives (the caller holds the array's lock and no
    /// mutable slice exists).
    pub(crate) unsafe fn slice(&self) -> &[T] {
        // SAFETY: in bounds and aligned (invariant); T: Pod so any bytes are a valid T; the
        // caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }

    /// All elements as a mutable slice.
    ///
    /// # Safety
    ///
    /// Nobody else reads or writes them while the slice lives (the caller holds the array's
    /// lock and no other slice exists).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self) -> &mut [T] {
        // SAFETY: as in `slice`, and the caller guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

impl<T: AtomicElement> Elems<T> {
    /// Element `i` as its atomic.
    #[inline]
    pub(crate) fn atomic(&self, i: usize) -> &T::Atomic {
        assert!(i < self.len);
        // Concurrent accesses are atomic too, except an `Array`'s bulk copies and unsafe
        // slices, which hold its lock: the `Array` callers of this take the lock as well (so
        // they are excluded, or run in the same thread between the copies); a `RawArray` has
        // neither.
        // SAFETY: i < len: in bounds for `'_` (the home lives as long as `self`); aligned to
        // its size, the atomic's alignment (data 128-aligned, stride = size); see above.
        unsafe { T::atomic_at(self.ptr(i)) }
    }
}
