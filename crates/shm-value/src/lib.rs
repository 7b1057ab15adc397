//! # shm-value
//!
//! One shared element in a named segment: Python's `multiprocessing.Value` and `RawValue`,
//! named (any process can open it), typed (the typecode is written into the segment and
//! checked on open), atomic (every load and store is one hardware atomic), and with a lock
//! that survives its holder's death.
//!
//! ## Items
//!
//! - [`Value<T>`]: the element plus an embedded robust re-entrant lock (Python's
//!   `lock=True`): atomic fast path, [`Value::update`] under the lock, [`Value::lock`] /
//!   [`Value::get_lock`] for longer critical sections.
//! - [`RawValue<T>`]: the element alone, atomics only.
//! - [`AtomicElement`]: the element types (every typecode element: `i8`…`u64`, `f32`, `f64`,
//!   `CChar`, `WChar`, `CBool`); [`IntElement`]: the integer ones, which get `fetch_add` and
//!   friends. Both live in `shm-core` and are re-exported here.
//! - [`Builder`]: `Value::<T>::builder(&name)` with `.value(v)`, `.mode(m)`,
//!   `.open_timeout(d)`, `.wait_strategy(s)`, then `.create()` ([`CreateError`]), `.open()`
//!   or `.open_or_create()` ([`OpenError`]). The opener states only the type: the kind and
//!   typecode are read from the header and checked.
//! - [`ValueGuard`]; errors per operation: [`UpdateError`] for `update`,
//!   [`UpdateTimeoutError`] for `try_update_for` (both `'static`, so `?` works in a function
//!   returning `Box<dyn Error>`).
//!
//! ## No references into shared memory
//!
//! No method hands out a `&T` or `&mut T` to the element: every read and write, the guard's
//! included, is a copy through the element's atomic. Any number of handles in any threads and
//! processes (two handles to one segment in one thread included) may use a value at once
//! without aliasing a reference. The lock adds mutual exclusion among its users, nothing
//! more is needed for soundness.
//!
//! ## Owner death
//!
//! If a process dies holding a value's lock, the next [`Value::lock`] returns
//! [`OwnerDiedError`](shm_lock::OwnerDiedError) (the lock is not held after it), and
//! [`Value::update`] refuses to run its closure ([`UpdateError::OwnerDied`]), until somebody
//! takes the lock with [`Value::recover`], repairs the value and calls
//! [`ValueGuard::mark_consistent`]:
//!
//! ```
//! use shm_value::{UpdateError, Value};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let v = Value::<i64>::new(0);
//! match v.update(|x| x + 1) {
//!     Ok(_) => {}
//!     Err(UpdateError::OwnerDied) => {
//!         // A holder died mid-update: repair the value, then say so.
//!         let guard = v.recover();
//!         guard.set(0);
//!         guard.mark_consistent();
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Example
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_value::{RawValue, Value};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = SegmentName::unique();
//! let v = Value::<f64>::create(&name, 0.0)?;
//! let same = Value::<f64>::open(&name)?;
//! same.store(3.333333333333333);
//! assert_eq!(v.load(), 3.333333333333333);
//! v.update(|x| -x)?;
//! assert_eq!(same.load(), -3.333333333333333);
//!
//! // The kind is part of the type: a Value is not a RawValue.
//! assert!(RawValue::<f64>::open(&name).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! [`CreateError`]: shm_core::CreateError
//! [`OpenError`]: shm_core::OpenError
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod error;
mod value;

pub use error::{UpdateError, UpdateTimeoutError};
pub use shm_core::{AtomicElement, IntElement};
pub use value::{
    Builder, RawValue, Value, ValueGuard, RAW_VALUE_BODY_LEN, VALUE_BODY_LEN, VALUE_DATA_OFFSET,
};

#[cfg(test)]
mod tests;
