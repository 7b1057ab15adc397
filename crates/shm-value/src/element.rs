//! The element traits: which types a `Value` holds, and which get integer arithmetic.

use shm_core::{CBool, CChar, Element, WChar};
use std::sync::atomic::{
    AtomicI16, AtomicI32, AtomicI64, AtomicI8, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
};

mod sealed {
    /// Keeps [`AtomicElement`](super::AtomicElement) closed: its hidden methods are what makes
    /// a pointer cast to `Self::Atomic` sound, so only this crate implements it.
    pub trait Sealed {}
}

/// A typecode element that fits one hardware atomic: every load and store of it is a single
/// atomic instruction, so no reader ever sees a torn value.
///
/// Implemented for every typecode element: `i8 u8 i16 u16 i32 u32 i64 u64 f32 f64`
/// and [`CChar`], [`WChar`], [`CBool`]. Sealed: it cannot be implemented outside this crate.
///
/// Comparisons in [`compare_exchange`](crate::Value::compare_exchange) are *bitwise* (as for
/// any atomic): `-0.0` and `0.0` differ, a NaN equals itself if its bits do, and `CBool(2)`
/// is not `CBool(1)`.
///
/// The methods are implementation details (hidden from the docs); use the methods of
/// [`Value`](crate::Value), [`RawValue`](crate::RawValue) and the array types.
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
}

/// An integer typecode element (`b B h H i I l L q Q`): the fetch-and-modify operations.
///
/// `fetch_add`/`fetch_sub` wrap on overflow, as `std`'s atomics do; `fetch_max`/`fetch_min`
/// compare as the type's own signedness.
///
/// Floats do not implement it, so `fetch_add` on a `Value<f64>` does not compile (use
/// [`Value::fetch_update`](crate::Value::fetch_update)):
///
/// ```compile_fail
/// let v = shm_value::RawValue::<f64>::new(1.0);
/// v.fetch_add(1.0);
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

        // The pointer casts in this crate rely on these.
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

/// Repeats a compare-and-swap of `f(current)` until it succeeds or `f` returns `None`
/// (the `fetch_update` of `std`'s atomics, for any [`AtomicElement`]).
#[doc(hidden)]
#[inline]
pub fn fetch_update<T: AtomicElement>(
    a: &T::Atomic,
    mut f: impl FnMut(T) -> Option<T>,
) -> Result<T, T> {
    let mut prev = T::atomic_load(a, Ordering::SeqCst);
    while let Some(next) = f(prev) {
        match T::atomic_compare_exchange_weak(a, prev, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(x) => return Ok(x),
            Err(now) => prev = now,
        }
    }
    Err(prev)
}
