//! Multi-process tests of `Value` and `RawValue` with real children (the child binary
//! `shm-itest`, roles `value.*`). No test asserts a duration; a watchdog kills hung children.
#![cfg(target_os = "linux")]

use shm_core::{OpenError, Segment, SegmentName};
use shm_itest::{expect_line, join_ok, Watchdog, OUTCOME_BOUND};
use shm_process::{Process, ProcessBuilder};
use shm_value::{RawValue, UpdateError, Value};

const CHILD: &str = shm_itest::child_binary!();
const PROCS: usize = 4;
const ITERS: u64 = 100_000;

fn child(role: &str, name: &SegmentName) -> ProcessBuilder {
    shm_itest::child(CHILD, &format!("value.{role}")).arg(name.as_str())
}

/// Starts `PROCS` children in `role`, lets them go at once (so that they overlap), and
/// waits for them.
fn run_all(w: &Watchdog, role: &str, name: &SegmentName) {
    let go_name = SegmentName::unique();
    let go = RawValue::<u32>::create(&go_name, 0).unwrap();
    let mut kids: Vec<Process> = (0..PROCS)
        .map(|_| w.start(child(role, name).args([ITERS.to_string(), go_name.to_string()])))
        .collect();
    go.store(1);
    for k in &mut kids {
        join_ok(k);
    }
}

#[test]
fn four_processes_update_under_the_lock_lose_nothing() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let v = Value::<i64>::create(&name, 0).unwrap();
    run_all(&w, "update", &name);
    assert_eq!(v.load(), PROCS as i64 * ITERS as i64);
}

#[test]
fn four_processes_fetch_add_lose_nothing() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let v = Value::<i64>::create(&name, 0).unwrap();
    run_all(&w, "fetch-add", &name);
    assert_eq!(v.load(), PROCS as i64 * ITERS as i64);

    let raw = SegmentName::unique();
    let r = RawValue::<u64>::create(&raw, 0).unwrap();
    run_all(&w, "raw-fetch-add", &raw);
    assert_eq!(r.load(), PROCS as u64 * ITERS);
}

#[test]
fn a_child_stores_a_double_the_parent_sees_it() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let v = Value::<f64>::create(&name, 0.0).unwrap();
    join_ok(&mut w.start(child("store-f64", &name)));
    assert_eq!(v.load(), 3.333333333333333);
    // The child opening a Value<i64> where a Value<f64> is fails with its own code.
    let mut wrong = w.start(child("fetch-add", &name).arg("1"));
    let status = wrong.join_timeout(OUTCOME_BOUND).unwrap().expect("ended");
    assert_eq!(status.code(), Some(4));
    assert_eq!(v.load(), 3.333333333333333);
}

#[test]
fn opening_with_the_wrong_typecode_or_kind_is_a_specific_error() {
    let name = SegmentName::unique();
    let _v = Value::<f64>::create(&name, 0.0).unwrap();
    match Value::<i64>::open(&name) {
        Err(OpenError::WrongLayout { expected, found }) => {
            assert_eq!((expected.format(), found.format()), ("q", "d"));
        }
        other => panic!("expected WrongLayout, got {other:?}"),
    }
    assert!(matches!(
        Value::<f32>::open(&name),
        Err(OpenError::WrongLayout { .. })
    ));
    assert!(matches!(
        RawValue::<f64>::open(&name),
        Err(OpenError::WrongKind { .. })
    ));
}

#[test]
fn holder_killed_mid_update_is_reported_not_hidden() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let v = Value::<i64>::create(&name, 1).unwrap();
    let mut holder = w.start(child("hold", &name).stdout(std::process::Stdio::piped()));
    expect_line(&mut holder, "held");
    holder.kill().unwrap();
    let _ = holder.join_timeout(OUTCOME_BOUND).unwrap();

    // The closure must not run on the half-updated value: the error says so.
    let mut ran = false;
    let err = v
        .update(|x| {
            ran = true;
            x + 1
        })
        .unwrap_err();
    assert!(!ran);
    assert_eq!(err, UpdateError::OwnerDied);
    // Without mark_consistent the next update is told again.
    assert_eq!(v.update(|x| x + 1), Err(UpdateError::OwnerDied));
    // Repair, mark, and the value works normally again.
    assert_eq!(v.lock().err(), Some(shm_lock::OwnerDiedError));
    let guard = v.recover();
    assert!(guard.is_inconsistent());
    assert_eq!(guard.get(), 999);
    guard.set(1);
    guard.mark_consistent();
    drop(guard);
    assert_eq!(v.update(|x| x + 1).unwrap(), 2);
    assert!(!v.is_inconsistent());
}

#[test]
fn the_creator_unlinks_on_drop() {
    let name = SegmentName::unique();
    let v = Value::<u8>::create(&name, 1).unwrap();
    assert!(Segment::exists(&name));
    drop(v);
    assert!(!Segment::exists(&name));
}
