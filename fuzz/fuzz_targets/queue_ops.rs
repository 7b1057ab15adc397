//! Sequences of push, pop, slice and len operations on the SPSC and MPMC rings, checked against
//! a `VecDeque` model (`shm_queue::model::check_ops` panics on any divergence).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shm_queue::model::check_ops(data);
});
