//! # shm-value
//!
//! One shared element in a named segment: Python's `multiprocessing.Value` and `RawValue`,
//! named (any process can open it), typed (the typecode is written into the segment and
//! checked on open), atomic (every load and store is one hardware atomic), and with a lock
//! that survives its holder's death.
//!
//! ## Items
//!
//! - [`Value<T>`]: the element plus an embedded robust `RLock` (Python's `lock=True`):
//!   atomic fast path, [`Value::update`] under the lock, [`Value::lock`] /
//!   [`Value::get_lock`] for longer critical sections.
//! - [`RawValue<T>`]: the element alone, atomics only.
//! - [`AtomicElement`]: the element types (every typecode element: `i8`…`u64`, `f32`, `f64`,
//!   `CChar`, `WChar`, `CBool`); [`IntElement`]: the integer ones, which get `fetch_add` and
//!   friends.
//! - [`Builder`] (`create` / `open` / `open_or_create`), [`ValueGuard`], [`UpdateError`].
//!
//! ## Example
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_value::{RawValue, Value};
//!
//! let name = SegmentName::unique();
//! let v = Value::<f64>::create(&name, 0.0).unwrap();
//! let same = Value::<f64>::open(&name).unwrap();
//! same.store(3.333333333333333);
//! assert_eq!(v.load(), 3.333333333333333);
//! v.update(|x| -x).unwrap();
//! assert_eq!(same.load(), -3.333333333333333);
//!
//! // The kind is part of the type: a Value is not a RawValue.
//! assert!(RawValue::<f64>::open(&name).is_err());
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod error;
mod value;

pub use error::UpdateError;
pub use shm_core::{AtomicElement, IntElement};
pub use value::{
    Builder, RawValue, Value, ValueGuard, RAW_VALUE_BODY_LEN, VALUE_BODY_LEN, VALUE_DATA_OFFSET,
};

#[cfg(test)]
mod tests;
