//! # shm-queue
//!
//! Lock-free queues in named shared-memory segments, for processes on one machine: Python's
//! `multiprocessing.Queue`, `JoinableQueue` and `Pipe`, done as ring buffers. A push is
//! complete when it returns (no feeder thread, nothing lost when the pusher exits); a blocked
//! pop sleeps in the kernel and wakes on a push, on close, on its timeout, or when every
//! producer has gone (dropped its handle or died); processes that die mid-operation do not
//! strand the others.
//!
//! ## Semantics every queue shares
//!
//! - `Disconnected` means that peers *had* attached and all of them left or died (or, for
//!   pops, only once the queue is drained). A consumer on a queue no producer has attached to
//!   yet simply waits, with its timeout.
//! - A role is taken over only from a holder that is [`Dead`](shm_core::Liveness::Dead);
//!   one whose liveness cannot be told (`Unknown`) keeps it.
//! - An index, stamp or length read from the segment that cannot be right *poisons* the queue:
//!   every later push and pop, in every process, fails at once with `Corrupt`; nothing is
//!   delivered from it any more (its items are lost; make a new queue).
//! - A timed call reads the clock only once it has to wait.
//! - Typed messages (serde, on by default through the `serde` feature) travel over the byte
//!   queues, `JoinableQueue` and `Pipe` (module `codec`).
//!
//! ## Items
//!
//! - [`ring`]: the one ring under every queue: one control block, an SPSC protocol (Lamport,
//!   cached indices, batches and chunks) and an MPMC protocol (per-slot stamps), over a fixed
//!   element or a byte message, with one rule for what is read from shared memory and one
//!   recovery protocol for processes that die mid-operation.
//! - [`typed`]: [`Queue<T, P>`](typed::Queue) and its one family of endpoints
//!   ([`typed::Producer`], [`typed::Consumer`]), for `T: shm_core::Element` (typecode elements
//!   or `record!` structs) and either protocol: [`SpscQueue<T>`] ([`spsc`]: batches, and
//!   [`write_chunk`](typed::Producer::write_chunk) / [`read_chunk`](typed::Consumer::read_chunk)
//!   in place) and [`MpmcQueue<T>`] ([`mpmc`]: the exact guarantee for producers killed
//!   mid-push).
//! - [`bytes`], [`pipe`], [`joinable`]: variable-length byte messages (with loans: a message
//!   written once, in place, and read in place), `Pipe` (two SPSC byte rings), and
//!   `JoinableQueue` (an MPMC byte ring plus a counter).
//! - [`error`]: one error enum per operation, crossbeam-channel style: [`TryPushError<T>`],
//!   [`PushError<T>`], [`PushTimeoutError<T>`] (each hands the item back), [`TryPopError`],
//!   [`PopError`], [`PopTimeoutError`]; [`RoleError`]. Builders
//!   follow the workspace's convention: `.mode(u32)`, `.open_timeout(..)`,
//!   `.wait_strategy(..)`, `.capacity(n)`; `create()` returns [`shm_core::CreateError`],
//!   `open()` and `open_or_create()` return [`shm_core::OpenError`], and an opener adopts
//!   everything the header records.
//! - [`role`]: producer/consumer role claims in a segment, with takeover from dead holders.
//!   Every blocking call waits through [`shm_core::EventCount::wait_until`], the workspace's
//!   one wait loop, and checks its peers' liveness once per sleep slice.
//!
//! Endpoints are role handles: [`SpscQueue::producer`] / [`SpscQueue::consumer`] claim the
//! role in the segment and release it on drop. Each handle has its own
//! [`WaitStrategy`](shm_core::WaitStrategy) (busy-poll, sleep, or the default adaptive:
//! spin briefly, then sleep on a futex); waking a peer costs no syscall when nobody sleeps.
//!
//! ## Example
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_queue::{PopError, SpscQueue};
//!
//! let name = SegmentName::unique();
//! // Process 1 creates the queue and pushes…
//! let q = SpscQueue::<f64>::builder(&name).capacity(64).create()?;
//! let mut tx = q.producer()?;
//! tx.push(1.5)?;
//! assert_eq!(tx.push_slice(&[2.5, 3.5]), 2);
//! // …process 2 opens it by name (the element type is checked) and pops.
//! let opened = SpscQueue::<f64>::builder(&name).open()?;
//! let mut rx = opened.consumer()?;
//! assert_eq!(rx.pop(), Ok(1.5));
//! assert_eq!(rx.len(), 2);
//! drop(tx); // the producer leaves: the rest is still delivered, then Disconnected
//! assert_eq!(rx.pop(), Ok(2.5));
//! assert_eq!(rx.pop(), Ok(3.5));
//! assert_eq!(rx.pop(), Err(PopError::Disconnected));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bytes;
#[cfg(feature = "serde")]
pub mod codec;
pub mod error;
mod inspect;
pub mod joinable;
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
pub mod model;
pub mod mpmc;
pub mod pipe;
pub mod ring;
pub mod role;
pub mod spsc;
pub mod typed;

pub use error::{
    PopError, PopTimeoutError, PushError, PushTimeoutError, RoleError, TryPopError, TryPushError,
};
pub use inspect::QueueSnapshot;
pub use mpmc::MpmcQueue;
pub use ring::{Flavor, Mpmc, Protocol, Spsc};
pub use spsc::SpscQueue;
pub use typed::{ChunkError, ReadChunk, WriteChunk};
