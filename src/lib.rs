//! # shm-ipc
//!
//! Cross-process shared-memory primitives: Python's `multiprocessing` family done properly in
//! Rust. This facade re-exports the workspace's crates.
//!
//! - [`core`] (`shm-core`): named segments with a checked, typecode-tagged header, futex waiting,
//!   process liveness, and the process helper.

pub use shm_core as core;
pub use shm_core::process;
pub use shm_core::{ElementLayout, ProcessId, SegmentName, TypeCode};
