//! Multi-process tests of `shm_process::pool` with real worker processes: the `shm-itest`
//! binary serving the registry of `shm_itest::roles::pool`.
//!
//! No test asserts how long anything takes; every wait is bounded generously, and a
//! [`Watchdog`] per test kills the workers if the test hangs. Each test names its segments
//! with its own prefix and checks that none is left in /dev/shm.
#![cfg(any(target_os = "linux", target_os = "android"))]

use shm_itest::roles::pool::{registry, PoolTasks};
use shm_itest::{eventually, Watchdog};
use shm_process::pool::{Callbacks, GetTimeoutError, Pool, PoolBuilder, Registry, TaskError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();

/// Bound on any one result.
const BOUND: Duration = Duration::from_secs(60);

/// The /dev/shm entries of pools this test process made with `prefix`.
fn segments(prefix: &str) -> Vec<String> {
    let start = format!("{prefix}_{:x}_", std::process::id());
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&start))
                .collect()
        })
        .expect("read /dev/shm")
}

fn builder<'r>(r: &'r Registry, prefix: &str, processes: usize) -> PoolBuilder<'r> {
    Pool::builder(r)
        .program(CHILD)
        .processes(processes)
        .name_prefix(prefix)
}

fn watch(w: &Watchdog, pool: &Pool) {
    for pid in pool.pids() {
        if pid != 0 {
            w.watch_pid(pid);
        }
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn apply_map_starmap_imap_across_processes() {
    let w = Watchdog::new();
    let (r, t): (Registry, PoolTasks) = registry();
    let pool = builder(&r, "pa", 2).create().expect("pool");
    watch(&w, &pool);
    assert!(!segments("pa").is_empty(), "the pool's segments exist");
    assert_eq!(pool.apply(&t.square, 12).unwrap(), 144);
    let want: Vec<u64> = (0..1000u64).map(|x| x * x).collect();
    assert_eq!(pool.map(&t.square, 0..1000u64).unwrap(), want);
    assert_eq!(pool.map_chunked(&t.square, 0..1000u64, 1).unwrap(), want);
    assert_eq!(pool.map_chunked(&t.square, 0..1000u64, 300).unwrap(), want);
    assert_eq!(
        pool.map(&t.square, Vec::<u64>::new()).unwrap(),
        Vec::<u64>::new()
    );
    assert_eq!(pool.starmap(&t.add, [(1, 2), (-5, 3)]).unwrap(), [3, -2]);
    let ordered: Vec<u64> = pool
        .imap(&t.square, 0..50u64, Some(7))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, want[..50]);
    let mut unordered: Vec<u64> = pool
        .imap_unordered(&t.square, 0..50u64, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, want[..50]);
    // Both workers took part in a map of slow tasks.
    let pids: BTreeSet<u32> = pool
        .map_chunked(&t.hold, vec![50u64; 8], 1)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    pool.close();
    pool.join().unwrap();
    assert!(matches!(
        pool.apply_async(&t.square, 1),
        Err(shm_process::pool::SubmitError::NotRunning)
    ));
    drop(pool);
    assert_eq!(segments("pa"), Vec::<String>::new());
}

#[test]
fn killed_worker_fails_only_its_task_and_the_pool_goes_on() {
    let w = Watchdog::new();
    let (r, t) = registry();

    // A worker that aborts itself mid-task, inside a map (Python hangs here: bpo-22393).
    let pool = builder(&r, "pb", 2).create().expect("pool");
    watch(&w, &pool);
    let before = pool.pids();
    let res = pool
        .map_async_with(&t.abort_on_3, 0..8u64, Some(1), Callbacks::new())
        .unwrap();
    let err = match res.get_timeout(BOUND) {
        Err(GetTimeoutError::Task(e)) => e,
        other => panic!("expected the map to fail with WorkerDied, got {other:?}"),
    };
    match &err {
        TaskError::WorkerDied {
            task,
            item,
            how,
            pid,
        } => {
            assert_eq!((&**task, *item), ("abort_on_3", 3));
            assert!(how.contains("SIGABRT"), "{how}");
            assert!(before.contains(pid), "{pid} not in {before:?}");
        }
        other => panic!("{other:?}"),
    }
    let items: Vec<_> = pool.imap(&t.abort_on_3, 0..8u64, None).unwrap().collect();
    for (i, item) in items.iter().enumerate() {
        if i == 3 {
            assert!(
                matches!(item, Err(TaskError::WorkerDied { item: 3, .. })),
                "{item:?}"
            );
        } else {
            assert_eq!(item, &Ok(i as u64));
        }
    }
    // The pool replaced the dead workers and goes on.
    assert_eq!(pool.map(&t.square, 0..100u64).unwrap().len(), 100);
    assert!(eventually(BOUND, || pool.pids().iter().all(|&p| p != 0)));
    watch(&w, &pool);

    // SIGKILL from outside, with work queued behind the killed task on the same worker.
    let pool1 = builder(&r, "pb", 1).create().expect("pool");
    watch(&w, &pool1);
    let victim = pool1.pids()[0];
    let marker = std::env::temp_dir().join(format!("shm-pool-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let held = pool1
        .apply_async(
            &t.announce_hold,
            (marker.to_string_lossy().into_owned(), 30_000),
        )
        .unwrap();
    let queued: Vec<_> = (0..5u64)
        .map(|i| pool1.apply_async(&t.square, i).unwrap())
        .collect();
    // Once the worker has started the long task, kill it.
    assert!(
        eventually(BOUND, || marker.exists()),
        "the task never started"
    );
    let _ = std::fs::remove_file(&marker);
    // SAFETY: plain kill(2) of a pid that is our pool's live worker (its parent is this
    // process and has not reaped it).
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    match held.get_timeout(BOUND) {
        Err(GetTimeoutError::Task(TaskError::WorkerDied { pid, how, .. })) => {
            assert_eq!(pid, victim);
            assert!(how.contains("SIGKILL"), "{how}");
        }
        other => panic!("{other:?}"),
    }
    for (i, q) in queued.into_iter().enumerate() {
        assert_eq!(q.get_timeout(BOUND).unwrap(), (i * i) as u64);
    }
    assert!(eventually(BOUND, || !pool1.pids().contains(&victim)
        && pool1.pids()[0] != 0));
    watch(&w, &pool1);
    assert_eq!(pool1.apply(&t.square, 9).unwrap(), 81);
    drop((pool, pool1));
    assert_eq!(segments("pb"), Vec::<String>::new());
}

#[test]
fn terminate_while_tasks_run() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "pc", 2).create().expect("pool");
    watch(&w, &pool);
    let pids = pool.pids();
    let map = pool
        .map_async_with(&t.hold, vec![20_000u64; 6], Some(1), Callbacks::new())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let one = pool
        .apply_async_with(
            &t.hold,
            20_000,
            Callbacks::new().error_callback(move |e| tx.send(e.clone()).unwrap()),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    pool.terminate();
    pool.join().unwrap();
    assert_eq!(
        map.get_timeout(BOUND).unwrap_err().to_string(),
        TaskError::Terminated.to_string()
    );
    assert!(matches!(
        one.get_timeout(BOUND),
        Err(GetTimeoutError::Task(TaskError::Terminated))
    ));
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), TaskError::Terminated);
    for pid in pids {
        assert!(!alive(pid), "worker {pid} still runs after terminate");
    }
    drop(pool);
    assert_eq!(segments("pc"), Vec::<String>::new());
}

#[test]
fn maxtasksperchild_recycles_workers() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "pd", 1)
        .maxtasksperchild(2)
        .create()
        .expect("pool");
    watch(&w, &pool);
    let first = pool.pids()[0];
    let pids = pool.map_chunked(&t.pid, 0..6u64, 1).unwrap();
    // Two tasks per worker, in order: three workers.
    assert_eq!(pids[0], first);
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    assert_eq!(pids[4], pids[5]);
    let distinct: BTreeSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    // Chunks count as one task each.
    let pids = pool.map_chunked(&t.pid, 0..8u64, 4).unwrap();
    assert_eq!(pids.iter().collect::<BTreeSet<_>>().len(), 1, "{pids:?}");
    drop(pool);
    assert_eq!(segments("pd"), Vec::<String>::new());
}

#[test]
fn initializer_runs_once_per_worker() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "pe", 3)
        .initializer(&t.init, 42)
        .create()
        .expect("pool");
    watch(&w, &pool);
    let states = pool.map_chunked(&t.init_state, 0..60u64, 1).unwrap();
    let mut per_pid: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (pid, calls, tag) in states {
        per_pid.insert(pid, (calls, tag));
    }
    assert!(!per_pid.is_empty() && per_pid.len() <= 3, "{per_pid:?}");
    for (pid, (calls, tag)) in &per_pid {
        assert_eq!((*calls, *tag), (1, 42), "worker {pid}");
    }
    drop(pool);

    // A failing initializer breaks the pool with its reason, instead of respawning forever.
    let pool = builder(&r, "pe", 2)
        .initializer(&t.bad_init, 0)
        .create()
        .expect("pool");
    watch(&w, &pool);
    match pool
        .apply_async(&t.square, 2)
        .map(|res| res.get_timeout(BOUND))
    {
        Ok(Err(GetTimeoutError::Task(TaskError::PoolBroken { reason }))) => {
            assert!(
                reason.contains("bad_init") && reason.contains("no database"),
                "{reason}"
            );
        }
        Err(e) => panic!("{e}"),
        Ok(other) => panic!("{other:?}"),
    }
    drop(pool);
    assert_eq!(segments("pe"), Vec::<String>::new());
}

#[test]
fn task_errors_and_panics_come_back_and_error_callback_fires() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "pf", 2).create().expect("pool");
    watch(&w, &pool);
    let pids = pool.pids();

    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let res = pool
        .map_async_with(
            &t.fail_odd,
            [2u64, 4, 5, 6],
            Some(1),
            Callbacks::new()
                .callback(move |_| tx2.send(("callback".to_owned(), None)).unwrap())
                .error_callback(move |e| {
                    let thread = std::thread::current().name().map(str::to_owned);
                    tx.send((format!("error: {e}"), thread)).unwrap();
                }),
        )
        .unwrap();
    let (what, thread) = rx.recv_timeout(BOUND).unwrap();
    assert_eq!(what, "error: task `fail_odd` failed: 5 is odd");
    assert_ne!(thread.as_deref(), Some("main"));
    assert_ne!(thread, std::thread::current().name().map(str::to_owned));
    // The callback runs before the result is ready, as in Python.
    assert!(res.wait_timeout(BOUND));
    assert_eq!(res.successful(), Some(false));
    assert!(rx.try_recv().is_err(), "one callback only");

    match pool.apply(&t.panic_on_2, 2) {
        Err(shm_process::pool::CallError::Task(TaskError::Panicked { task, message })) => {
            assert_eq!(&*task, "panic_on_2");
            assert!(message.contains("two is not allowed"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let items: Vec<_> = pool.imap(&t.fail_odd, 0..4u64, None).unwrap().collect();
    assert!(items[0].is_ok() && items[1].is_err() && items[2].is_ok() && items[3].is_err());
    // The workers survived all of it.
    assert_eq!(pool.pids(), pids);
    assert_eq!(pool.apply(&t.panic_on_2, 3).unwrap(), 3);
    drop(pool);
    assert_eq!(segments("pf"), Vec::<String>::new());
}

#[test]
fn calls_from_many_threads_at_once() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "pg", 2).create().expect("pool");
    watch(&w, &pool);
    std::thread::scope(|s| {
        for k in 0..4u64 {
            let (pool, t) = (&pool, &t);
            s.spawn(move || {
                for i in 0..200u64 {
                    let x = k * 1000 + i;
                    assert_eq!(pool.apply(&t.square, x).unwrap(), x * x);
                }
                let want: Vec<u64> = (0..300u64).map(|x| x * x).collect();
                assert_eq!(pool.map_chunked(&t.square, 0..300u64, 1).unwrap(), want);
                let async_results: Vec<_> = (0..50u64)
                    .map(|x| pool.apply_async(&t.square, x).unwrap())
                    .collect();
                for (x, r) in async_results.into_iter().enumerate() {
                    assert_eq!(r.get_timeout(BOUND).unwrap(), (x * x) as u64);
                }
            });
        }
    });
    drop(pool);
    assert_eq!(segments("pg"), Vec::<String>::new());
}

#[test]
fn a_dropped_pool_fails_its_unfinished_calls_and_leaves_nothing() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "ph", 1).create().expect("pool");
    watch(&w, &pool);
    let pids = pool.pids();
    let slow = pool.apply_async(&t.hold, 20_000).unwrap();
    let mut later = pool.imap(&t.square, 0..3u64, None).unwrap();
    drop(pool); // as leaving Python's `with Pool() as p:` block: terminate
    assert!(matches!(
        slow.get_timeout(BOUND),
        Err(GetTimeoutError::Task(TaskError::Terminated))
    ));
    for _ in 0..3 {
        assert_eq!(
            later.next_timeout(BOUND).expect("an item"),
            Some(Err(TaskError::Terminated))
        );
    }
    assert_eq!(later.next_timeout(BOUND).expect("the end"), None);
    assert!(!alive(pids[0]));
    assert_eq!(segments("ph"), Vec::<String>::new());
}

#[test]
fn a_poisoned_inbox_breaks_the_pool_with_its_reason_instead_of_looping() {
    let w = Watchdog::new();
    let (r, t) = registry();
    let pool = builder(&r, "pi", 1).create().expect("pool");
    watch(&w, &pool);
    assert_eq!(pool.apply(&t.square, 3).unwrap(), 9);
    let inbox = segments("pi")
        .into_iter()
        .find(|n| n.ends_with("_i0"))
        .expect("the worker's inbox");
    let name = shm_core::SegmentName::new(&inbox).unwrap();
    let q = shm_queue::bytes::ByteQueue::builder(&name)
        .open()
        .expect("open the inbox");
    // Poison it, as a stray process scribbling over its indices does once the worker reads
    // them (an SPSC ring reads the other side's index only when its cached copy runs out, so
    // the forged state itself is written here; the queue tests cover the detection).
    q.forge_poisoned();
    let err = match pool.apply_async(&t.square, 4) {
        Ok(res) => match res.get_timeout(BOUND) {
            Err(GetTimeoutError::Task(e)) => e,
            other => panic!("expected a failure, got {other:?}"),
        },
        Err(e) => panic!("{e}"),
    };
    match &err {
        TaskError::PoolBroken { reason } => assert!(reason.contains("inbox"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // And says so on every later call rather than hanging.
    let later = pool.apply_async(&t.square, 5).unwrap().get_timeout(BOUND);
    assert!(
        matches!(
            later,
            Err(GetTimeoutError::Task(TaskError::PoolBroken { .. }))
        ),
        "{later:?}"
    );
    drop(q);
    drop(pool);
    assert_eq!(segments("pi"), Vec::<String>::new());
}
