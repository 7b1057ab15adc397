//! Fuzz target: arbitrary bytes as a segment file must open as an `Err` or as a valid
//! `Segment`, never a crash, hang or UB. The logic is `shm_ipc_fuzz::open_segment`, which the
//! root package's `tests/fuzz_corpus.rs` replays over `corpus/open_segment/`.
//!
//! One segment name per fuzzing process, rewritten on every input and removed at exit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shm_core::SegmentName;
use std::sync::OnceLock;

static NAME: OnceLock<SegmentName> = OnceLock::new();

extern "C" fn remove_scratch_segment() {
    if let Some(name) = NAME.get() {
        shm_ipc_fuzz::remove(name);
    }
}

fn scratch_name() -> &'static SegmentName {
    NAME.get_or_init(|| {
        // SAFETY: registers a plain `extern "C" fn()` that only removes a file; atexit has no
        // other preconditions.
        unsafe { libc::atexit(remove_scratch_segment) };
        SegmentName::unique_with_prefix("fuzz").expect("valid prefix")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = shm_ipc_fuzz::open_segment(scratch_name(), data);
});
