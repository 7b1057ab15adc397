//! Sequences of operations on every ring kind (typed SPSC and MPMC rings, byte queues of both
//! flavors: pushes, pops, batches, chunks, pops into short buffers, loans committed and
//! dropped, reads in place, close), checked against a `VecDeque` model by
//! `shm_queue::model::check_ops`, with forged indices, stamps, lengths and state words between
//! operations: after a forgery every operation must still end (values or errors, within a step
//! bound), and a ring that reported `Corrupt` must stay poisoned. Seeds: `make_seeds.py`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shm_queue::model::check_ops(data);
});
