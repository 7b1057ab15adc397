//! # shm-array
//!
//! A shared array in a named segment: Python's `multiprocessing.Array` and `RawArray`,
//! named, typed (the typecode or record format is written into the segment and checked on
//! open, as is the length if the opener states one), and with a lock that survives its
//! holder's death.
//!
//! ## Items
//!
//! - [`Array<T>`]: elements plus an embedded robust `RLock`; per-element operations take the
//!   lock (as Python's `arr[i]`); [`Array::lock`] gives an [`ArrayGuard`] that derefs to
//!   `&[T]`/`&mut [T]`; bulk copies are consistent snapshots at `memcpy` speed.
//! - [`RawArray<T>`]: no lock; per-element atomic access; bulk copies are element-wise
//!   atomic (never undefined behaviour, not a snapshot).
//! - Elements: every typecode element (`i8`…`u64`, `f32`, `f64`, `CChar`, `WChar`, `CBool`)
//!   and records declared with [`shm_core::record!`]. Integer elements get `fetch_add` and
//!   friends; atomic elements `swap`, `compare_exchange`, `fetch_update`.
//! - `'c'` arrays (`Array<CChar>`, `RawArray<CChar>`): [`value`](Array::value) /
//!   [`set_value`](Array::set_value) / [`raw`](Array::raw) / [`set_raw`](Array::set_raw)
//!   with Python's semantics.
//! - [`Builder`], and the errors [`IndexError`], [`CopyError`], [`StringError`].
//!
//! ## Example
//!
//! ```
//! use shm_core::{CChar, SegmentName};
//! use shm_array::{Array, RawArray};
//!
//! shm_core::record! {
//!     /// A point with a weight.
//!     #[derive(Debug, Clone, Copy, PartialEq)]
//!     pub struct Point { pub x: i32, pub y: i32, pub w: f64 }
//! }
//!
//! let name = SegmentName::unique();
//! let points = Array::<Point>::create(&name, 3).unwrap();
//! points.set(1, Point { x: 1, y: 2, w: 0.5 }).unwrap();
//! let opened = Array::<Point>::builder(&name).len(3).open().unwrap(); // "iid" checked
//! assert_eq!(opened.get(1).unwrap().w, 0.5);
//!
//! let text = RawArray::<CChar>::new(8);
//! text.set_value(b"hello").unwrap();
//! text.set_value(b"hi").unwrap();
//! assert_eq!(text.value(), b"hi");
//! assert_eq!(text.raw(), b"hi\0lo\0\0\0");
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod array;
mod elems;
mod error;

#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub mod __fuzz {
    //! For the fuzz crate only; not part of the API.
    pub use crate::fuzz::array_ops;
}
#[cfg(any(test, feature = "test-hooks"))]
mod fuzz;

pub use array::{Array, ArrayGuard, Builder, RawArray, ARRAY_DATA_OFFSET};
pub use error::{CopyError, IndexError, StringError};
pub use shm_value::{AtomicElement, IntElement};

#[cfg(test)]
mod tests;
