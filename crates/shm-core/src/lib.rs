//! # shm-core
//!
//! The foundation of the shm-ipc workspace: named shared-memory segments with a checked,
//! typecode-tagged header, futex-based waiting that works across processes, process identity
//! and liveness. (The process helper, Python's `Process`, is the `shm-process` crate.)
//!
//! Every other crate of the workspace (`shm-lock`, `shm-value`, `shm-array`, `shm-queue`)
//! stands on this one, and only this crate talks to the operating system.
//!
//! ## Items
//!
//! - [`typecode`]: the closed [`TypeCode`] enum of Python's typecodes, the [`Element`] trait that
//!   maps Rust types to them, and [`record!`] for `#[repr(C)]` record layouts (the ctypes
//!   `Structure` analogue) described by a `struct`-module format string.
//! - [`segment`]: [`Segment`], a named mapping with a validated header; create, open,
//!   open-or-create, unlink, persist. Leftovers of creators that died before publishing are
//!   reclaimed; a FIFO at a name is an error, never a hang.
//! - [`inventory`]: [`list_segments`] and [`inspect`] describe every name in the namespace
//!   (state, kind, creator and whether it lives, which processes use it, age);
//!   [`inventory::remove`] refuses while a segment is in use, [`inventory::remove_forced`] does
//!   not. The `shm-ipc` command-line tool is built on these.
//! - [`sync`]: shared futex wait/wake with `CLOCK_MONOTONIC` deadlines, an [`EventCount`], and
//!   the spin-then-sleep [`WaitStrategy`].
//! - [`ProcessId`]: a (pid, start time) identity that survives pid reuse.
//! - [`liveness`]: [`Liveness`] (alive, dead or unknown), the injectable [`LivenessProbe`] with
//!   the OS's answer [`OsProbe`], and [`ThreadWord`], the identity of a lock-owning thread.
//! - [`builder`]: [`Knobs`] and [`knob_methods!`], the builder core: the `mode`,
//!   `open_timeout` and `wait_strategy` knobs every object kind's builder shares.
//! - [`home`]: [`Home`], where a control block lives: a segment or the heap (for loom and miri).
//! - [`sys`]: thin wrappers over the process-management calls (signals, pidfd, parent death
//!   signal) for the `shm-process` crate.
//!
//! ## Example
//!
//! ```
//! use shm_core::{Segment, SegmentName, ObjectKind, ElementLayout, TypeCode};
//!
//! let name = SegmentName::unique();
//! // Process 1 creates a segment holding 16 `'i'` elements…
//! let created = Segment::builder(&name, ObjectKind::RawArray)
//!     .layout(ElementLayout::of_typecode(TypeCode::Int))
//!     .count(16)
//!     .body_len(16 * 4)
//!     .create(|_body, _len| {})
//!     .unwrap();
//! // …and process 2 opens it by name; kind and typecode are checked.
//! let opened = Segment::builder(&name, ObjectKind::RawArray)
//!     .layout(ElementLayout::of_typecode(TypeCode::Int))
//!     .open()
//!     .unwrap();
//! assert_eq!(opened.header().count(), 16);
//! drop(opened);
//! drop(created); // the creator's handle unlinks the name
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod atomic_element;
pub use atomic_element::{AtomicElement, IntElement};
pub mod builder;
pub mod error;
pub mod header;
pub mod home;
mod identity;
pub mod inventory;
pub mod liveness;
pub mod name;
#[cfg(feature = "serde")]
mod name_serde;
mod os;
pub mod segment;
pub mod sync;
#[cfg(unix)]
pub mod sys;
pub mod typecode;

pub use builder::Knobs;
pub use bytemuck;
pub use error::{CreateError, OpenError};
pub use header::{Header, ObjectKind};
pub use home::{HeapBlock, Home};
pub use identity::ProcessId;
pub use inventory::{
    inspect, list_segments, InspectError, RemoveError, SegmentInfo, SegmentState, Users,
};
pub use liveness::{Liveness, LivenessProbe, OsProbe, ThreadWord};
pub use name::{NameError, SegmentName};
pub use segment::{Segment, SegmentBuilder};
pub use sync::{Deadline, EventCount, WaitOutcome, WaitStrategy};
pub use typecode::{
    CBool, CChar, Element, ElementLayout, LayoutError, Pad, TypeCode, TypeCodeError, WChar,
};
