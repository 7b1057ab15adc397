//! The element traits of the shared objects: which typecode elements are one hardware atomic
//! (what `shm-value`'s `Value` holds, and what `shm-array` gives `swap` and `compare_exchange`),
//! and which of them get integer arithmetic (`fetch_add` and friends).

#[cfg(not(windows))]
use crate::WChar;
use crate::{CBool, CChar, Element};
use std::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
};

mod sealed {
    /// Keeps [`AtomicElement`](super::AtomicElement) closed: its hidden methods and the size
    /// and alignment asserts of its implementations are what make a pointer cast to
    /// `Self::Atomic` sound, so only this crate implements it.
    pub trait Sealed {}
}

/// A typecode element that fits one hardware atomic: every load and store of it is a single
/// atomic instruction, so no reader ever sees a torn value.
///
/// Implemented for every typecode element: `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64`
/// and [`CChar`], [`WChar`], [`CBool`]. Sealed: it cannot be implemented outside this crate.
///
/// Comparisons in `compare_exchange` are *bitwise* (as for any atomic): `-0.0` and `0.0`
/// differ, a NaN equals itself if its bits do, and `CBool(2)` is not `CBool(1)`.
///
/// The methods are implementation details (hidden from the docs); use the methods of
/// `shm-value`'s `Value`/`RawValue` and `shm-array`'s `Array`/`RawArray`.
pub trait AtomicElement: Element + sealed::Sealed {
    /// The `std` atomic with the same size as `Self` and at least its alignment, through
    /// which every access goes.
    #[doc(hidden)]
    type Atomic: Send + Sync + 'static;
    #[doc(hidden)]
    fn atomic_load(a: &Self::Atomic, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_store(a: &Self::Atomic, v: Self, order: Ordering);
    #[doc(hidden)]
    fn atomic_swap(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_compare_exchange(
        a: &Self::Atomic,
        current: Self,
        new: Self,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self, Self>;
    #[doc(hidden)]
    fn atomic_compare_exchange_weak(
        a: &Self::Atomic,
        current: Self,
        new: Self,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Self, Self>;

    /// The atomic at `p`.
    ///
    /// # Safety
    ///
    /// `p` is valid for reads and writes of `size_of::<Self>()` bytes, aligned to
    /// `size_of::<Self>()` (the atomic's alignment), for `'a`, and every concurrent access to
    /// those bytes is atomic.
    #[doc(hidden)]
    #[inline(always)]
    unsafe fn atomic_at<'a>(p: *mut Self) -> &'a Self::Atomic {
        debug_assert!((p as usize).is_multiple_of(std::mem::align_of::<Self::Atomic>()));
        // SAFETY: `Self::Atomic` has the size of `Self` (asserted per implementation); the
        // caller guarantees validity, alignment and atomic-only concurrent access; every bit
        // pattern is a valid integer atomic.
        unsafe { &*p.cast::<Self::Atomic>() }
    }

    /// Repeats a compare-and-swap of `f(current)` until it succeeds or `f` returns `None`
    /// (the `fetch_update` of `std`'s atomics, `SeqCst`).
    #[doc(hidden)]
    #[inline]
    fn atomic_fetch_update(
        a: &Self::Atomic,
        mut f: impl FnMut(Self) -> Option<Self>,
    ) -> Result<Self, Self> {
        let mut prev = Self::atomic_load(a, Ordering::SeqCst);
        while let Some(next) = f(prev) {
            match Self::atomic_compare_exchange_weak(
                a,
                prev,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(x) => return Ok(x),
                Err(now) => prev = now,
            }
        }
        Err(prev)
    }
}

/// An integer typecode element (`b B h H i I l L q Q`): the fetch-and-modify operations.
///
/// `fetch_add`/`fetch_sub` wrap on overflow, as `std`'s atomics do; `fetch_max`/`fetch_min`
/// compare as the type's own signedness.
///
/// Floats do not implement it, so `fetch_add` on a `Value<f64>` does not compile (use
/// `fetch_update`).
///
/// ```compile_fail
/// fn needs_int<T: shm_core::IntElement>() {}
/// needs_int::<f64>();
/// ```
pub trait IntElement: AtomicElement {
    #[doc(hidden)]
    fn atomic_fetch_add(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_sub(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_and(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_or(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_xor(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_max(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
    #[doc(hidden)]
    fn atomic_fetch_min(a: &Self::Atomic, v: Self, order: Ordering) -> Self;
}

macro_rules! atomic_element {
    ($($ty:ty => $atomic:ident, |$v:ident| $to:expr, |$b:ident| $from:expr;)+) => {$(
        impl sealed::Sealed for $ty {}

        impl AtomicElement for $ty {
            type Atomic = $atomic;
            #[inline]
            fn atomic_load(a: &$atomic, order: Ordering) -> Self {
                let $b = a.load(order);
                $from
            }
            #[inline]
            fn atomic_store(a: &$atomic, $v: Self, order: Ordering) {
                a.store($to, order)
            }
            #[inline]
            fn atomic_swap(a: &$atomic, $v: Self, order: Ordering) -> Self {
                let $b = a.swap($to, order);
                $from
            }
            #[inline]
            fn atomic_compare_exchange(
                a: &$atomic,
                current: Self,
                new: Self,
                success: Ordering,
                failure: Ordering,
            ) -> Result<Self, Self> {
                let to = |$v: Self| $to;
                let from = |$b| $from;
                a.compare_exchange(to(current), to(new), success, failure)
                    .map(from)
                    .map_err(from)
            }
            #[inline]
            fn atomic_compare_exchange_weak(
                a: &$atomic,
                current: Self,
                new: Self,
                success: Ordering,
                failure: Ordering,
            ) -> Result<Self, Self> {
                let to = |$v: Self| $to;
                let from = |$b| $from;
                a.compare_exchange_weak(to(current), to(new), success, failure)
                    .map(from)
                    .map_err(from)
            }
        }

        // `atomic_at` (and every pointer cast to `Self::Atomic`) relies on these.
        const _: () = {
            assert!(std::mem::size_of::<$atomic>() == std::mem::size_of::<$ty>());
            assert!(std::mem::align_of::<$atomic>() >= std::mem::align_of::<$ty>());
            assert!(std::mem::align_of::<$atomic>() == std::mem::size_of::<$ty>());
        };
    )+};
}

atomic_element! {
    i8 => AtomicI8, |v| v, |b| b;
    u8 => AtomicU8, |v| v, |b| b;
    i16 => AtomicI16, |v| v, |b| b;
    u16 => AtomicU16, |v| v, |b| b;
    i32 => AtomicI32, |v| v, |b| b;
    u32 => AtomicU32, |v| v, |b| b;
    i64 => AtomicI64, |v| v, |b| b;
    u64 => AtomicU64, |v| v, |b| b;
    f32 => AtomicU32, |v| v.to_bits(), |b| f32::from_bits(b);
    f64 => AtomicU64, |v| v.to_bits(), |b| f64::from_bits(b);
    CChar => AtomicU8, |v| v.0, |b| CChar(b);
    CBool => AtomicU8, |v| v.0, |b| CBool(b);
}

// `'u'` is an element only where `wchar_t` is 4 bytes (not on Windows).
#[cfg(not(windows))]
atomic_element! {
    WChar => AtomicU32, |v| v.0, |b| WChar(b);
}

macro_rules! int_element {
    ($($ty:ty),+) => {$(
        impl IntElement for $ty {
            #[inline]
            fn atomic_fetch_add(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_add(v, order)
            }
            #[inline]
            fn atomic_fetch_sub(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_sub(v, order)
            }
            #[inline]
            fn atomic_fetch_and(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_and(v, order)
            }
            #[inline]
            fn atomic_fetch_or(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_or(v, order)
            }
            #[inline]
            fn atomic_fetch_xor(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_xor(v, order)
            }
            #[inline]
            fn atomic_fetch_max(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_max(v, order)
            }
            #[inline]
            fn atomic_fetch_min(a: &Self::Atomic, v: Self, order: Ordering) -> Self {
                a.fetch_min(v, order)
            }
        }
    )+};
}

int_element!(i8, u8, i16, u16, i32, u32, i64, u64);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: AtomicElement + PartialEq + std::fmt::Debug>(a: T, b: T) {
        // An 8-aligned home for any element, as a segment body would be.
        let mut home = 0u64;
        let p = (&mut home as *mut u64).cast::<T>();
        // SAFETY: `home` is 8 bytes, 8-aligned (>= every element's size), lives to the end of
        // this function, and is only accessed through the atomic below meanwhile.
        let at = unsafe { T::atomic_at(p) };
        T::atomic_store(at, a, Ordering::SeqCst);
        assert_eq!(T::atomic_swap(at, b, Ordering::SeqCst), a);
        assert_eq!(
            T::atomic_compare_exchange(at, a, b, Ordering::SeqCst, Ordering::SeqCst),
            Err(b)
        );
        assert_eq!(T::atomic_fetch_update(at, |_| Some(a)), Ok(b));
        assert_eq!(T::atomic_fetch_update(at, |_| None), Err(a));
        assert_eq!(T::atomic_load(at, Ordering::SeqCst), a);
    }

    #[test]
    fn every_typecode_element_round_trips_through_its_atomic() {
        round_trip(-5i8, 7);
        round_trip(200u8, 1);
        round_trip(-300i16, 300);
        round_trip(65535u16, 2);
        round_trip(-1i32, i32::MAX);
        round_trip(7u32, u32::MAX);
        round_trip(i64::MIN, 3);
        round_trip(u64::MAX, 0);
        round_trip(1.5f32, -2.25);
        round_trip(3.333333333333333f64, -0.5);
        round_trip(CChar(b'a'), CChar(0));
        round_trip(CBool::TRUE, CBool::FALSE);
        #[cfg(not(windows))]
        round_trip(WChar::from('é'), WChar(0));
    }

    #[test]
    fn integer_operations_wrap_and_respect_signedness() {
        let a = AtomicU8::new(255);
        assert_eq!(u8::atomic_fetch_add(&a, 1, Ordering::SeqCst), 255);
        assert_eq!(u8::atomic_fetch_max(&a, 200, Ordering::SeqCst), 0);
        let s = AtomicI8::new(1);
        assert_eq!(i8::atomic_fetch_max(&s, -100, Ordering::SeqCst), 1);
        assert_eq!(i8::atomic_fetch_min(&s, -100, Ordering::SeqCst), 1);
        assert_eq!(s.load(Ordering::SeqCst), -100);
    }
}
