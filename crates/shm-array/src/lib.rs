//! # shm-array
//!
//! A shared array in a named segment: Python's `multiprocessing.Array` and `RawArray`,
//! named, typed (the typecode or record format is written into the segment and checked on
//! open, as is the length if the opener states one), and with a lock that survives its
//! holder's death.
//!
//! ## Items
//!
//! - [`Array<T>`]: elements plus an embedded robust re-entrant lock; per-element operations
//!   take the lock (as Python's `arr[i]`); bulk copies are consistent snapshots at `memcpy`
//!   speed; [`Array::lock`] gives an [`ArrayGuard`] for longer critical sections.
//! - [`RawArray<T>`]: no lock; per-element atomic access; bulk copies are element-wise
//!   atomic (never undefined behaviour, not a snapshot).
//! - Elements: every typecode element (`i8`…`u64`, `f32`, `f64`, `CChar`, `WChar`, `CBool`)
//!   and records declared with [`shm_core::record!`]. Integer elements get `fetch_add` and
//!   friends; atomic elements `swap`, `compare_exchange`, `fetch_update`.
//! - `'c'` arrays (`Array<CChar>`, `RawArray<CChar>`): [`value`](Array::value) /
//!   [`set_value`](Array::set_value) / [`raw`](Array::raw) / [`set_raw`](Array::set_raw)
//!   with Python's semantics (copies in and out).
//! - [`Builder`]: `Array::<T>::builder(&name)` with `.len(n)` or `.values(&[..])`,
//!   `.mode(m)`, `.open_timeout(d)`, `.wait_strategy(s)`, then `.create()`
//!   ([`CreateError`]), `.open()` or `.open_or_create()` ([`OpenError`]). The opener states
//!   only the element type: layout and length are read from the header and checked (a
//!   `len` given to `open` is checked against it).
//! - Errors per operation: [`IndexError`] (element access), [`CopyError`] (bulk copies),
//!   [`StringError`] (the `'c'` setters); all `'static`, so `?` works in a function returning
//!   `Box<dyn Error>`.
//!
//! ## No slices into shared memory
//!
//! No safe method of this crate hands out `&T`, `&[T]` or `&mut [T]` over the elements.
//! Other processes and threads write them at any time (a `RawArray`), and an `Array`'s lock
//! is re-entrant, so while one handle's guard lives the same thread can still write through a
//! second handle to the same segment: any slice held across that would alias. So whole-array
//! access goes through copies (`to_vec`, `copy_to_slice`, `copy_from_slice`, `read_at`,
//! `write_at`, [`ArrayGuard::update`] on a local copy), and in-place access through raw
//! pointers or the `unsafe` [`ArrayGuard::as_mut_slice`], whose contract is written on it.
//! Every element read or write is atomic; an `Array`'s bulk copies are plain `memcpy`s made
//! with its lock held and no user code running.
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
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = SegmentName::unique();
//! let points = Array::<Point>::create(&name, 3)?;
//! points.set(1, Point { x: 1, y: 2, w: 0.5 })?;
//! let opened = Array::<Point>::builder(&name).len(3).open()?; // "iid" checked
//! assert_eq!(opened.get(1)?.w, 0.5);
//!
//! let text = RawArray::<CChar>::new(8);
//! text.set_value(b"hello")?;
//! text.set_value(b"hi")?;
//! assert_eq!(text.value(), b"hi");
//! assert_eq!(text.raw(), b"hi\0lo\0\0\0");
//! # Ok(())
//! # }
//! ```
//!
//! [`CreateError`]: shm_core::CreateError
//! [`OpenError`]: shm_core::OpenError
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
pub use shm_core::{AtomicElement, IntElement};

#[cfg(test)]
mod tests;
