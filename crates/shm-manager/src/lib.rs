//! # shm-manager
//!
//! Python's `multiprocessing.Manager()` objects — `dict()`, `list()`, `Namespace()` and the
//! manager that hands them out by key — without a server process: each object lives in a
//! named shared-memory segment, and every process opens it directly. A Python manager dict
//! costs a socket round trip to the manager process per call (about 60 µs here); these cost
//! a lock, a hash probe and a copy.
//!
//! ## Items
//!
//! - [`SharedDict<K, V>`]: serde keys and values; `get`, `insert`, `remove`,
//!   `contains_key`, `len`, `clear`, `update` (read-modify-write under the lock), snapshots.
//! - [`SharedList<T>`]: `push`, `extend`, `pop`, `pop_at`, `insert`, `get`, `set`, `len`, `reverse`,
//!   `sort`, `to_vec`.
//! - [`Namespace`]: named fields of any serde type, each checked against the type it was set
//!   with.
//! - [`Manager`]: one name for many objects; `mgr.dict("data")`, `mgr.list(..)`,
//!   `mgr.value(..)`, `mgr.array(..)`, `mgr.queue(..)`, `mgr.lock(..)`, … create or open by
//!   key, and the creating manager removes them all when dropped.
//! - [`Builder`]: `create`, `open`, `open_or_create` with the workspace's knobs (`mode`,
//!   `open_timeout`, `wait_strategy`) plus `capacity`, `arena_bytes` and a per-operation
//!   `lock_timeout`.
//! - Errors per operation: [`ReadError`], [`WriteError`] (with [`WriteError::Full`]),
//!   [`IndexError`], [`FieldError`], [`ManagerError`].
//!
//! ## Guarantees
//!
//! - **Fixed capacity, clear failure.** Entries live in an arena sized at creation. A write
//!   that does not fit, even after compacting the space freed by removals and overwrites,
//!   fails with [`WriteError::Full`] and writes nothing. A dict built with
//!   [`growable(true)`](Builder::growable) instead moves into a successor segment twice as
//!   large (published with one atomic store; every handle follows on its next operation; old
//!   generations stay mapped until the creator drops, at most the newest one's size in all).
//! - **Crash consistency.** A process killed at any instruction of any operation leaves the
//!   object as it was before or after that operation. New data is written out of place and
//!   published by one atomic store (a journal commit word or a root word); the robust lock
//!   reports the dead holder, and the next locker finishes a committed change. The protocol
//!   and its state table are in the [`store`] module.
//! - **Types checked on open.** The header records a fingerprint of the key and value
//!   types (type names, sizes, alignments, and a hash of the serde schema their
//!   `Deserialize` asks for: struct, field, enum and variant names, primitive kinds); opening
//!   with other types is
//!   [`OpenError::Mismatch`](shm_core::OpenError::Mismatch).
//! - **Untrusted bytes.** Another process can scribble anything over a segment: every word
//!   and length is checked before use, so forged bytes give [`Corrupt`] errors, never a
//!   panic, undefined behaviour or a hang.
//! - **Copies, never references.** Like Python's proxies, every read returns a copy; no
//!   reference into shared memory escapes.
//!
//! ## Example
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_manager::Manager;
//!
//! // Process 1
//! let mgr = Manager::create(&SegmentName::unique())?;
//! let d = mgr.dict::<String, i64>("data")?;
//! d.insert("num", &10)?;
//!
//! // Process 2, given `mgr.name()`:
//! let child = Manager::open(mgr.name())?;
//! let d2 = child.dict::<String, i64>("data")?;
//! d2.update("num", |n| n.map(|n| n - 1))?;
//!
//! assert_eq!(d.get("num")?, Some(9));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod builder;
mod dict;
mod error;
mod guard;
mod list;
mod manager;
mod namespace;
mod schema;
mod shared;
pub mod store;

pub use builder::{Builder, DEFAULT_BYTES_PER_ENTRY, DEFAULT_CAPACITY};
pub use dict::SharedDict;
pub use error::{Corrupt, EncodeError, Exhausted, IndexError, ReadError, WriteError};
pub use list::SharedList;
pub use manager::{Manager, ManagerError, DEFAULT_MANAGER_CAPACITY};
pub use namespace::{FieldError, Namespace};

/// Crash points for tests (feature `test-hooks`): make this process abort at a chosen step of
/// the commit protocol, as if killed there.
#[cfg(feature = "test-hooks")]
pub mod hooks {
    pub use crate::store::hooks::{crash_at, Point};
}

/// The model behind the `dict_ops` fuzz target (feature `test-hooks`; not part of the API).
#[cfg(any(test, feature = "test-hooks"))]
pub mod fuzz;

#[cfg(test)]
mod tests;
