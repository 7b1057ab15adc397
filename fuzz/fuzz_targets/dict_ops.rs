//! Sequences of `SharedDict<u16, Vec<u8>>` operations checked against a `HashMap` model,
//! including when a write must be `Full`, then optionally bytes scribbled over the dict's
//! memory followed by every operation (`shm_manager::fuzz::dict_ops` panics on a divergence
//! or a panic after scribbling).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shm_manager::fuzz::dict_ops(data);
});
