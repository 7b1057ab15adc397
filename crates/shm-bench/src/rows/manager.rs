//! Manager rows: a shared dict's get and set and a shared list's append, across two
//! processes, against Python's `Manager().dict()` / `.list()` (whose every call is a round
//! trip to the manager's server process) and, as the ceiling, a plain Python dict or list and
//! a `std` `Mutex<HashMap>` in one process.
//!
//! Ours: the other process (the child) creates the dict or list, fills it and stays alive
//! (idle, sleeping), as Python's manager process does; the measuring process opens it by name
//! and operates on it. One more line has the child set keys in a loop while the parent
//! reads, so both processes use the dict at once. Every line checks what it read or wrote.

use super::{arg, case, exit, finish, python, seg_name, Case, Group, Kind, Miss, Who, TWO};
use crate::harness::{self, child_args, spin_until, Child, Placement, Words};
use shm_core::SegmentName;
use shm_manager::{SharedDict, SharedList};
use shm_process::Roles;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

const GET: &str = "manager-dict-get";
const SET: &str = "manager-dict-set";
const APPEND: &str = "manager-list-append";

/// Operations per sample of our lines (Python's manager lines time single calls).
const BATCH: u64 = 100;
/// Keys in the dict.
const KEYS: u64 = 16;
/// Elements the list holds before it is cleared (one `clear` per this many appends).
const LIST_CAP: u64 = 1 << 16;
/// How long the parent waits for the child to be ready.
const PATIENCE: Duration = Duration::from_secs(10);

// Words shared with the child.
const READY: usize = 0;
const STOP: usize = 1;
const SETS: usize = 2;

/// The manager tables.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            key: GET,
            area: "manager",
            title: "Manager dict get, two processes",
            op: "d[k] on a 16-entry dict of integers made by the other process \
                 (ours: batches of 100; Python's manager: single calls)",
            kind: Kind::Latency,
            placements: TWO,
        },
        Group {
            key: SET,
            area: "manager",
            title: "Manager dict set, two processes",
            op: "d[k] = v on a 16-entry dict of integers made by the other process \
                 (ours: batches of 100; Python's manager: single calls)",
            kind: Kind::Latency,
            placements: TWO,
        },
        Group {
            key: APPEND,
            area: "manager",
            title: "Manager list append, two processes",
            op: "l.append(i) of an integer on a list made by the other process \
                 (ours: batches of 100, cleared every 65536; Python's manager: single calls)",
            kind: Kind::Latency,
            placements: TWO,
        },
    ]
}

/// The value stored for key `k` while nobody sets it.
fn value_of(k: u64) -> u64 {
    k * 7 + 1
}

/// Starts the child that creates the object, waits until it is ready, runs `measure`, stops
/// the child and joins it.
fn with_child(
    p: Placement,
    what: &str,
    name: &SegmentName,
    measure: impl FnOnce(&Words) -> Result<Vec<f64>, String>,
) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let child = Child::start(
        "mgr-owner",
        p.child_cpu(),
        &[what.into(), w.name(), name.as_str().into()],
    )?;
    let r = if spin_until(PATIENCE, || w.word(READY).load(Ordering::Acquire) != 0) {
        measure(&w)
    } else {
        Err("the manager child did not start".to_string())
    };
    w.word(STOP).store(1, Ordering::Release);
    finish(child, r)
}

fn open_dict(name: &SegmentName) -> Result<SharedDict<u64, u64>, String> {
    SharedDict::open(name).map_err(|e| format!("opening the dict: {e}"))
}

/// The manager cases.
pub fn cases() -> Vec<Case> {
    vec![
        case(GET, "shm-manager SharedDict get", Who::Ours, "-", |c, p| {
            let name = SegmentName::unique();
            with_child(p, "dict", &name, |_| {
                let d = open_dict(&name)?;
                harness::per_batch(c, BATCH, |i| {
                    let k = i % KEYS;
                    match d.get(&k) {
                        Ok(Some(v)) if v == value_of(k) => Ok(()),
                        other => Err(format!("get({k}) = {other:?}")),
                    }
                })
            })
        }),
        case(
            GET,
            "shm-manager SharedDict get, other process setting",
            Who::Ours,
            "-",
            |c, p| {
                let name = SegmentName::unique();
                with_child(p, "dict-setter", &name, |w| {
                    let d = open_dict(&name)?;
                    let before = w.word(SETS).load(Ordering::Acquire);
                    let s = harness::per_batch(c, BATCH, |i| {
                        let k = i % KEYS;
                        // The setter stores k * 1000 + n: any value of that form is whole.
                        match d.get(&k) {
                            Ok(Some(v)) if v % 1000 == k || v == value_of(k) => Ok(()),
                            other => Err(format!("get({k}) = {other:?}")),
                        }
                    })?;
                    let sets = w.word(SETS).load(Ordering::Acquire) - before;
                    if sets == 0 {
                        return Err("the other process set nothing while we read".into());
                    }
                    Ok(s)
                })
            },
        ),
        case(
            GET,
            "std Mutex<HashMap<u64, u64>> get, one process",
            Who::Ceiling,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let m: Mutex<HashMap<u64, u64>> =
                    Mutex::new((0..KEYS).map(|k| (k, value_of(k))).collect());
                let m = black_box(&m);
                Ok(harness::per_batch(c, BATCH, |i| {
                    let k = i % KEYS;
                    let v = m
                        .lock()
                        .map_err(|_| "poisoned".to_string())?
                        .get(&k)
                        .copied();
                    if v == Some(value_of(k)) {
                        Ok(())
                    } else {
                        Err(format!("get({k}) = {v:?}"))
                    }
                })?)
            },
        ),
        python::line(GET, "Python Manager().dict() get", "-", "mgr_dict_get", 1),
        case(
            GET,
            "Python dict get, one process",
            Who::Ceiling,
            "-",
            |c, p| python::run(c, "dict_get", p, 100),
        ),
        // Set.
        case(
            SET,
            "shm-manager SharedDict insert",
            Who::Ours,
            "-",
            |c, p| {
                let name = SegmentName::unique();
                with_child(p, "dict", &name, |_| {
                    let d = open_dict(&name)?;
                    let s = harness::per_batch(c, BATCH, |i| {
                        d.insert(&(i % KEYS), &i)
                            .map_err(|e| format!("insert: {e}"))
                    })?;
                    match d.len() {
                        Ok(n) if n as u64 == KEYS => Ok(s),
                        other => Err(format!("{other:?} entries after the sets, {KEYS} expected")),
                    }
                })
            },
        ),
        case(
            SET,
            "std Mutex<HashMap<u64, u64>> insert, one process",
            Who::Ceiling,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let m: Mutex<HashMap<u64, u64>> = Mutex::new(HashMap::new());
                let m = black_box(&m);
                let s = harness::per_batch(c, BATCH, |i| {
                    m.lock()
                        .map_err(|_| "poisoned".to_string())?
                        .insert(i % KEYS, i);
                    Ok::<(), String>(())
                })?;
                let n = m.lock().map_or(0, |g| g.len());
                if n as u64 == KEYS {
                    Ok(s)
                } else {
                    Err(Miss::Failed(format!("{n} entries after the sets")))
                }
            },
        ),
        python::line(SET, "Python Manager().dict() set", "-", "mgr_dict_set", 1),
        case(
            SET,
            "Python dict set, one process",
            Who::Ceiling,
            "-",
            |c, p| python::run(c, "dict_set", p, 100),
        ),
        // Append.
        case(
            APPEND,
            "shm-manager SharedList push",
            Who::Ours,
            "-",
            |c, p| {
                let name = SegmentName::unique();
                with_child(p, "list", &name, |_| {
                    let l = SharedList::<u64>::open(&name).map_err(|e| format!("opening: {e}"))?;
                    let mut pushed = 0u64;
                    let s = harness::per_batch(c, BATCH, |i| {
                        if pushed == LIST_CAP {
                            l.clear().map_err(|e| format!("clear: {e}"))?;
                            pushed = 0;
                        }
                        pushed += 1;
                        l.push(&i).map_err(|e| format!("push: {e}"))
                    })?;
                    match l.len() {
                        Ok(n) if n as u64 == pushed => Ok(s),
                        other => Err(format!("length {other:?} after {pushed} appends")),
                    }
                })
            },
        ),
        python::line(
            APPEND,
            "Python Manager().list() append",
            "-",
            "mgr_list_append",
            1,
        ),
        case(
            APPEND,
            "Python list append, one process",
            Who::Ceiling,
            "-",
            |c, p| python::run(c, "list_append", p, 100),
        ),
    ]
}

/// The manager rows' child: `mgr-owner [cpu, what, words, name]` creates the object, signals
/// ready, and keeps it (or, for `dict-setter`, sets keys in a loop) until told to stop.
pub fn roles(r: Roles) -> Roles {
    r.role("mgr-owner", |a| exit(owner(child_args(a))))
}

fn owner(a: &[String]) -> Result<(), String> {
    let what = arg(a, 0)?;
    let w = Words::open(arg(a, 1)?)?;
    let name = seg_name(arg(a, 2)?)?;
    let stop = || w.word(STOP).load(Ordering::Acquire) != 0;
    let idle = || {
        while !stop() {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    match what {
        "dict" | "dict-setter" => {
            let d = SharedDict::<u64, u64>::builder(&name)
                .capacity(1024)
                .create()
                .map_err(|e| format!("creating the dict: {e}"))?;
            for k in 0..KEYS {
                d.insert(&k, &value_of(k))
                    .map_err(|e| format!("filling the dict: {e}"))?;
            }
            w.word(READY).store(1, Ordering::Release);
            if what == "dict" {
                idle();
            } else {
                let mut n = 0u64;
                while !stop() {
                    for _ in 0..64 {
                        let k = n % KEYS;
                        d.insert(&k, &(n / KEYS * 1000 + k))
                            .map_err(|e| format!("set: {e}"))?;
                        n += 1;
                    }
                    w.word(SETS).store(n, Ordering::Release);
                }
            }
            Ok(())
        }
        "list" => {
            let _l = SharedList::<u64>::builder(&name)
                .capacity(LIST_CAP)
                .arena_bytes(LIST_CAP * 24)
                .create()
                .map_err(|e| format!("creating the list: {e}"))?;
            w.word(READY).store(1, Ordering::Release);
            idle();
            Ok(())
        }
        other => Err(format!("unknown manager object {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Cfg;

    /// Every one-process Rust line runs and checks itself (the two-process lines need the
    /// runner binary as the child; the runner's quick mode runs them).
    #[test]
    fn the_one_process_lines_run() {
        let cfg = Cfg {
            samples: 300,
            max_time: Duration::from_millis(5),
            warmup: Duration::ZERO,
            python: false,
            ..Cfg::quick()
        };
        for c in cases().iter().filter(|c| c.line.starts_with("std")) {
            match (c.run)(&cfg, Placement::Split) {
                Ok(s) => assert!(s.len() >= 3, "{}", c.line),
                Err(e) => panic!("{}: {e:?}", c.line),
            }
        }
    }
}
