//! Multi-process tests of `Array` and `RawArray` with real children (the child binary
//! `shm-itest`, roles `array.*`). No test asserts a duration; a watchdog kills hung children.
#![cfg(target_os = "linux")]

use shm_array::{Array, RawArray};
use shm_core::SegmentName;
use shm_itest::{child, expect_line, join_bounded, Watchdog, OUTCOME_BOUND};
use shm_lock::OwnerDiedError;
use shm_value::Value;
use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
shm_core::record! {
    /// Same as the child's (format `"iid"`).
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Point { x: i32, y: i32, w: f64 }

    /// Another record of the same size (format `"qq"`).
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Pair { a: i64, b: i64 }
}

#[test]
fn seed_002_a_child_sets_the_value_and_negates_the_array() {
    let w = Watchdog::new();
    let (vn, an) = (SegmentName::unique(), SegmentName::unique());
    let num = Value::<f64>::create(&vn, 0.0).unwrap();
    let init: Vec<i32> = (0..11).collect();
    let arr = Array::<i32>::create_from(&an, &init).unwrap();
    let mut c = w.start(child(CHILD, "array.seed002").args([vn.as_str(), an.as_str()]));
    assert_eq!(join_bounded(&mut c).code(), Some(0));
    assert_eq!(num.load(), 3.333333333333333);
    assert_eq!(arr.to_vec(), (0..11).map(|x| -x).collect::<Vec<_>>());
    // Two children, as in the seed: each negates, so the parent sees 0..=10 again.
    arr.copy_from_slice(&init).unwrap();
    num.store(0.0);
    let mut kids: Vec<_> = (0..2)
        .map(|_| w.start(child(CHILD, "array.seed002").args([vn.as_str(), an.as_str()])))
        .collect();
    for k in &mut kids {
        assert_eq!(join_bounded(k).code(), Some(0));
    }
    assert_eq!(arr.to_vec(), init);
    assert_eq!(num.load(), 3.333333333333333);
}

#[test]
fn four_processes_add_under_the_lock_lose_nothing() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let arr = Array::<i64>::create(&name, 2).unwrap();
    const N: u64 = 20_000;
    let mut kids: Vec<_> = (0..4)
        .map(|_| w.start(child(CHILD, "array.add").args([name.as_str(), &N.to_string()])))
        .collect();
    for k in &mut kids {
        assert_eq!(join_bounded(k).code(), Some(0));
    }
    assert_eq!(arr.to_vec(), [4 * N as i64, 4 * N as i64]);
}

#[test]
fn wrong_expected_length_typecode_or_record_are_specific_errors() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _arr = Array::<i32>::create(&name, 11).unwrap();
    let mut c = w.start(
        child(CHILD, "array.open-len")
            .args([name.as_str(), "12"])
            .stdout(Stdio::piped()),
    );
    let mut out = String::new();
    c.take_stdout().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(join_bounded(&mut c).code(), Some(4));
    assert_eq!(out.trim(), "WrongCount 12 11");
    let mut ok = w.start(child(CHILD, "array.open-len").args([name.as_str(), "11"]));
    assert_eq!(join_bounded(&mut ok).code(), Some(0));

    use shm_core::OpenError;
    assert!(matches!(
        Array::<f64>::open(&name),
        Err(OpenError::WrongLayout { .. })
    ));
    let recs = SegmentName::unique();
    let _points = RawArray::<Point>::create(&recs, 4).unwrap();
    match RawArray::<Pair>::open(&recs) {
        Err(OpenError::WrongLayout { expected, found }) => {
            assert_eq!((expected.format(), found.format()), ("qq", "iid"));
        }
        other => panic!("expected WrongLayout, got {other:?}"),
    }
}

#[test]
fn holder_killed_while_holding_the_array_is_reported() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let arr = Array::<i64>::create_from(&name, &[1, 2]).unwrap();
    let mut holder = w.start(
        child(CHILD, "array.hold")
            .arg(name.as_str())
            .stdout(Stdio::piped()),
    );
    expect_line(&mut holder, "held");
    holder.kill().unwrap();
    let _ = holder.join_timeout(OUTCOME_BOUND).unwrap();
    // Element access goes ahead (no hang), and leaves the flag for lock() users.
    assert_eq!(arr.get(0), Ok(999));
    assert!(arr.is_inconsistent());
    match arr.lock() {
        Err(OwnerDiedError) => {}
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    let g = arr.recover();
    assert_eq!(g.to_vec(), [999, 2]);
    g.mark_consistent();
    drop(g);
    assert!(arr.lock().is_ok());
}

/// A writer SIGKILLed at some moment of its loop (inside or outside its critical section,
/// often mid-copy): the parent never hangs, and never sees a half-written array without being
/// told. Either `lock()` succeeds and every element is equal (the writer died outside the
/// lock), or it reports OwnerDied and the parent repairs the array before marking it.
#[test]
fn writer_killed_mid_update_is_never_seen_half_done_silently() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let arr = Array::<i64>::create(&name, 64 * 1024).unwrap();
    let mut died_inside = 0;
    for round in 0..4u64 {
        let mut c = w.start(
            child(CHILD, "array.rewrite")
                .arg(name.as_str())
                .stdout(Stdio::piped()),
        );
        expect_line(&mut c, "running");
        std::thread::sleep(Duration::from_millis(1 + 7 * round));
        c.kill().unwrap();
        let _ = c.join_timeout(OUTCOME_BOUND).unwrap();
        // Element access goes ahead either way (no hang).
        let first = arr.get(0).unwrap();
        match arr.lock() {
            Ok(g) => {
                let all = g.to_vec();
                assert!(all.iter().all(|&x| x == all[0]), "a torn array, unreported");
            }
            Err(OwnerDiedError) => {
                died_inside += 1;
                let mut g = arr.recover();
                assert!(g.is_inconsistent());
                g.update(|s| s.fill(first));
                g.mark_consistent();
            }
        }
        assert!(!arr.is_inconsistent());
    }
    // The writer spends nearly all its time inside the lock.
    eprintln!("writer died inside its critical section in {died_inside} of 4 rounds");
}

#[test]
fn raw_array_of_records_read_while_another_process_writes() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let arr = RawArray::<Point>::create(&name, 64).unwrap();
    const ROUNDS: i32 = 20_000;
    let mut c =
        w.start(child(CHILD, "array.write-points").args([name.as_str(), &ROUNDS.to_string()]));
    let mut reads = 0;
    while c.is_alive() && reads < 100_000 {
        for p in arr.to_vec() {
            // Each word holds some round's value (words of one record may differ: tearing).
            assert!((0..ROUNDS).contains(&p.x) && (0..ROUNDS).contains(&p.y));
            assert!(p.w >= 0.0 && p.w < ROUNDS as f64 && p.w.fract() == 0.0);
        }
        reads += 1;
    }
    assert_eq!(join_bounded(&mut c).code(), Some(0));
    let last = ROUNDS - 1;
    assert!(arr.to_vec().iter().all(|p| *p
        == Point {
            x: last,
            y: last,
            w: last as f64
        }));
}
