//! Sequences of element and bulk operations on `Array<u32>` and `RawArray<u32>`, checked
//! against a `Vec` model (`shm_array::__fuzz::array_ops` panics on any divergence).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shm_array::__fuzz::array_ops(data);
});
