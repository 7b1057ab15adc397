//! Multi-process tests of `shm-manager` with real children (the child binary `shm-itest`,
//! roles `manager.*`): concurrent inserts, SIGKILL at random moments and at each step of the
//! commit protocol, type checks on open, and a `Manager` shared by name. No test asserts a
//! duration; a watchdog kills hung children.
#![cfg(target_os = "linux")]

use shm_core::{Segment, SegmentName};
use shm_itest::roles::manager::{is_pattern, pattern, CHURN_ARENA, CHURN_CAPACITY};
use shm_itest::{join_bounded, join_ok, kill_and_join, NameGuard, Watchdog};
use shm_manager::{Exhausted, Manager, SharedDict, SharedList, WriteError};
use shm_process::{Process, ProcessBuilder};
use shm_value::RawValue;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();

fn child(role: &str) -> ProcessBuilder {
    shm_itest::child(CHILD, &format!("manager.{role}"))
}

#[test]
fn four_processes_inserting_at_once_lose_no_update() {
    const PROCS: u64 = 4;
    const N: u64 = if cfg!(debug_assertions) { 300 } else { 2000 };
    let w = Watchdog::new();
    let name = SegmentName::unique();
    // Room for exactly every key the children insert, plus the counter.
    let d = SharedDict::<String, u64>::builder(&name)
        .capacity(PROCS * N + 1)
        .create()
        .unwrap();
    let go_name = SegmentName::unique();
    let go = RawValue::<u32>::create(&go_name, 0).unwrap();
    let mut kids: Vec<Process> = (0..PROCS)
        .map(|id| {
            w.start(child("insert").args([
                name.to_string(),
                id.to_string(),
                N.to_string(),
                go_name.to_string(),
            ]))
        })
        .collect();
    go.store(1);
    for k in &mut kids {
        join_ok(k);
    }
    assert_eq!(d.get("counter").unwrap(), Some(PROCS * N));
    assert_eq!(d.len().unwrap() as u64, PROCS * N + 1);
    let snap = d.snapshot().unwrap();
    for id in 0..PROCS {
        for i in 0..N {
            assert_eq!(snap.get(&format!("p{id}-{i}")), Some(&i), "p{id}-{i}");
        }
    }
    // The capacity is exhausted now: a new key is refused and nothing is written.
    match d.insert("one more", &1) {
        Err(WriteError::Full(Exhausted::Entries { capacity })) => {
            assert_eq!(capacity, PROCS * N + 1)
        }
        other => panic!("expected Full(Entries), got {other:?}"),
    }
    assert_eq!(d.len().unwrap() as u64, PROCS * N + 1);
    assert_eq!(d.get("one more").unwrap(), None);
}

/// Every entry of `d` and element of `l` is intact and the counts agree; then both still
/// take writes.
fn check_intact(d: &SharedDict<u32, Vec<u8>>, l: &SharedList<Vec<u8>>, trial: usize) {
    let items = d
        .to_vec()
        .unwrap_or_else(|e| panic!("trial {trial}: dict: {e}"));
    assert_eq!(items.len(), d.len().unwrap(), "trial {trial}");
    for (k, v) in &items {
        assert!(is_pattern(Some(*k), v), "trial {trial}: torn value at {k}");
    }
    let elems = l
        .to_vec()
        .unwrap_or_else(|e| panic!("trial {trial}: list: {e}"));
    assert_eq!(elems.len(), l.len().unwrap(), "trial {trial}");
    assert!(elems.iter().all(|v| is_pattern(None, v)), "trial {trial}");
    // Usable: removing an entry and inserting it again, and popping an element and pushing
    // it again, succeed (they fit whatever the fill, since they free what they take).
    if let Some((k, v)) = items.first() {
        assert_eq!(d.remove(k).unwrap().as_ref(), Some(v), "trial {trial}");
        d.insert(k, v).unwrap();
        assert_eq!(d.get(k).unwrap().as_ref(), Some(v), "trial {trial}");
    }
    d.insert(&999, &pattern(999, 1)).map_or_else(
        |e| assert!(matches!(e, WriteError::Full(_)), "trial {trial}: {e}"),
        |()| assert!(d.remove(&999).unwrap().is_some()),
    );
    if let Some(last) = l.pop().unwrap() {
        assert_eq!(Some(&last), elems.last(), "trial {trial}");
        l.push(&last).unwrap();
    }
    assert_eq!(l.to_vec().unwrap(), elems, "trial {trial}");
}

#[test]
fn sigkill_at_random_moments_leaves_dict_and_list_intact() {
    let trials = if cfg!(debug_assertions) { 100 } else { 200 };
    let w = Watchdog::new();
    let (dn, ln) = (SegmentName::unique(), SegmentName::unique());
    // Small, so that the children hit compactions and `Full` often.
    let d = SharedDict::<u32, Vec<u8>>::builder(&dn)
        .capacity(CHURN_CAPACITY)
        .arena_bytes(CHURN_ARENA)
        .create()
        .unwrap();
    let l = SharedList::<Vec<u8>>::builder(&ln)
        .capacity(CHURN_CAPACITY)
        .arena_bytes(CHURN_ARENA)
        .create()
        .unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut p = w.start(
            child("churn")
                .args([dn.to_string(), ln.to_string(), seed.to_string()])
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        BufReader::new(p.take_stdout().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "trial {trial}");
        // Somewhere in the next 0..20 ms of operations.
        std::thread::sleep(Duration::from_micros(seed % 20_000));
        let status = kill_and_join(&mut p);
        assert!(
            !status.success(),
            "trial {trial}: churn ended by itself: {status:?}"
        );
        check_intact(&d, &l, trial);
    }
}

/// Fills `d` until an entry no longer fits, then removes all but keys 0 and 1: the next
/// insert of an entry at least as large (the `compact-insert` case) needs a compaction.
fn fill_then_thin(d: &SharedDict<u32, Vec<u8>>) {
    for k in 0.. {
        match d.insert(&k, &pattern(k, 43)) {
            Ok(()) => {}
            Err(WriteError::Full(Exhausted::Bytes { .. })) => break,
            Err(e) => panic!("fill: {e}"),
        }
    }
    for k in d.keys().unwrap() {
        if k > 1 {
            d.remove(&k).unwrap();
        }
    }
}

#[test]
fn a_crash_at_each_commit_step_leaves_the_state_before_or_after() {
    // (crash point, operation, whether the operation must have happened)
    let cases = [
        ("committed", "insert", true),
        ("applying", "insert", true),
        ("applying", "update", true),
        ("rebuilt", "clear", false),
        ("rebuilt", "compact-insert", false),
        ("grown", "grow-insert", false),
        ("committed", "push", true),
        ("rebuilt", "reverse", false),
    ];
    let w = Watchdog::new();
    for (point, op, after) in cases {
        let (dn, ln) = (SegmentName::unique(), SegmentName::unique());
        // Room for more entries than the arena holds: filling it ends in Full(Bytes). The
        // grow case: 10 entries fill it, and it is growable.
        let grow = op == "grow-insert";
        let d = SharedDict::<u32, Vec<u8>>::builder(&dn)
            .capacity(if grow { 10 } else { 4 * CHURN_CAPACITY })
            .arena_bytes(CHURN_ARENA)
            .growable(grow)
            .create()
            .unwrap();
        // A successor the killed child made but never published: ours to remove.
        // (Named as shm-manager names successors: the name cut to 27 bytes, then `.g1`.)
        let base = &dn.as_str()[..dn.as_str().len().min(27)];
        let _orphan = NameGuard(format!("{base}.g1").parse().unwrap());
        let l = SharedList::<Vec<u8>>::builder(&ln)
            .capacity(CHURN_CAPACITY)
            .create()
            .unwrap();
        if op == "compact-insert" {
            fill_then_thin(&d);
        } else {
            for k in 0..10 {
                d.insert(&k, &pattern(k, 1)).unwrap();
            }
        }
        l.extend(&[pattern(1, 1), pattern(2, 2), pattern(3, 3)])
            .unwrap();
        let dict_before = d.to_vec().unwrap();
        let list_before = l.to_vec().unwrap();

        let mut p = w.start(child("crash-at").args([
            dn.to_string(),
            ln.to_string(),
            point.to_string(),
            op.to_string(),
        ]));
        let status = join_bounded(&mut p);
        assert_eq!(
            status.signal(),
            Some(shm_core::sys::SIGKILL),
            "{point}/{op}: the child did not die at the crash point: {status:?}"
        );

        let dict_now = d.to_vec().unwrap();
        let list_now = l.to_vec().unwrap();
        let mut dict_after = dict_before.clone();
        let mut list_after = list_before.clone();
        match op {
            "insert" | "grow-insert" => dict_after.push((1000, pattern(1000, 1))),
            "compact-insert" => dict_after.push((1000, pattern(1000, 43))),
            "update" => dict_after[1].1 = pattern(1, 99),
            "clear" => dict_after.clear(),
            "push" => list_after.push(pattern(7, 7)),
            "reverse" => list_after.reverse(),
            _ => unreachable!(),
        }
        let (want_dict, want_list) = if after {
            (&dict_after, &list_after)
        } else {
            (&dict_before, &list_before)
        };
        assert_eq!(&dict_now, want_dict, "{point}/{op}: dict");
        assert_eq!(&list_now, want_list, "{point}/{op}: list");
        // And both still work.
        d.insert(&1000, &pattern(1000, 2)).unwrap();
        assert_eq!(d.get(&1000).unwrap(), Some(pattern(1000, 2)));
        l.push(&pattern(9, 9)).unwrap();
    }
}

#[test]
fn bytes_forged_by_another_process_give_errors_not_panics_or_hangs() {
    let w = Watchdog::new();
    for seed in 1..=12u64 {
        let (dn, ln) = (SegmentName::unique(), SegmentName::unique());
        let d = SharedDict::<u32, Vec<u8>>::builder(&dn)
            .capacity(CHURN_CAPACITY)
            .arena_bytes(CHURN_ARENA)
            .create()
            .unwrap();
        let l = SharedList::<Vec<u8>>::builder(&ln)
            .capacity(CHURN_CAPACITY)
            .arena_bytes(CHURN_ARENA)
            .create()
            .unwrap();
        for k in 0..20 {
            d.insert(&k, &pattern(k, 1)).unwrap();
            l.push(&pattern(k, 2)).unwrap();
        }
        let n = (seed * 7 % 40 + 1).to_string();
        let mut p =
            w.start(child("scribble").args([dn.to_string(), ln.to_string(), seed.to_string(), n]));
        assert_eq!(
            join_bounded(&mut p).code(),
            Some(0),
            "seed {seed}: scribbler"
        );
        // Another process runs every operation on the forged objects: it must end normally.
        let mut p = w.start(child("call-everything").args([dn.to_string(), ln.to_string()]));
        assert_eq!(join_bounded(&mut p).code(), Some(0), "seed {seed}: caller");
        // And so must this one.
        shm_itest::roles::manager::call_everything(&d, &l);
    }
}

#[test]
fn four_processes_inserting_into_a_growable_dict_lose_nothing() {
    const PROCS: u64 = 4;
    const N: u64 = 200;
    let w = Watchdog::new();
    let name = SegmentName::unique();
    // Far too small: it grows several times while the children insert.
    let d = SharedDict::<String, u64>::builder(&name)
        .capacity(8)
        .arena_bytes(512)
        .growable(true)
        .create()
        .unwrap();
    let go_name = SegmentName::unique();
    let go = RawValue::<u32>::create(&go_name, 0).unwrap();
    let mut kids: Vec<Process> = (0..PROCS)
        .map(|id| {
            w.start(child("insert").args([
                name.to_string(),
                id.to_string(),
                N.to_string(),
                go_name.to_string(),
            ]))
        })
        .collect();
    go.store(1);
    for k in &mut kids {
        join_ok(k);
    }
    assert_eq!(d.get("counter").unwrap(), Some(PROCS * N));
    assert_eq!(d.len().unwrap() as u64, PROCS * N + 1);
    assert!(d.capacity() > PROCS * N, "capacity {}", d.capacity());
    let snap = d.snapshot().unwrap();
    for id in 0..PROCS {
        for i in 0..N {
            assert_eq!(snap.get(&format!("p{id}-{i}")), Some(&i), "p{id}-{i}");
        }
    }
}

#[test]
fn other_types_on_open_are_refused_in_another_process() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let d = SharedDict::<String, i64>::create(&name).unwrap();
    d.insert("k", &1).unwrap();
    let mut same = w.start(child("open-typed").args([name.as_str(), "string-i64"]));
    assert_eq!(join_bounded(&mut same).code(), Some(0));
    let mut other = w.start(child("open-typed").args([name.as_str(), "string-string"]));
    assert_eq!(join_bounded(&mut other).code(), Some(7));
}

#[test]
fn children_find_a_managers_objects_by_its_one_name() {
    const KIDS: u64 = 4;
    let w = Watchdog::new();
    let mgr = Manager::create(&SegmentName::unique()).unwrap();
    let d = mgr.dict::<String, i64>("data").unwrap();
    d.insert("count", &0).unwrap();
    let mut kids: Vec<Process> = (0..KIDS)
        .map(|id| w.start(child("mgr-child").args([mgr.name().to_string(), id.to_string()])))
        .collect();
    for k in &mut kids {
        join_ok(k);
    }
    assert_eq!(d.get("count").unwrap(), Some(KIDS as i64));
    let ids = mgr.list::<u64>("ids").unwrap();
    ids.sort().unwrap();
    assert_eq!(ids.to_vec().unwrap(), (0..KIDS).collect::<Vec<_>>());
    // The children created "ids" and "l"; the creating manager removes them all on drop.
    let names: Vec<SegmentName> = ["data", "ids", "l"]
        .iter()
        .map(|k| mgr.segment_name_of(k).unwrap().unwrap())
        .collect();
    drop((d, ids));
    let registry = mgr.name().clone();
    drop(mgr);
    for n in names.iter().chain([&registry]) {
        assert!(!Segment::exists(n), "{n} left behind");
    }
}
