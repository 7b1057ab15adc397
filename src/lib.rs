#![doc = include_str!("../README.md")]
//!
//! ## Re-exports
//!
//! - [`core`] — `shm-core`: segments, typecodes, waiting, liveness.
//! - [`process`] — `shm-process`: start the current executable in a named role (Python's
//!   `Process`).
//! - [`lock`] — `shm-lock`.
//! - [`value`] — `shm-value`.
//! - [`array`](mod@array) — `shm-array`.
//! - [`queue`] — `shm-queue`.
//! - [`manager`] — `shm-manager`: `SharedDict`, `SharedList`, `Namespace`, `Manager`.

pub use shm_array as array;
pub use shm_core as core;
pub use shm_core::{ElementLayout, ProcessId, SegmentName, TypeCode};
pub use shm_lock as lock;
pub use shm_manager as manager;
pub use shm_process as process;
pub use shm_queue as queue;
pub use shm_value as value;
