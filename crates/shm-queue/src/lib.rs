//! # shm-queue (in progress)
//!
//! Lock-free shared-memory ring buffers.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bytes;
pub mod joinable;
pub mod mpmc;
pub mod pipe;
pub mod spsc;
