//! Replays the `open_segment` fuzz corpus (`fuzz/corpus/open_segment/*`) through the same
//! function the fuzz target calls, so that every test run exercises it without libFuzzer.
#![cfg(any(target_os = "linux", target_os = "android"))]

#[path = "../fuzz/src/lib.rs"]
mod fuzz_logic;

use shm_core::SegmentName;
use std::path::PathBuf;

/// Removes the scratch segment file even if a check panics.
struct Scratch(SegmentName);

impl Drop for Scratch {
    fn drop(&mut self) {
        fuzz_logic::remove(&self.0);
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/open_segment");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (name, data)
        })
        .collect()
}

#[test]
fn open_segment_corpus_replays_cleanly() {
    let scratch = Scratch(SegmentName::unique_with_prefix("fuzzcorp").unwrap());
    let corpus = corpus();
    assert!(corpus.len() >= 10, "corpus has {} files", corpus.len());
    for (file, data) in &corpus {
        // Exactly what the fuzz target runs (the bytes as they are, then resealed)…
        let _ = fuzz_logic::open_segment(&scratch.0, data);
        // …and the bytes as they are once more, to hold each seed to what its name says.
        let summary = fuzz_logic::open_segment_once(&scratch.0, data);
        assert!(
            summary.opened + summary.failed > 0,
            "{file}: nothing was opened (could not write the scratch file?)"
        );
        // The seeds are named for what they hold: valid images open, the rest never do.
        if file.starts_with("valid_") {
            assert!(summary.opened > 0, "{file}: a valid image did not open");
        } else if file.starts_with("bad_") {
            assert_eq!(summary.opened, 0, "{file}: a damaged image opened");
        }
    }
    let name = scratch.0.clone();
    drop(scratch);
    assert!(
        !fuzz_logic::shm_path(&name).exists(),
        "scratch file left behind"
    );
}

fn corpus_of(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p.display().to_string(), data)
        })
        .collect()
}

/// The `array_ops` corpus: `Array`, `RawArray` and a `Vec` model must agree on every input
/// (the checker panics, failing this test, on the first divergence).
#[test]
fn array_ops_corpus_replays_cleanly() {
    let corpus = corpus_of("array_ops");
    assert!(corpus.len() >= 10, "corpus has {} files", corpus.len());
    for (file, data) in &corpus {
        eprintln!("array_ops {file}");
        shm_array::__fuzz::array_ops(data);
    }
}

/// The `queue_ops` corpus: every ring kind (typed SPSC and MPMC, byte queues of both flavors)
/// and a `VecDeque` model must agree until the first forged index, stamp, length or state
/// word; after it every operation ends, a poisoned ring answers `Corrupt` to everything, and
/// pops and pushes end within the step bound (`check_ops` panics, failing this test).
#[test]
fn queue_ops_corpus_replays_cleanly() {
    let corpus = corpus_of("queue_ops");
    assert!(corpus.len() >= 10, "corpus has {} files", corpus.len());
    for (file, data) in &corpus {
        eprintln!("queue_ops {file}");
        shm_queue::model::check_ops(data);
    }
}

/// The `dict_ops` corpus: `SharedDict` and a `HashMap` model must agree (including on `Full`),
/// and scribbled bytes must give errors, not panics.
#[test]
fn dict_ops_corpus_replays_cleanly() {
    let corpus = corpus_of("dict_ops");
    assert!(corpus.len() >= 10, "corpus has {} files", corpus.len());
    for (file, data) in &corpus {
        eprintln!("dict_ops {file}");
        shm_manager::fuzz::dict_ops(data);
    }
}
