//! Sequences of push, pop, slice and len operations on the SPSC and MPMC rings, checked against
//! a `VecDeque` model (`shm_queue::model::check_ops` panics on any divergence), with forged
//! indices and stamps between operations: after a forgery every operation must still end, and
//! a ring that reported `Corrupt` must stay poisoned.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shm_queue::model::check_ops(data);
});
